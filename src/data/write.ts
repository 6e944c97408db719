/**
 * Streaming table writer: Parquet (through DuckDB), Arrow IPC file format (through apache-arrow) and CSV.
 *
 * - Files are written whole: the data goes to a temporary name in the target's folder and is renamed
 *   over the target at the end; on any error the temporary file is removed and the error rethrown.
 * - Memory is bounded by one batch, not by the file: batches are consumed one at a time.
 *   Parquet: batches are appended (as raw DuckDB data chunks, copied column by column) into a table of a
 *   temporary DuckDB database file in os.tmpdir() (DuckDB writes full row groups to that file as they
 *   fill, so memory stays flat), then `COPY ... TO ... (FORMAT parquet)` writes the file in one pass and
 *   the database file is deleted. Arrow: each batch becomes one record batch, written synchronously to
 *   the file. CSV: each batch is formatted and written synchronously.
 * - Nothing is printed.
 */
import { closeSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { availableParallelism, endianness, tmpdir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import duckdb from '@duckdb/node-bindings';
import {
  BIGINT,
  DOUBLE,
  DuckDBConnection,
  DuckDBDataChunk,
  DuckDBInstance,
  FLOAT,
  INTEGER,
  LIST,
  TINYINT,
  VARCHAR,
  type DuckDBType,
} from '@duckdb/node-api';
import {
  Data,
  Field,
  Float32,
  Float64,
  Int8,
  Int32,
  Int64,
  List,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Utf8,
  makeData,
} from 'apache-arrow';
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

/** Opens an in-memory DuckDB instance, runs fn with a connection, and always closes both. */
export async function withDuckDB<T>(fn: (con: DuckDBConnection) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(':memory:');
  try {
    const con = await instance.connect();
    try {
      return await fn(con);
    } finally {
      con.closeSync();
    }
  } finally {
    instance.closeSync();
  }
}

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

// ---------------------------------------------------------------------------------------------
// Validation and conversion helpers

const TYPES: readonly ColumnType[] = ['int8', 'int32', 'int64', 'float32', 'float64', 'string', 'list_int32'];

function checkSchema(file: string, schema: ColumnDef[]): void {
  if (!Array.isArray(schema) || schema.length === 0) {
    throw new DataError(`cannot write '${file}': the schema has no columns`);
  }
  const seen = new Set<string>();
  for (const c of schema) {
    if (typeof c.name !== 'string' || c.name.length === 0) {
      throw new DataError(`cannot write '${file}': a column has an empty name`);
    }
    if (seen.has(c.name)) throw new DataError(`cannot write '${file}': column '${c.name}' appears twice`);
    seen.add(c.name);
    if (!TYPES.includes(c.type)) {
      throw new DataError(
        `cannot write '${file}': column '${c.name}' has unknown type '${String(c.type)}' (expected one of ${TYPES.join(', ')})`,
      );
    }
  }
}

type NumericArray = Int8Array | Int32Array | Float32Array | Float64Array | BigInt64Array;
interface CsrList {
  offsets: Int32Array;
  values: Int32Array;
}

/** A batch's column checked against its definition and brought to the canonical array type. */
type Canon =
  | { kind: 'fixed'; data: Int8Array | Int32Array | Float32Array | Float64Array }
  | { kind: 'int64'; data: Float64Array | BigInt64Array }
  | { kind: 'string'; data: string[] }
  | { kind: 'list'; data: CsrList };

function isTypedNumeric(v: unknown): v is NumericArray {
  return (
    v instanceof Int8Array ||
    v instanceof Int32Array ||
    v instanceof Float32Array ||
    v instanceof Float64Array ||
    v instanceof BigInt64Array ||
    v instanceof Int16Array ||
    v instanceof Uint8Array ||
    v instanceof Uint16Array ||
    v instanceof Uint32Array
  );
}

function canonColumn(file: string, def: ColumnDef, v: ColumnValues | undefined, length: number): Canon {
  const where = `cannot write '${file}': column '${def.name}'`;
  if (v === undefined || v === null) throw new DataError(`${where} is missing from a batch`);
  if (def.type === 'list_int32') {
    const l = v as CsrList;
    if (!(l.offsets instanceof Int32Array) || !(l.values instanceof Int32Array)) {
      throw new DataError(`${where} (list_int32) must come as { offsets: Int32Array, values: Int32Array }`);
    }
    if (l.offsets.length !== length + 1) {
      throw new DataError(`${where} has ${l.offsets.length} offsets for ${length} rows (expected ${length + 1})`);
    }
    const first = l.offsets[0]!;
    const last = l.offsets[length]!;
    if (first < 0 || last > l.values.length || last < first) {
      throw new DataError(`${where} has offsets outside its ${l.values.length} values`);
    }
    for (let i = 0; i < length; i++) {
      if (l.offsets[i + 1]! < l.offsets[i]!) throw new DataError(`${where} has decreasing offsets at row ${i}`);
    }
    return { kind: 'list', data: l };
  }
  if (def.type === 'string') {
    if (!Array.isArray(v)) throw new DataError(`${where} (string) must come as an array of strings`);
    if (v.length !== length) throw new DataError(`${where} has ${v.length} values in a batch of ${length} rows`);
    for (let i = 0; i < length; i++) {
      if (typeof v[i] !== 'string') throw new DataError(`${where} has a non-string value at row ${i}`);
    }
    return { kind: 'string', data: v };
  }
  if (!isTypedNumeric(v)) throw new DataError(`${where} (${def.type}) must come as a typed array`);
  if (v.length !== length) throw new DataError(`${where} has ${v.length} values in a batch of ${length} rows`);
  if (def.type === 'int64') {
    if (v instanceof BigInt64Array) return { kind: 'int64', data: v };
    const f = v instanceof Float64Array ? v : Float64Array.from(v as ArrayLike<number>);
    for (let i = 0; i < length; i++) {
      const x = f[i]!;
      if (!(x === Math.floor(x) && x <= Number.MAX_SAFE_INTEGER && x >= -Number.MAX_SAFE_INTEGER)) {
        throw new DataError(`${where} (int64) has a value that is not a safe integer at row ${i}: ${x}`);
      }
    }
    return { kind: 'int64', data: f };
  }
  if (v instanceof BigInt64Array) {
    throw new DataError(`${where} (${def.type}) cannot come as BigInt64Array`);
  }
  const src = v as Exclude<NumericArray, BigInt64Array>;
  switch (def.type) {
    case 'int8':
      return { kind: 'fixed', data: src instanceof Int8Array ? src : Int8Array.from(src) };
    case 'int32':
      return { kind: 'fixed', data: src instanceof Int32Array ? src : Int32Array.from(src) };
    case 'float32':
      return { kind: 'fixed', data: src instanceof Float32Array ? src : Float32Array.from(src) };
    case 'float64':
      return { kind: 'fixed', data: src instanceof Float64Array ? src : Float64Array.from(src) };
    default:
      throw new DataError(`${where} has unsupported type '${def.type}'`);
  }
}

function canonBatch(file: string, schema: ColumnDef[], batch: ColumnBatch): Canon[] {
  if (!batch || typeof batch !== 'object' || !Number.isInteger(batch.length) || batch.length < 0) {
    throw new DataError(`cannot write '${file}': a batch has no valid length`);
  }
  const cols = batch.columns ?? {};
  return schema.map((def) => canonColumn(file, def, cols[def.name], batch.length));
}

if (endianness() !== 'LE') {
  // The int64 and list-entry conversions below write little-endian words.
  throw new Error('resflow data writer needs a little-endian machine');
}

const TWO32 = 4294967296;

/** Writes n int64 values from src[start..] as little-endian words into out (2 int32 per value). */
function int64Words(src: Float64Array | BigInt64Array, start: number, n: number, out: Int32Array): void {
  if (src instanceof BigInt64Array) {
    const words = new Int32Array(src.buffer, src.byteOffset + start * 8, n * 2);
    out.set(words);
    return;
  }
  for (let i = 0; i < n; i++) {
    const x = src[start + i]!;
    const hi = Math.floor(x / TWO32);
    out[2 * i] = (x - hi * TWO32) | 0;
    out[2 * i + 1] = hi | 0;
  }
}

async function* iterate<T>(it: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  if (Symbol.asyncIterator in (it as object)) {
    for await (const x of it as AsyncIterable<T>) yield x;
  } else {
    for (const x of it as Iterable<T>) yield x;
  }
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
function sqlIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

// ---------------------------------------------------------------------------------------------
// Parquet through DuckDB

const DUCK_TYPES: Record<ColumnType, { sql: string; type: () => DuckDBType }> = {
  int8: { sql: 'TINYINT', type: () => TINYINT },
  int32: { sql: 'INTEGER', type: () => INTEGER },
  int64: { sql: 'BIGINT', type: () => BIGINT },
  float32: { sql: 'FLOAT', type: () => FLOAT },
  float64: { sql: 'DOUBLE', type: () => DOUBLE },
  string: { sql: 'VARCHAR', type: () => VARCHAR },
  list_int32: { sql: 'INTEGER[]', type: () => LIST(INTEGER) },
};

/** Fills chunk (already sized to n rows) with rows [start, start+n) of the batch. */
function fillChunk(chunk: DuckDBDataChunk, cols: Canon[], start: number, n: number, scratch: Int32Array): void {
  const raw = chunk.chunk;
  for (let c = 0; c < cols.length; c++) {
    const col = cols[c]!;
    const vec = duckdb.data_chunk_get_vector(raw, c);
    switch (col.kind) {
      case 'fixed': {
        const a = col.data;
        const bpe = a.BYTES_PER_ELEMENT;
        duckdb.copy_data_to_vector(vec, 0, a.buffer as ArrayBuffer, a.byteOffset + start * bpe, n * bpe);
        break;
      }
      case 'int64': {
        int64Words(col.data, start, n, scratch);
        duckdb.copy_data_to_vector(vec, 0, scratch.buffer as ArrayBuffer, scratch.byteOffset, n * 8);
        break;
      }
      case 'string': {
        const a = col.data;
        for (let i = 0; i < n; i++) duckdb.vector_assign_string_element(vec, i, a[start + i]!);
        break;
      }
      case 'list': {
        const { offsets, values } = col.data;
        const base = offsets[start]!;
        const total = offsets[start + n]! - base;
        // list entries: (offset: uint64, length: uint64) per row, offsets relative to this chunk
        for (let i = 0; i < n; i++) {
          scratch[4 * i] = offsets[start + i]! - base;
          scratch[4 * i + 1] = 0;
          scratch[4 * i + 2] = offsets[start + i + 1]! - offsets[start + i]!;
          scratch[4 * i + 3] = 0;
        }
        duckdb.copy_data_to_vector(vec, 0, scratch.buffer as ArrayBuffer, scratch.byteOffset, n * 16);
        duckdb.list_vector_reserve(vec, total);
        duckdb.list_vector_set_size(vec, total);
        if (total > 0) {
          const child = duckdb.list_vector_get_child(vec);
          duckdb.copy_data_to_vector(child, 0, values.buffer as ArrayBuffer, values.byteOffset + base * 4, total * 4);
        }
        break;
      }
    }
  }
}

/** Rough in-memory bytes per row of a column while DuckDB builds a row group. */
const ROW_BYTES: Record<ColumnType, number> = {
  int8: 1,
  int32: 4,
  int64: 8,
  float32: 4,
  float64: 8,
  string: 32,
  list_int32: 32,
};

/**
 * DuckDB settings for staging a Parquet file. The memory limit bounds DuckDB's buffer pool (the staged
 * table spills to the scratch database file beyond it); the Parquet writer needs about two row groups
 * per thread in memory and cannot spill, so the limit grows with the row group size (and a COPY that
 * still runs out of memory is retried with more). Measured on the 10M-row synthetic preset (2 cores):
 * peak RSS ~450 MB with a 64 MB limit, ~530 MB with 128 MB (the floor here), ~870 MB with 256 MB, at
 * about the same speed.
 */
function parquetSettings(schema: ColumnDef[], rowGroupSize: number): { threads: number; memoryMB: number } {
  const threads = Math.max(1, Math.min(4, availableParallelism()));
  const rowBytes = schema.reduce((s, c) => s + ROW_BYTES[c.type], 0);
  const need = (rowGroupSize * rowBytes * (threads + 1) * 2) / 2 ** 20;
  return { threads, memoryMB: Math.max(128, Math.ceil(need)) };
}

async function writeParquet(
  tmp: string,
  file: string,
  schema: ColumnDef[],
  batches: Iterable<ColumnBatch> | AsyncIterable<ColumnBatch>,
  compression: string,
  rowGroupSize: number,
): Promise<number> {
  // A scratch database file keeps memory flat for large tables: DuckDB writes full row groups of the
  // appended data to it instead of holding the table in memory.
  const dbFile = join(tmpdir(), `resflow-write-${process.pid}-${randomBytes(6).toString('hex')}.duckdb`);
  const settings = parquetSettings(schema, rowGroupSize);
  const instance = await DuckDBInstance.create(dbFile, {
    memory_limit: `${settings.memoryMB}MB`,
    threads: String(settings.threads),
    preserve_insertion_order: 'true',
  });
  let rows = 0;
  try {
    const con = await instance.connect();
    try {
      const cols = schema.map((c) => `${sqlIdent(c.name)} ${DUCK_TYPES[c.type].sql}`).join(', ');
      await con.run(`CREATE TABLE t (${cols})`);
      const appender = await con.createAppender('t');
      const vsize = duckdb.vector_size();
      const types = schema.map((c) => DUCK_TYPES[c.type].type());
      const scratch = new Int32Array(vsize * 4);
      // One chunk, reused: chunks own native memory that JS garbage collection does not see, so
      // creating one per 2048 rows lets hundreds of MB pile up before finalizers run.
      const chunk = DuckDBDataChunk.create(types);
      let appended = false;
      try {
        for await (const batch of iterate(batches)) {
          const canon = canonBatch(file, schema, batch);
          for (let start = 0; start < batch.length; start += vsize) {
            const n = Math.min(vsize, batch.length - start);
            chunk.reset();
            chunk.rowCount = n;
            fillChunk(chunk, canon, start, n, scratch);
            appender.appendDataChunk(chunk);
          }
          rows += batch.length;
        }
        appended = true;
      } finally {
        try {
          appender.closeSync();
        } catch (err) {
          if (appended) throw err; // otherwise keep the error that got us here
        }
      }
      const copy = `COPY t TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION ${compression}, ROW_GROUP_SIZE ${rowGroupSize})`;
      // The estimate above can fall short (wide strings, long lists): on running out of memory, retry
      // with twice the limit, a few times.
      for (let attempt = 0, memoryMB = settings.memoryMB; ; attempt++) {
        try {
          await con.run(copy);
          break;
        } catch (err) {
          if (attempt >= 4 || !/out of memory/i.test(String((err as Error)?.message ?? err))) throw err;
          memoryMB *= 2;
          rmSync(tmp, { force: true });
          await con.run(`SET memory_limit = '${memoryMB}MB'`);
        }
      }
    } finally {
      con.closeSync();
    }
  } finally {
    instance.closeSync();
    rmSync(dbFile, { force: true });
    rmSync(`${dbFile}.wal`, { force: true });
    rmSync(`${dbFile}.tmp`, { recursive: true, force: true });
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------
// Arrow IPC (file format) through apache-arrow

function arrowType(t: ColumnType) {
  switch (t) {
    case 'int8':
      return new Int8();
    case 'int32':
      return new Int32();
    case 'int64':
      return new Int64();
    case 'float32':
      return new Float32();
    case 'float64':
      return new Float64();
    case 'string':
      return new Utf8();
    case 'list_int32':
      return new List(new Field('item', new Int32(), false));
  }
}

function utf8Data(strings: string[]): Data<Utf8> {
  const n = strings.length;
  const offsets = new Int32Array(n + 1);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += Buffer.byteLength(strings[i]!, 'utf8');
    if (total > 0x7fffffff) throw new DataError('a string column batch holds more than 2 GiB of text');
    offsets[i + 1] = total;
  }
  const bytes = Buffer.allocUnsafe(total);
  for (let i = 0; i < n; i++) bytes.write(strings[i]!, offsets[i]!, 'utf8');
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, total);
  return makeData({ type: new Utf8(), length: n, nullCount: 0, valueOffsets: offsets, data });
}

function arrowColumn(def: ColumnDef, col: Canon, length: number): Data {
  switch (col.kind) {
    case 'fixed': {
      const type = arrowType(def.type) as Int8 | Int32 | Float32 | Float64;
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      return makeData({ type, length, nullCount: 0, data: col.data } as any);
    }
    case 'int64': {
      let data: BigInt64Array;
      if (col.data instanceof BigInt64Array) data = col.data;
      else {
        data = new BigInt64Array(length);
        int64Words(col.data, 0, length, new Int32Array(data.buffer));
      }
      return makeData({ type: new Int64(), length, nullCount: 0, data });
    }
    case 'string':
      return utf8Data(col.data);
    case 'list': {
      const { offsets, values } = col.data;
      const child = makeData({ type: new Int32(), length: values.length, nullCount: 0, data: values });
      const type = arrowType('list_int32') as List<Int32>;
      return makeData({ type, length, nullCount: 0, valueOffsets: offsets, child });
    }
  }
}

async function writeArrow(
  tmp: string,
  file: string,
  schema: ColumnDef[],
  batches: Iterable<ColumnBatch> | AsyncIterable<ColumnBatch>,
): Promise<number> {
  const fields = schema.map((c) => new Field(c.name, arrowType(c.type), false));
  const arrowSchema = new Schema(fields);
  const fd = openSync(tmp, 'w');
  let rows = 0;
  let failed = false;
  const writer = new RecordBatchFileWriter();
  // The writer queues its output; this loop moves it to the file. It runs in microtasks, so the queue
  // is empty again whenever the producer yields to the event loop (after every batch).
  const pump = (async () => {
    for await (const chunk of writer) writeAll(fd, chunk);
  })();
  pump.catch(() => {
    failed = true;
  });
  try {
    const emit = (length: number, datas: Data[]) => {
      const struct = makeData({ type: new Struct(fields), length, nullCount: 0, children: datas });
      writer.write(new RecordBatch(arrowSchema, struct));
    };
    for await (const batch of iterate(batches)) {
      const canon = canonBatch(file, schema, batch);
      emit(
        batch.length,
        schema.map((def, i) => arrowColumn(def, canon[i]!, batch.length)),
      );
      rows += batch.length;
      await new Promise<void>((r) => setImmediate(r));
      if (failed) break;
    }
    if (rows === 0 && !failed) {
      // a file with a schema and no rows: one empty record batch
      const empty: ColumnBatch = { length: 0, columns: {} };
      for (const c of schema) {
        empty.columns[c.name] =
          c.type === 'string'
            ? []
            : c.type === 'list_int32'
              ? { offsets: new Int32Array(1), values: new Int32Array(0) }
              : c.type === 'int64'
                ? new Float64Array(0)
                : c.type === 'int8'
                  ? new Int8Array(0)
                  : c.type === 'int32'
                    ? new Int32Array(0)
                    : c.type === 'float32'
                      ? new Float32Array(0)
                      : new Float64Array(0);
      }
      const canon = canonBatch(file, schema, empty);
      emit(0, schema.map((def, i) => arrowColumn(def, canon[i]!, 0)));
    }
    writer.finish();
    writer.close();
    await pump;
  } catch (err) {
    writer.abort(err);
    await pump.catch(() => undefined);
    throw err;
  } finally {
    closeSync(fd);
  }
  return rows;
}

function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off);
}

// ---------------------------------------------------------------------------------------------
// CSV

/** Shortest decimal text that reads back as the same float32. */
function float32Text(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0' : '0';
  for (let p = 6; p < 9; p++) {
    const v = Number(x.toPrecision(p));
    if (Math.fround(v) === x) return String(v);
  }
  return String(Number(x.toPrecision(9)));
}
function float64Text(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  return String(x);
}
function csvQuote(s: string): string {
  if (s === '' || /[",\n\r]/.test(s) || s !== s.trim()) return `"${s.replace(/"/g, '""')}"`;
  return s;
}

async function writeCsv(
  tmp: string,
  file: string,
  schema: ColumnDef[],
  batches: Iterable<ColumnBatch> | AsyncIterable<ColumnBatch>,
): Promise<number> {
  const fd = openSync(tmp, 'w');
  let rows = 0;
  try {
    writeAll(fd, Buffer.from(schema.map((c) => csvQuote(c.name)).join(',') + '\n', 'utf8'));
    for await (const batch of iterate(batches)) {
      const canon = canonBatch(file, schema, batch);
      const n = batch.length;
      // format column by column, then join rows
      const texts: string[][] = canon.map((col, c) => {
        const out = new Array<string>(n);
        const type = schema[c]!.type;
        switch (col.kind) {
          case 'fixed': {
            const a = col.data;
            if (type === 'float32') for (let i = 0; i < n; i++) out[i] = float32Text(a[i]!);
            else if (type === 'float64') for (let i = 0; i < n; i++) out[i] = float64Text(a[i]!);
            else for (let i = 0; i < n; i++) out[i] = String(a[i]!);
            break;
          }
          case 'int64': {
            const a = col.data;
            for (let i = 0; i < n; i++) out[i] = String(a[i]!);
            break;
          }
          case 'string': {
            for (let i = 0; i < n; i++) out[i] = csvQuote(col.data[i]!);
            break;
          }
          case 'list': {
            const { offsets, values } = col.data;
            for (let i = 0; i < n; i++) {
              const parts: string[] = [];
              for (let j = offsets[i]!; j < offsets[i + 1]!; j++) parts.push(String(values[j]!));
              out[i] = parts.length > 1 ? `"[${parts.join(',')}]"` : `[${parts.join(',')}]`;
            }
            break;
          }
        }
        return out;
      });
      const lines = new Array<string>(n);
      const row = new Array<string>(schema.length);
      for (let i = 0; i < n; i++) {
        for (let c = 0; c < texts.length; c++) row[c] = texts[c]![i]!;
        lines[i] = row.join(',');
      }
      if (n > 0) writeAll(fd, Buffer.from(lines.join('\n') + '\n', 'utf8'));
      rows += n;
    }
  } finally {
    closeSync(fd);
  }
  return rows;
}
