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
import type { ScoredSplit } from './score.js';

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

/** Writes the predictions file (.parquet or .csv); returns the number of rows written. */
export async function savePredictions(file: string, taskNames: readonly string[], scored: ScoredSplit, fusion: Fusion, extras: PredictionExtras = { tables: [], copied: [] }): Promise<number> {
  if (formatFromPath(file) === 'arrow') throw new UsageError(`--save-predictions ${file}: expected a .parquet or .csv file`);
  const rows = scored.rows;
  const n = rows.length;
  const columns: Record<string, ColumnValues> = { row: Float64Array.from({ length: n }, (_, i) => i) };
  const schema: ColumnDef[] = [{ name: 'row', type: 'int64' }];
  if (rows.request) {
    const keys = scored.requestKeys;
    const numeric = keys.allNumbers();
    columns.request = numeric ? Float64Array.from(rows.request, (r) => keys.keyOf(r) as number) : Array.from(rows.request, (r) => String(keys.keyOf(r)));
    schema.push({ name: 'request', type: numeric ? 'int64' : 'string' });
  }
  columns.stage = Array.from(rows.stage, (s) => STAGES[s]!);
  schema.push({ name: 'stage', type: 'string' });
  for (const [label, values] of rows.labels) {
    columns[label] = Int8Array.from(values);
    schema.push({ name: label, type: 'int8' });
  }
  for (const t of taskNames) {
    // float64 holding the float32 probability exactly: what `fused` and the metrics were computed from
    columns[`p_${t}`] = Float64Array.from(scored.probs[t]!);
    schema.push({ name: `p_${t}`, type: 'float64' });
  }
  columns.fused = fuseScores(scored.probs, fusion.mode, fusion.weights);
  schema.push({ name: 'fused', type: 'float64' });
  const names = new Set(schema.map((d) => d.name));
  for (const c of extras.copied) {
    if (names.has(c.def.name)) throw new UsageError(`--with: column \`${c.def.name}\` (${c.what}) would appear twice in ${file} (it has row, request, stage, the labels, p_<task> and fused)`);
    names.add(c.def.name);
  }
  if (extras.copied.length === 0) {
    await writeTable(file, schema, [{ length: n, columns }]);
    return n;
  }
  // The copied columns are read again, file by file in the order scored, and written beside the scores.
  const read = extras.tables.reduce((s, t) => s + t.rows, 0);
  if (read !== n) throw new UsageError(`--with: the files hold ${read} rows, ${n} were scored`);
  const needs = extras.copied.filter((c, i) => extras.copied.findIndex((d) => d.source === c.source) === i).map((c) => ({ name: c.source, kind: copiedKind(extras.tables, c.source) }));
  async function* batches(): AsyncGenerator<ColumnBatch> {
    let at = 0;
    for (const t of extras.tables) {
      for await (const raw of readBatches(t, needs, 65536)) {
        const part: Record<string, ColumnValues> = {};
        for (const [name, values] of Object.entries(columns)) part[name] = Array.isArray(values) ? values.slice(at, at + raw.length) : (values as Float64Array | Int8Array).subarray(at, at + raw.length);
        for (const c of extras.copied) part[c.def.name] = copyColumn(raw, t.file, c);
        at += raw.length;
        yield { length: raw.length, columns: part };
      }
    }
  }
  await writeTable(file, [...schema, ...extras.copied.map((c) => c.def)], batches());
  return n;
}
