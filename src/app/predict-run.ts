/**
 * The predict use case (README.md, "Predict"): score rows that carry features only (no labels, no
 * stage) with a trained run and write, per row, the request id (when the config maps one and the
 * data has it), the columns the user passes through, `p_<task>` and the fused score. Rows are read,
 * scored and written batch by batch (the table writer consumes one batch at a time), so memory is
 * bounded by a batch, not by the files.
 */
import { readAhead } from '../base/read-ahead.js';
import { UsageError } from '../base/errors.js';
import { BatchEncoder, openSplit, planFeatures } from '../data/encode.js';
import { checkColumns, readBatches } from '../data/reader.js';
import { copiedType as outType, copyColumn, type CopiedColumn as Copied } from '../data/copy-columns.js';
import { formatFromPath, writeTable, type ColumnBatch, type ColumnDef, type ColumnValues } from '../data/write.js';
import { fuseScores } from '../metrics/fusion.js';
import type { Fusion } from '../eval/evaluate.js';
import type { LoadedRun } from './evaluate-run.js';
import type { Reporter } from './reporter.js';

export interface PredictOptions {
  /** Files to score (Parquet or Arrow IPC, as training reads). */
  files: string[];
  /** Output file, .parquet or .csv. */
  out: string;
  /** Input columns copied to the output unchanged. */
  pass?: string[];
  /** Fusion of the task scores (default: the run's config). */
  fusion?: Fusion;
}

export interface PredictResult {
  rows: number;
  out: string;
  columns: string[];
}

/** The output name of the request column (as in eval's predictions file). */
const REQUEST = 'request';


export async function predictRun({ bundle }: LoadedRun, opts: PredictOptions, reporter: Reporter): Promise<PredictResult> {
  const { predict } = await import('../models/bundle.js');
  const config = bundle.config;
  const format = formatFromPath(opts.out);
  if (format === 'arrow') throw new UsageError(`--out ${opts.out}: expected a .parquet or .csv file`);
  const opened = await openSplit(config, 'eval', opts.files, { mode: 'features', what: '--data', features: planFeatures(bundle.plan) });
  const pass = [...new Set(opts.pass ?? [])];
  const passNeeds = pass.map((name) => ({ name, kind: 'id' as const, role: 'passed through with --pass' }));
  // number or string columns only (the predictions file has no list type)
  for (const t of opened.tables) checkColumns(t, passNeeds);
  const requestCol = config.data.columns.request;
  const copied: Copied[] = [];
  if (requestCol && opened.needs.some((n) => n.name === requestCol)) copied.push({ source: requestCol, def: { name: REQUEST, type: outType(opened.tables, requestCol) }, what: 'request' });
  for (const name of pass) copied.push({ source: name, def: { name, type: outType(opened.tables, name) }, what: '--pass' });
  const schema: ColumnDef[] = [...copied.map((c) => c.def), ...bundle.taskNames.map((t) => ({ name: `p_${t}`, type: 'float64' as const })), { name: 'fused', type: 'float64' }];
  const names = new Set<string>();
  for (const d of schema) {
    if (names.has(d.name)) throw new UsageError(`--pass ${pass.join(',')}: column \`${d.name}\` would appear twice in ${opts.out} (the output has ${REQUEST}, p_<task> and fused)`);
    names.add(d.name);
  }
  const fusion = opts.fusion ?? config.fusion;
  const wanted = [...opened.needs, ...passNeeds.filter((p) => !opened.needs.some((n) => n.name === p.name))];
  const total = opened.tables.reduce((s, t) => s + t.rows, 0);
  const encoder = new BatchEncoder(config, bundle.plan, 'features');
  const progress = reporter.progress({ label: 'predicting', total, unit: 'rows' });
  const started = Date.now();
  let done = 0;
  async function* scored(): AsyncGenerator<ColumnBatch> {
    for (const t of opened.tables) {
      for await (const raw of readAhead(readBatches(t, wanted, config.eval.batch_size))) {
        const batch = encoder.encode(raw, t.file);
        const probs = await predict(bundle, batch);
        const columns: Record<string, ColumnValues> = {};
        for (const c of copied) columns[c.def.name] = copyColumn(raw, t.file, c);
        // float64 holding the float32 probability exactly, as eval --save-predictions writes it (README.md, "Predictions")
        bundle.taskNames.forEach((task, k) => (columns[`p_${task}`] = Float64Array.from(probs[k]!)));
        columns.fused = fuseScores(Object.fromEntries(bundle.taskNames.map((task, k) => [task, probs[k]!])), fusion.mode, fusion.weights);
        done += batch.length;
        progress.update(done);
        yield { length: batch.length, columns };
      }
    }
  }
  let rows: number;
  try {
    ({ rows } = await writeTable(opts.out, schema, scored()));
  } finally {
    progress.stop(`scored ${done.toLocaleString('en-US')} rows in ${((Date.now() - started) / 1000).toFixed(1)}s`);
  }
  return { rows, out: opts.out, columns: schema.map((d) => d.name) };
}
