/** What the table readers give back: column kinds, raw batches of typed columns, and a file's description. */
import type { FileFormat } from './files.js';

/** How a column is wanted: as numbers, as strings, as lists of numbers, or as whatever it holds. */
export type ColumnKind = 'number' | 'string' | 'list' | 'id';

/** A column in a raw batch. `id` columns come back as numbers when integer-typed, else strings. */
export type RawColumn =
  | { type: 'number'; values: Float64Array; valid: Uint8Array | null }
  | { type: 'string'; values: (string | null)[] }
  | { type: 'list'; offsets: Int32Array; values: Float64Array | (string | null)[] };

export interface RawBatch {
  length: number;
  /** Rows of the file before this batch: row i of the batch is data row `offset + i + 1` of the file. */
  offset: number;
  columns: Map<string, RawColumn>;
}

/** How errors name a row: the 1-based data row of the file (the header of a CSV not counted). */
export function fileRow(batch: RawBatch, i: number): string {
  return `row ${batch.offset + i + 1}`;
}

export interface ColumnInfo {
  name: string;
  /** Physical type as the file declares it, e.g. BIGINT, VARCHAR, INTEGER[] (DuckDB names). */
  type: string;
  kind: 'number' | 'string' | 'list' | 'other';
}

export interface TableInfo {
  file: string;
  /** CSV only for `data inspect` (training reads Parquet and Arrow IPC). */
  format: FileFormat | 'csv';
  rows: number;
  columns: ColumnInfo[];
}

/** Concatenates the same columns of consecutive parts (of `lengths` rows each) into one batch's columns. */
export function concatColumns(parts: Map<string, RawColumn>[], lengths: number[]): Map<string, RawColumn> {
  if (parts.length === 1) return parts[0]!;
  const out = new Map<string, RawColumn>();
  const total = lengths.reduce((a, b) => a + b, 0);
  for (const name of parts[0]!.keys()) {
    const cols = parts.map((p) => p.get(name)!);
    const first = cols[0]!;
    if (first.type === 'number') {
      const values = new Float64Array(total);
      let valid: Uint8Array | null = null;
      let at = 0;
      cols.forEach((c, i) => {
        const cc = c as Extract<RawColumn, { type: 'number' }>;
        values.set(cc.values, at);
        if (cc.valid) (valid ??= new Uint8Array(total).fill(1)).set(cc.valid, at);
        at += lengths[i]!;
      });
      out.set(name, { type: 'number', values, valid });
    } else if (first.type === 'string') {
      const values: (string | null)[] = [];
      for (const c of cols as Extract<RawColumn, { type: 'string' }>[]) for (const x of c.values) values.push(x);
      out.set(name, { type: 'string', values });
    } else {
      const lists = cols as Extract<RawColumn, { type: 'list' }>[];
      const offsets = new Int32Array(total + 1);
      let row = 0;
      let base = 0;
      for (const c of lists) {
        for (let i = 1; i < c.offsets.length; i++) offsets[++row] = base + c.offsets[i]!;
        base += c.values.length;
      }
      let values: Float64Array | (string | null)[];
      if (lists.every((c) => c.values instanceof Float64Array)) {
        values = new Float64Array(base);
        let at = 0;
        for (const c of lists) (values.set(c.values as Float64Array, at), (at += c.values.length));
      } else {
        // Mixed batches (numbers, or strings) are unified as strings, which hash alike.
        values = [];
        for (const c of lists) for (const x of c.values) values.push(x === null ? null : String(x));
      }
      out.set(name, { type: 'list', offsets, values });
    }
  }
  return out;
}
