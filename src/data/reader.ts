/**
 * Streaming readers for Parquet (through DuckDB) and Arrow IPC (through apache-arrow).
 * Both yield batches of typed arrays for the requested columns only, with memory bounded by
 * the batch. A read that ends before the file's row count is an error, never a short read.
 */
import { createReadStream, existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import duckdb from '@duckdb/node-bindings';
import { DuckDBInstance, DuckDBVector, type DuckDBConnection, type DuckDBDataChunk } from '@duckdb/node-api';
import { RecordBatchReader, DataType, type Vector, type RecordBatch } from 'apache-arrow';
import { DataError } from '../base/errors.js';
import { detectFormat, expandFiles, type FileFormat } from './files.js';

/** How a column is wanted: as numbers, as strings, as lists of numbers, or as whatever it holds. */
export type ColumnKind = 'number' | 'string' | 'list' | 'id';

/** A column in a raw batch. `id` columns come back as numbers when integer-typed, else strings. */
export type RawColumn =
  | { type: 'number'; values: Float64Array; valid: Uint8Array | null }
  | { type: 'string'; values: (string | null)[] }
  | { type: 'list'; offsets: Int32Array; values: Float64Array | (string | null)[] };

export interface RawBatch {
  length: number;
  columns: Map<string, RawColumn>;
}

export interface ColumnInfo {
  name: string;
  /** Physical type as the file declares it, e.g. BIGINT, VARCHAR, INTEGER[] (DuckDB names). */
  type: string;
  kind: 'number' | 'string' | 'list' | 'other';
}

export interface TableInfo {
  file: string;
  format: FileFormat;
  rows: number;
  columns: ColumnInfo[];
}

// ---- DuckDB (Parquet) -----------------------------------------------------------------------

let sharedInstance: Promise<DuckDBInstance> | undefined;
async function connection(): Promise<DuckDBConnection> {
  sharedInstance ??= DuckDBInstance.create(':memory:', { threads: '2' });
  return (await sharedInstance).connect();
}

const sqlString = (s: string) => `'${s.replace(/'/g, "''")}'`;
const sqlIdent = (s: string) => `"${s.replace(/"/g, '""')}"`;

function classify(duckType: string): ColumnInfo['kind'] {
  const t = duckType.toUpperCase();
  if (t.endsWith('[]')) return 'list';
  if (/^(VARCHAR|STRING|TEXT|ENUM|UUID)/.test(t)) return 'string';
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|REAL|DECIMAL|BOOLEAN)/.test(t)) return 'number';
  return 'other';
}

async function parquetInfo(file: string): Promise<TableInfo> {
  const con = await connection();
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

function firstLine(err: unknown): string {
  return String(err instanceof Error ? err.message : err).split('\n')[0]!;
}

/** Accumulates DuckDB chunks (2048 rows) into batches of `batchRows`. */
class BatchBuilder {
  private filled = 0;
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
    const batch = { length: this.filled, columns };
    this.reset();
    return batch;
  }
}

async function* parquetBatches(info: TableInfo, wanted: { name: string; kind: ColumnKind }[], batchRows: number): AsyncGenerator<RawBatch> {
  const select = wanted.map((w) => {
    const c = sqlIdent(w.name);
    if (w.kind === 'number') return `TRY_CAST(${c} AS DOUBLE) AS ${c}`;
    if (w.kind === 'list') return c;
    return `CAST(${c} AS VARCHAR) AS ${c}`;
  });
  const con = await connection();
  let read = 0;
  try {
    const result = await con.stream(`SELECT ${select.join(', ')} FROM read_parquet(${sqlString(info.file)})`);
    const builder = new BatchBuilder(wanted, batchRows);
    for (;;) {
      let chunk: DuckDBDataChunk;
      try {
        chunk = await result.fetchChunk() as DuckDBDataChunk;
      } catch (err) {
        throw new DataError(`${info.file}: read failed after ${read} of ${info.rows} rows: ${firstLine(err)}`);
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
  // DuckDB can end a failing stream as if the file were complete (DESIGN §9).
  if (read !== info.rows) throw new DataError(`${info.file}: read ${read} rows but the file declares ${info.rows}; the file is truncated or corrupt`);
}

// ---- Arrow IPC --------------------------------------------------------------------------------

function arrowKind(t: DataType): ColumnInfo['kind'] {
  if (DataType.isInt(t) || DataType.isFloat(t) || DataType.isBool(t) || DataType.isDecimal(t)) return 'number';
  if (DataType.isUtf8(t) || DataType.isLargeUtf8(t) || DataType.isDictionary(t)) return 'string';
  if (DataType.isList(t)) return 'list';
  return 'other';
}

/** The Arrow IPC file format starts with this magic; the stream format does not. */
const ARROW_FILE_MAGIC = 'ARROW1';

async function openArrow(file: string): Promise<{ reader: RecordBatchReader; close: () => Promise<void> }> {
  let handle: FileHandle | undefined;
  try {
    // The file format keeps its schema and batch index in a footer: give arrow-js random access so
    // it reads batch by batch instead of buffering the whole stream to reach the footer.
    handle = await open(file, 'r');
    const head = Buffer.alloc(ARROW_FILE_MAGIC.length);
    await handle.read(head, 0, head.length, 0);
    if (head.toString('latin1') !== ARROW_FILE_MAGIC) {
      await handle.close();
      handle = undefined;
    }
    const reader = (handle ? await RecordBatchReader.from(handle) : await RecordBatchReader.from(createReadStream(file))) as RecordBatchReader;
    await reader.open();
    if (!reader.schema) throw new Error('no Arrow schema (empty file?)');
    const h = handle;
    return { reader, close: async () => void (await h?.close().catch(() => undefined)) };
  } catch (err) {
    await handle?.close().catch(() => undefined);
    throw new DataError(`${file}: not a readable Arrow IPC file (${firstLine(err)})`);
  }
}

async function arrowInfo(file: string): Promise<TableInfo> {
  const { reader, close } = await openArrow(file);
  const columns = reader.schema.fields.map((f) => ({ name: f.name, type: String(f.type), kind: arrowKind(f.type) }));
  let rows = 0;
  try {
    for await (const b of reader) rows += b.numRows;
  } catch (err) {
    throw new DataError(`${file}: Arrow IPC data is truncated or corrupt after ${rows} rows (${firstLine(err)})`);
  } finally {
    await close();
  }
  return { file, format: 'arrow', rows, columns };
}

/**
 * Numbers of rows [from, from+n) of a vector, read from its buffers. arrow-js re-bases the value
 * and offset buffers of a slice; `Data.offset` only applies to the validity bitmap.
 */
function arrowNumbers(v: Vector, from: number, n: number): { values: Float64Array; valid: Uint8Array | null } {
  const sliced = v.slice(from, from + n);
  const out = new Float64Array(n);
  let valid: Uint8Array | null = null;
  let at = 0;
  for (const d of sliced.data) {
    const raw = d.values as ArrayLike<number | bigint> & { subarray?: unknown };
    if (DataType.isBool(d.type) || DataType.isDecimal(d.type) || typeof raw !== 'object' || raw === null) {
      for (let i = 0; i < d.length; i++) {
        const x = sliced.get(at + i);
        out[at + i] = x === null ? 0 : Number(x);
      }
    } else if (raw instanceof BigInt64Array || raw instanceof BigUint64Array) {
      for (let i = 0; i < d.length; i++) out[at + i] = Number(raw[i]!);
    } else {
      const typed = raw as unknown as Float32Array;
      out.set(typed.subarray(0, d.length), at);
    }
    if (d.nullCount > 0) {
      for (let i = 0; i < d.length; i++) if (!sliced.isValid(at + i)) (valid ??= new Uint8Array(n).fill(1))[at + i] = 0;
    }
    at += d.length;
  }
  return { values: out, valid };
}

/** Rows [from, from+n) of a list vector as CSR offsets and flat values, from its buffers. */
function arrowList(v: Vector, from: number, n: number): Extract<RawColumn, { type: 'list' }> {
  const sliced = v.slice(from, from + n);
  const offsets = new Int32Array(n + 1);
  const parts: Float64Array[] = [];
  let strings: (string | null)[] | null = null;
  let row = 0;
  let total = 0;
  for (const d of sliced.data) {
    const offs = d.valueOffsets as Int32Array;
    const child = d.children[0]!;
    const start = offs[0]!;
    const end = offs[d.length]!;
    for (let i = 0; i < d.length; i++) offsets[++row] = total + offs[i + 1]! - start;
    const childVector = sliced.getChildAt(0);
    if (DataType.isUtf8(child.type) || DataType.isDictionary(child.type)) {
      strings ??= [];
      for (let j = start; j < end; j++) {
        const x = (childVector?.get(j) ?? null) as unknown;
        strings.push(x === null ? null : String(x));
      }
    } else {
      const raw = child.values as unknown as ArrayLike<number | bigint>;
      const part = new Float64Array(end - start);
      for (let j = start; j < end; j++) part[j - start] = Number(raw[j]!);
      parts.push(part);
    }
    total += end - start;
  }
  if (strings) return { type: 'list', offsets, values: strings };
  const values = new Float64Array(total);
  let at = 0;
  for (const p of parts) (values.set(p, at), (at += p.length));
  return { type: 'list', offsets, values };
}

function arrowColumn(v: Vector, kind: ColumnKind, from: number, n: number, file: string, name: string): RawColumn {
  const k = arrowKind(v.type);
  if (kind === 'list') {
    if (k !== 'list') throw new DataError(`${file}: column \`${name}\` is ${String(v.type)}, expected a list of ids`);
    return arrowList(v, from, n);
  }
  if (kind === 'number' || (kind === 'id' && k === 'number')) {
    if (k !== 'number') throw new DataError(`${file}: column \`${name}\` is ${String(v.type)}, expected numbers`);
    return { type: 'number', ...arrowNumbers(v, from, n) };
  }
  const values: (string | null)[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const x = v.get(from + i);
    values[i] = x === null || x === undefined ? null : String(x);
  }
  return { type: 'string', values };
}

async function* arrowBatches(info: TableInfo, wanted: { name: string; kind: ColumnKind }[], batchRows: number): AsyncGenerator<RawBatch> {
  const { reader, close } = await openArrow(info.file);
  let read = 0;
  // Re-slice the file's record batches into batches of batchRows.
  let pending: { batch: RecordBatch; from: number }[] = [];
  let pendingRows = 0;
  const emit = (rows: number): RawBatch => {
    const parts: Map<string, RawColumn>[] = [];
    let left = rows;
    const lengths: number[] = [];
    while (left > 0) {
      const head = pending[0]!;
      const n = Math.min(left, head.batch.numRows - head.from);
      const cols = new Map<string, RawColumn>();
      for (const w of wanted) {
        const v = head.batch.getChild(w.name);
        if (!v) throw new DataError(`${info.file}: missing column \`${w.name}\``);
        cols.set(w.name, arrowColumn(v, w.kind, head.from, n, info.file, w.name));
      }
      parts.push(cols);
      lengths.push(n);
      head.from += n;
      left -= n;
      if (head.from === head.batch.numRows) pending.shift();
    }
    pendingRows -= rows;
    read += rows;
    return { length: rows, columns: concatColumns(parts, lengths) };
  };
  try {
    for await (const batch of reader) {
      if (batch.numRows === 0) continue;
      pending.push({ batch, from: 0 });
      pendingRows += batch.numRows;
      while (pendingRows >= batchRows) yield emit(batchRows);
    }
  } catch (err) {
    if (err instanceof DataError) throw err;
    throw new DataError(`${info.file}: Arrow IPC data is truncated or corrupt after ${read + pendingRows} rows (${firstLine(err)})`);
  } finally {
    await close();
  }
  if (pendingRows > 0) yield emit(pendingRows);
  pending = [];
  if (read !== info.rows) throw new DataError(`${info.file}: read ${read} rows but the file held ${info.rows} when opened`);
}

function concatColumns(parts: Map<string, RawColumn>[], lengths: number[]): Map<string, RawColumn> {
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

// ---- public API -----------------------------------------------------------------------------

export async function tableInfo(file: string, format: 'auto' | FileFormat = 'auto'): Promise<TableInfo> {
  if (!existsSync(file)) throw new DataError(`${file}: file not found`);
  const f = detectFormat(file, format);
  return f === 'parquet' ? parquetInfo(file) : arrowInfo(file);
}

/** Checks that every wanted column exists with a usable type; errors name the column and file. */
export function checkColumns(info: TableInfo, wanted: { name: string; kind: ColumnKind; role: string }[]): void {
  for (const w of wanted) {
    const col = info.columns.find((c) => c.name === w.name);
    if (!col) {
      const names = info.columns.map((c) => c.name);
      throw new DataError(`${info.file}: missing column \`${w.name}\` (${w.role}); the file has: ${names.join(', ')}`);
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
  if (info.format === 'parquet') yield* parquetBatches(info, resolved, batchRows);
  else yield* arrowBatches(info, resolved, batchRows);
}

/** Table infos for a file spec, in order; the first error names the file. */
export async function openTables(spec: string | string[], format: 'auto' | FileFormat, what: string): Promise<TableInfo[]> {
  const files = expandFiles(spec, what);
  const infos: TableInfo[] = [];
  for (const f of files) infos.push(await tableInfo(path.resolve(f), format));
  return infos;
}
