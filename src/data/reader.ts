/**
 * Streaming readers for Parquet (through DuckDB) and Arrow IPC (through apache-arrow), and CSV for
 * `data inspect` (`tableInfo(..., { csv: true })`).
 * Both yield batches of typed arrays for the requested columns only, with memory bounded by
 * the batch. A read that ends before the file's row count is an error, never a short read.
 * The formats live in read-parquet.ts and read-arrow.ts; the batch types in raw-batch.ts.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../base/errors.js';
import { detectFormat, expandFiles, type FileFormat } from './files.js';
import type { ColumnKind, RawBatch, TableInfo } from './raw-batch.js';
import { arrowBatches, arrowInfo } from './read-arrow.js';
import { parquetBatches, parquetInfo } from './read-parquet.js';
import { csvBatches, csvInfo } from './read-csv.js';

export type { ColumnInfo, ColumnKind, RawBatch, RawColumn, TableInfo } from './raw-batch.js';
export { fileRow } from './raw-batch.js';

export async function tableInfo(file: string, format: 'auto' | FileFormat = 'auto', opts: { csv?: boolean } = {}): Promise<TableInfo> {
  if (!existsSync(file)) throw new DataError(`${file}: file not found`);
  if (opts.csv && format === 'auto' && path.extname(file).toLowerCase() === '.csv') return csvInfo(file);
  const f = detectFormat(file, format);
  return f === 'parquet' ? parquetInfo(file) : arrowInfo(file);
}

/** Checks that every wanted column exists with a usable type; errors name the column and file. */
export function checkColumns(info: TableInfo, wanted: { name: string; kind: ColumnKind; role: string; hint?: string }[]): void {
  for (const w of wanted) {
    const col = info.columns.find((c) => c.name === w.name);
    if (!col) {
      const names = info.columns.map((c) => c.name);
      throw new DataError(`${info.file}: missing column \`${w.name}\` (${w.role})${w.hint ? `; ${w.hint}` : ''}; the file has: ${names.join(', ')}`);
    }
    const ok =
      w.kind === 'number' ? col.kind === 'number'
      : w.kind === 'list' ? col.kind === 'list'
      : w.kind === 'string' ? col.kind === 'string' || col.kind === 'number'
      : col.kind === 'number' || col.kind === 'string';
    if (!ok) {
      const expected = w.kind === 'number' ? 'a numeric column' : w.kind === 'list' ? 'a list column' : 'an integer or string column';
      throw new DataError(`${info.file}: column \`${w.name}\` (${w.role}) has type ${col.type}, expected ${expected}`);
    }
  }
}

/**
 * Streams the wanted columns of one file in batches of `batchRows` rows.
 * `id` columns are read as numbers when the file stores integers, else as strings.
 */
export async function* readBatches(
  info: TableInfo,
  wanted: { name: string; kind: ColumnKind }[],
  batchRows: number,
): AsyncGenerator<RawBatch> {
  const resolved = wanted.map((w) => {
    if (w.kind !== 'id') return w;
    const col = info.columns.find((c) => c.name === w.name);
    return { name: w.name, kind: (col?.kind === 'number' ? 'number' : 'string') as ColumnKind };
  });
  if (resolved.length === 0) {
    // Nothing to read (e.g. `data inspect` on a file without role columns): only the row count matters.
    for (let offset = 0; offset < info.rows; offset += batchRows) yield { length: Math.min(batchRows, info.rows - offset), offset, columns: new Map() };
  } else if (info.format === 'parquet') yield* parquetBatches(info, resolved, batchRows);
  else if (info.format === 'csv') yield* csvBatches(info, resolved, batchRows);
  else yield* arrowBatches(info, resolved, batchRows);
}

/** Table infos for a file spec, in order; the first error names the file. */
export async function openTables(spec: string | string[], format: 'auto' | FileFormat, what: string): Promise<TableInfo[]> {
  const files = expandFiles(spec, what);
  const infos: TableInfo[] = [];
  for (const f of files) infos.push(await tableInfo(path.resolve(f), format));
  return infos;
}
