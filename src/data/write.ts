/**
 * Streaming table writer: Parquet (through DuckDB), Arrow IPC file format (through apache-arrow) and CSV.
 *
 * - Files are written whole: the data goes to a temporary name in the target's folder and is renamed
 *   over the target at the end; on any error the temporary file is removed and the error rethrown.
 * - Memory is bounded by one batch, not by the file: batches are consumed one at a time.
 *   Parquet (write-parquet.ts) stages each batch in a scratch DuckDB database file and copies it out
 *   in one pass; Arrow (write-arrow.ts) writes one record batch per batch; CSV (write-csv.ts) formats
 *   and writes each batch.
 * - Nothing is printed.
 */
import { mkdirSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import { DataError } from '../base/errors.js';
import { DEFAULT_ROW_GROUP_SIZE, formatFromPath, type ColumnBatch, type ColumnDef, type WriteOptions } from './table-schema.js';
import { checkSchema } from './write-columns.js';
import { writeArrow } from './write-arrow.js';
import { writeCsv } from './write-csv.js';
import { writeParquet } from './write-parquet.js';

export {
  DEFAULT_ROW_GROUP_SIZE,
  formatFromPath,
  type ColumnBatch,
  type ColumnDef,
  type ColumnType,
  type ColumnValues,
  type TableFormat,
  type WriteOptions,
} from './table-schema.js';
/** Kept for callers that imported it from here; it lives in duckdb.ts. */
export { withDuckDB } from './duckdb.js';

/**
 * Writes batches to `file` atomically (temporary name in the same folder, then rename).
 * Returns the number of rows written.
 */
export async function writeTable(
  file: string,
  schema: ColumnDef[],
  batches: Iterable<ColumnBatch> | AsyncIterable<ColumnBatch>,
  opts: WriteOptions = {},
): Promise<{ rows: number }> {
  const format = opts.format ?? formatFromPath(file);
  checkSchema(file, schema);
  const compression = opts.compression ?? 'zstd';
  if (!['zstd', 'snappy', 'uncompressed'].includes(compression)) {
    throw new DataError(`unknown compression '${compression}' for '${file}'`);
  }
  const rowGroupSize = opts.rowGroupSize ?? DEFAULT_ROW_GROUP_SIZE;
  if (!Number.isInteger(rowGroupSize) || rowGroupSize < 1) {
    throw new DataError(`row group size must be a positive integer, got ${rowGroupSize}`);
  }
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${basename(file)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    let rows: number;
    if (format === 'parquet') rows = await writeParquet(tmp, file, schema, batches, compression, rowGroupSize);
    else if (format === 'arrow') rows = await writeArrow(tmp, file, schema, batches);
    else if (format === 'csv') rows = await writeCsv(tmp, file, schema, batches);
    else throw new DataError(`unknown table format '${String(format)}' for '${file}'`);
    renameSync(tmp, file);
    return { rows };
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
