/** What the table writers take: column definitions, batches of typed columns, and the file formats. */
import { extname } from 'node:path';
import { DataError } from '../base/errors.js';

export type ColumnType = 'int8' | 'int32' | 'int64' | 'float32' | 'float64' | 'string' | 'list_int32';
export interface ColumnDef {
  name: string;
  type: ColumnType;
}
/**
 * One batch of columns, all of `length` rows. int64 values may come as Float64Array holding integers
 * (or BigInt64Array). list_int32 comes as CSR: offsets has length+1 entries into values.
 */
export type ColumnValues =
  | Int8Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | string[]
  | { offsets: Int32Array; values: Int32Array };
export interface ColumnBatch {
  length: number;
  columns: Record<string, ColumnValues>;
}
export type TableFormat = 'parquet' | 'arrow' | 'csv';
export interface WriteOptions {
  format?: TableFormat;
  /** Parquet only (default zstd). Arrow files are written uncompressed; CSV is plain text. */
  compression?: 'zstd' | 'snappy' | 'uncompressed';
  /** Parquet row group size in rows (default 122880); DuckDB rounds it up to a multiple of 2048. */
  rowGroupSize?: number;
}

export const DEFAULT_ROW_GROUP_SIZE = 122880;

const EXTENSIONS: Record<string, TableFormat> = {
  '.parquet': 'parquet',
  '.pq': 'parquet',
  '.arrow': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
  '.csv': 'csv',
};

/** The table format a file name implies, by its extension. */
export function formatFromPath(file: string): TableFormat {
  const ext = extname(file).toLowerCase();
  const format = EXTENSIONS[ext];
  if (!format) {
    throw new DataError(
      `cannot tell the table format of '${file}' from its extension; use one of ${Object.keys(EXTENSIONS).join(', ')}`,
    );
  }
  return format;
}

