/**
 * Parquet through DuckDB: the file's description from its metadata, and its rows streamed as DuckDB
 * chunks (2048 rows) re-cut into batches of the size asked for.
 */
import duckdb from '@duckdb/node-bindings';
import { DuckDBVector, type DuckDBDataChunk } from '@duckdb/node-api';
import { DataError } from '../base/errors.js';
import { firstLine, sharedConnection, sqlIdent, sqlString } from './duckdb.js';
import type { ColumnInfo, ColumnKind, RawBatch, RawColumn, TableInfo } from './raw-batch.js';

/** A DuckDB type name's column kind. */
export function classify(duckType: string): ColumnInfo['kind'] {
  const t = duckType.toUpperCase();
  if (t.endsWith('[]')) return 'list';
  if (/^(VARCHAR|STRING|TEXT|ENUM|UUID)/.test(t)) return 'string';
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|REAL|DECIMAL|BOOLEAN)/.test(t)) return 'number';
  return 'other';
}

export async function parquetInfo(file: string): Promise<TableInfo> {
  const con = await sharedConnection();
  try {
    let rows: number;
    try {
      const r = await con.runAndReadAll(`SELECT COALESCE(SUM(num_rows), 0)::BIGINT FROM parquet_file_metadata(${sqlString(file)})`);
      rows = Number(r.getRows()[0]![0]);
    } catch (err) {
      throw new DataError(`${file}: not a readable Parquet file (${firstLine(err)})`);
    }
    const d = await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlString(file)})`);
    const columns = d.getRows().map((r) => ({ name: String(r[0]), type: String(r[1]), kind: classify(String(r[1])) }));
    return { file, format: 'parquet', rows, columns };
  } finally {
    con.closeSync();
  }
}


/** Accumulates DuckDB chunks (2048 rows) into batches of `batchRows`. */
class BatchBuilder {
  private filled = 0;
  /** Rows of the file handed out before the batch being filled. */
  private offset = 0;
  private cols: { name: string; kind: ColumnKind; num?: Float64Array; valid?: Uint8Array; anyNull?: boolean; str?: (string | null)[]; offsets?: number[]; listNum?: number[]; listStr?: (string | null)[] }[];
  constructor(
    private readonly spec: { name: string; kind: ColumnKind }[],
    private readonly capacity: number,
  ) {
    this.cols = [];
    this.reset();
  }
  get size(): number {
    return this.filled;
  }
  reset(): void {
    this.filled = 0;
    this.cols = this.spec.map((s) =>
      s.kind === 'number'
        ? { ...s, num: new Float64Array(this.capacity), valid: new Uint8Array(this.capacity).fill(1), anyNull: false }
        : s.kind === 'list'
          ? { ...s, offsets: [0], listNum: [], listStr: [] }
          : { ...s, str: [] },
    );
  }
  /** Appends rows [from, to) of a chunk; returns rows taken. */
  append(chunk: DuckDBDataChunk, from: number): number {
    const n = Math.min(chunk.rowCount - from, this.capacity - this.filled);
    this.cols.forEach((c, ci) => {
      const vec = duckdb.data_chunk_get_vector(chunk.chunk, ci);
      if (c.kind === 'number') {
        const bytes = duckdb.vector_get_data(vec, chunk.rowCount * 8);
        const data = new Float64Array(bytes.buffer, bytes.byteOffset, chunk.rowCount);
        c.num!.set(data.subarray(from, from + n), this.filled);
        const validity = duckdb.vector_get_validity(vec, Math.ceil(chunk.rowCount / 64) * 8);
        if (validity) {
          for (let i = 0; i < n; i++) {
            const r = from + i;
            if (((validity[r >> 3]! >> (r & 7)) & 1) === 0) {
              c.valid![this.filled + i] = 0;
              c.anyNull = true;
            }
          }
        }
      } else if (c.kind === 'list') {
        const v = DuckDBVector.create(vec, chunk.rowCount);
        for (let i = 0; i < n; i++) {
          const item = v.getItem(from + i) as { items?: unknown[] } | null;
          for (const x of item?.items ?? []) {
            if (typeof x === 'number' || typeof x === 'bigint') c.listNum!.push(Number(x));
            else c.listStr!.push(x === null ? null : String(x));
          }
          c.offsets!.push(c.listNum!.length + c.listStr!.length);
        }
      } else {
        const v = DuckDBVector.create(vec, chunk.rowCount);
        for (let i = 0; i < n; i++) {
          const x = v.getItem(from + i);
          c.str!.push(x === null ? null : String(x));
        }
      }
    });
    this.filled += n;
    return n;
  }
  take(): RawBatch {
    const columns = new Map<string, RawColumn>();
    for (const c of this.cols) {
      if (c.kind === 'number') {
        columns.set(c.name, { type: 'number', values: c.num!.slice(0, this.filled), valid: c.anyNull ? c.valid!.slice(0, this.filled) : null });
      } else if (c.kind === 'list') {
        columns.set(c.name, {
          type: 'list',
          offsets: Int32Array.from(c.offsets!),
          values: c.listStr!.length > 0 ? c.listStr! : Float64Array.from(c.listNum!),
        });
      } else columns.set(c.name, { type: 'string', values: c.str! });
    }
    const batch = { length: this.filled, offset: this.offset, columns };
    this.offset += this.filled;
    this.reset();
    return batch;
  }
}

export function parquetBatches(info: TableInfo, wanted: { name: string; kind: ColumnKind }[], batchRows: number): AsyncGenerator<RawBatch> {
  return duckdbBatches(info, `read_parquet(${sqlString(info.file)})`, wanted, batchRows, (err, read) => new DataError(`${info.file}: read failed after ${read} of ${info.rows} rows: ${firstLine(err)}`));
}

/**
 * Streams the wanted columns of a DuckDB table function (`read_parquet(...)`, `read_csv(...)`) in
 * batches; `readError` turns a failed fetch into the error to throw.
 */
export async function* duckdbBatches(
  info: TableInfo,
  from: string,
  wanted: { name: string; kind: ColumnKind }[],
  batchRows: number,
  readError: (err: unknown, read: number) => Error,
): AsyncGenerator<RawBatch> {
  const select = wanted.map((w) => {
    const c = sqlIdent(w.name);
    if (w.kind === 'number') return `TRY_CAST(${c} AS DOUBLE) AS ${c}`;
    if (w.kind === 'list') {
      // DECIMAL items would come back as text and hash unlike the same integer: read them as numbers.
      const type = info.columns.find((x) => x.name === w.name)?.type ?? '';
      return /^DECIMAL/i.test(type) ? `CAST(${c} AS DOUBLE[]) AS ${c}` : c;
    }
    return `CAST(${c} AS VARCHAR) AS ${c}`;
  });
  const con = await sharedConnection();
  let read = 0;
  try {
    let result: Awaited<ReturnType<typeof con.stream>>;
    try {
      result = await con.stream(`SELECT ${select.join(', ')} FROM ${from}`);
    } catch (err) {
      throw readError(err, 0);
    }
    const builder = new BatchBuilder(wanted, batchRows);
    for (;;) {
      let chunk: DuckDBDataChunk;
      try {
        chunk = await result.fetchChunk() as DuckDBDataChunk;
      } catch (err) {
        throw readError(err, read);
      }
      if (!chunk || chunk.rowCount === 0) break;
      let from = 0;
      while (from < chunk.rowCount) {
        from += builder.append(chunk, from);
        if (builder.size === batchRows) {
          read += batchRows;
          yield builder.take();
        }
      }
    }
    if (builder.size > 0) {
      read += builder.size;
      yield builder.take();
    }
  } finally {
    con.closeSync();
  }
  // DuckDB can end a failing stream as if the file were complete (docs/domain.md, Facts about the platform).
  if (read !== info.rows) throw new DataError(`${info.file}: read ${read} rows but the file declares ${info.rows}; the file is truncated or corrupt`);
}
