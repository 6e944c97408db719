/**
 * Saving scored rows (README.md, "Predictions"): one row per input row with its request, stage,
 * labels, probabilities and fused score, and the input columns `--with` asks for. The task
 * probabilities are written as float64 holding exactly the values `fused` and every metric were
 * computed from, so a program reading the file recomputes `fused` and the metrics bit for bit.
 */
import { STAGES, labelKey, type ExperimentConfig } from '../config/experiment.js';
import { UsageError } from '../base/errors.js';
import { checkColumns, openTables, readBatches, type TableInfo } from '../data/reader.js';
import { copiedKind, copiedType, copyColumn, type CopiedColumn } from '../data/copy-columns.js';
import { formatFromPath, writeTable, type ColumnBatch, type ColumnDef, type ColumnValues } from '../data/write.js';
import { fuseScores } from '../metrics/fusion.js';
import type { Fusion } from './evaluate.js';
import type { RequestKeyType, ScoredBatch, ScoredSplit } from './score.js';
import type { EncodedBatch, KeyIndex } from '../data/encode.js';

/** `--with` words that stand for groups of columns; any other word names an input column. */
export const WITH_GROUPS = ['user', 'truth', 'teacher', 'features'] as const;

/** The input columns a predictions file copies, and the files they are read from again. */
export interface PredictionExtras {
  tables: TableInfo[];
  copied: CopiedColumn[];
}

/**
 * Checks the output file and `--with` before anything is scored (bad usage is exit 2 with nothing
 * written): `user` (the data's user id, as column `user`), `truth`, `teacher`, `features` (the mapped
 * columns under their own names) or column names of the files.
 */
export async function planPredictions(file: string, config: ExperimentConfig, files: string | string[] | undefined, withSpec: readonly string[]): Promise<PredictionExtras> {
  if (formatFromPath(file) === 'arrow') throw new UsageError(`--save-predictions ${file}: expected a .parquet or .csv file`);
  if (withSpec.length === 0) return { tables: [], copied: [] };
  const spec = files ?? config.data.eval;
  if (!spec) throw new UsageError('--with: no files to read (data.eval is not set; give --data)');
  const tables = await openTables(spec, config.data.format, files ? '--data' : 'data.eval');
  const cols = config.data.columns;
  const wanted: { source: string; name: string; what: string }[] = [];
  const add = (source: string, name: string, what: string) => {
    if (!wanted.some((w) => w.source === source && w.name === name)) wanted.push({ source, name, what });
  };
  for (const word of withSpec) {
    if (word === 'user') {
      if (!cols.user) throw new UsageError('--with user: the run\'s config maps no user column (data.columns.user)');
      add(cols.user, 'user', 'user');
    } else if (word === 'truth' || word === 'teacher') {
      const mapped = Object.entries(cols[word]);
      if (mapped.length === 0) throw new UsageError(`--with ${word}: the run's config maps no ${word} columns (data.columns.${word})`);
      for (const [key, source] of mapped) add(source, source, `${word} ${key}`);
    } else if (word === 'features') {
      for (const f of config.features) add(f.column ?? f.name, f.column ?? f.name, `feature ${f.name}`);
    } else add(word, word, '--with');
  }
  for (const t of tables) checkColumns(t, wanted.map((w) => ({ name: w.source, kind: copiedKind(tables, w.source) === 'list' ? 'list' : 'id', role: w.what })));
  const copied = wanted.map((w): CopiedColumn => ({ source: w.source, def: { name: w.name, type: copiedType(tables, w.source) }, what: w.what }));
  // the columns the file has anyway: row, request, stage, every label, p_<task>, fused
  const taken = new Set(['row', 'request', 'stage', ...Object.keys(cols.labels), 'exposure', ...config.tasks.map((t) => labelKey(t.label)), ...config.tasks.map((t) => `p_${t.name}`), 'fused']);
  for (const c of copied) {
    if (taken.has(c.def.name)) throw new UsageError(`--with ${withSpec.join(',')}: column \`${c.def.name}\` (${c.what}) would appear twice in ${file} (it has row, request, stage, the labels, p_<task> and fused)`);
    taken.add(c.def.name);
  }
  return { tables, copied };
}

/** Rows per batch handed to the writer when every row is already in memory. */
const WRITE_BATCH = 65536;

/**
 * Writes the predictions file (.parquet or .csv) from scored batches as they are pulled, so memory
 * is one batch (README.md, "Scale"); returns the number of rows written, or null when no batch came
 * (nothing is written then). The file appears whole or not at all (write.ts).
 */
export async function writePredictions(
  file: string,
  taskNames: readonly string[],
  fusion: Fusion,
  extras: PredictionExtras,
  keys: { requestKeys: KeyIndex; requestType: RequestKeyType },
  scored: AsyncIterable<ScoredBatch>,
): Promise<number | null> {
  if (formatFromPath(file) === 'arrow') throw new UsageError(`--save-predictions ${file}: expected a .parquet or .csv file`);
  const source = scored[Symbol.asyncIterator]();
  try {
    let next = await source.next();
    if (next.done) return null;
    const first = next.value.batch;
    const schema: ColumnDef[] = [{ name: 'row', type: 'int64' }];
    if (first.request) schema.push({ name: 'request', type: keys.requestType });
    schema.push({ name: 'stage', type: 'string' });
    for (const label of first.labels.keys()) schema.push({ name: label, type: 'int8' });
    // float64 holding the float32 probability exactly: what `fused` and the metrics were computed from
    for (const t of taskNames) schema.push({ name: `p_${t}`, type: 'float64' });
    schema.push({ name: 'fused', type: 'float64' });
    // planPredictions has refused --with columns that would appear twice
    const copies = extras.copied.length > 0 ? new CopiedRows(extras) : null;
    let at = 0;
    async function* batches(): AsyncGenerator<ColumnBatch> {
      for (; !next.done; next = await source.next()) {
        const { probs, batch } = next.value;
        // in slices of WRITE_BATCH rows; an empty batch still gives the file its schema
        let from = 0;
        do {
          const to = Math.min(batch.length, from + WRITE_BATCH);
          const columns = scoreColumns(taskNames, probs, batch, from, to, at, keys, fusion);
          if (copies) Object.assign(columns, await copies.take(to - from, at));
          at += to - from;
          yield { length: to - from, columns };
          from = to;
        } while (from < batch.length);
      }
      copies?.finish(at);
    }
    await writeTable(file, [...schema, ...extras.copied.map((c) => c.def)], batches());
    return at;
  } finally {
    await source.return?.(undefined);
  }
}

/** Writes the predictions file of a split scored whole (evaluate-run.ts when every row is kept anyway). */
export async function savePredictions(file: string, taskNames: readonly string[], scored: ScoredSplit, fusion: Fusion, extras: PredictionExtras = { tables: [], copied: [] }): Promise<number> {
  async function* whole(): AsyncGenerator<ScoredBatch> {
    yield { probs: scored.probs, batch: scored.rows };
  }
  return (await writePredictions(file, taskNames, fusion, extras, scored, whole()))!;
}

/** The file's own columns for rows [from, to) of a scored batch, the first of them row `at` of the file. */
function scoreColumns(
  taskNames: readonly string[],
  probs: Record<string, Float32Array>,
  rows: EncodedBatch,
  from: number,
  to: number,
  at: number,
  keys: { requestKeys: KeyIndex; requestType: RequestKeyType },
  fusion: Fusion,
): Record<string, ColumnValues> {
  const n = to - from;
  const columns: Record<string, ColumnValues> = { row: Float64Array.from({ length: n }, (_, i) => at + i) };
  if (rows.request) {
    const ids = rows.request.subarray(from, to);
    columns.request = keys.requestType === 'int64' ? Float64Array.from(ids, (r) => keys.requestKeys.keyOf(r) as number) : Array.from(ids, (r) => String(keys.requestKeys.keyOf(r)));
  }
  columns.stage = Array.from(rows.stage.subarray(from, to), (s) => STAGES[s]!);
  for (const [label, values] of rows.labels) columns[label] = Int8Array.from(values.subarray(from, to));
  const part: Record<string, Float32Array> = {};
  for (const t of taskNames) {
    part[t] = probs[t]!.subarray(from, to);
    columns[`p_${t}`] = Float64Array.from(part[t]!);
  }
  columns.fused = fuseScores(part, fusion.mode, fusion.weights);
  return columns;
}

/**
 * The `--with` columns, read again from the scored files in the order scored and handed out n rows
 * at a time to line up with the scored batches.
 */
export class CopiedRows {
  private readonly source: AsyncGenerator<{ length: number; columns: Record<string, ColumnValues> }>;
  private pending: { length: number; columns: Record<string, ColumnValues> } | null = null;
  private used = 0;
  private readonly rows: number;

  /** `readRows`: rows per read batch (a test makes it small, so that takes straddle reads). */
  constructor(
    private readonly extras: PredictionExtras,
    private readonly readRows = WRITE_BATCH,
  ) {
    this.rows = extras.tables.reduce((s, t) => s + t.rows, 0);
    this.source = this.read();
  }

  private async *read(): AsyncGenerator<{ length: number; columns: Record<string, ColumnValues> }> {
    const { tables, copied } = this.extras;
    const needs = copied.filter((c, i) => copied.findIndex((d) => d.source === c.source) === i).map((c) => ({ name: c.source, kind: copiedKind(tables, c.source) }));
    for (const t of tables) {
      for await (const raw of readBatches(t, needs, this.readRows)) {
        yield { length: raw.length, columns: Object.fromEntries(copied.map((c) => [c.def.name, copyColumn(raw, t.file, c)])) };
      }
    }
  }

  /** The copied columns of the next n rows (the first of them row `at` of the file). */
  async take(n: number, at: number): Promise<Record<string, ColumnValues>> {
    const parts: Record<string, ColumnValues>[] = [];
    for (let left = n; left > 0; ) {
      if (this.pending === null || this.used === this.pending.length) {
        const next = await this.source.next();
        if (next.done) throw new UsageError(`--with: the files hold ${this.rows} rows, more were scored (${at + n})`);
        this.pending = next.value;
        this.used = 0;
      }
      const k = Math.min(left, this.pending.length - this.used);
      parts.push(Object.fromEntries(Object.entries(this.pending.columns).map(([name, v]) => [name, sliceValues(v, this.used, this.used + k)])));
      this.used += k;
      left -= k;
    }
    if (parts.length === 1) return parts[0]!;
    return Object.fromEntries(this.extras.copied.map((c) => [c.def.name, concatValues(parts.map((p) => p[c.def.name]!))]));
  }

  /** Checks that every row of the files was handed out. */
  finish(scored: number): void {
    if (scored !== this.rows) throw new UsageError(`--with: the files hold ${this.rows} rows, ${scored} were scored`);
  }
}

function sliceValues(v: ColumnValues, a: number, b: number): ColumnValues {
  if (Array.isArray(v)) return v.slice(a, b);
  if ('offsets' in v) throw new Error('predictions: list columns are copied as text');
  return v.subarray(a, b);
}

function concatValues(parts: ColumnValues[]): ColumnValues {
  const first = parts[0]!;
  if (Array.isArray(first)) return (parts as string[][]).flat();
  if ('offsets' in first) throw new Error('predictions: list columns are copied as text');
  const out = new (first.constructor as new (n: number) => typeof first)(parts.reduce((s, p) => s + (p as typeof first).length, 0));
  let at = 0;
  for (const p of parts as (typeof first)[]) {
    (out as Float64Array).set(p as Float64Array, at);
    at += p.length;
  }
  return out;
}
