/**
 * Arrow IPC through apache-arrow: the file's description from its schema, and its record batches
 * re-sliced into batches of the size asked for, numbers and lists read straight from the buffers.
 */
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { RecordBatchReader, DataType, type Vector, type RecordBatch } from 'apache-arrow';
import { DataError } from '../base/errors.js';
import { firstLine } from './duckdb.js';
import { concatColumns, type ColumnInfo, type ColumnKind, type RawBatch, type RawColumn, type TableInfo } from './raw-batch.js';

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

export async function arrowInfo(file: string): Promise<TableInfo> {
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

export async function* arrowBatches(info: TableInfo, wanted: { name: string; kind: ColumnKind }[], batchRows: number): AsyncGenerator<RawBatch> {
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
    const offset = read;
    read += rows;
    return { length: rows, offset, columns: concatColumns(parts, lengths) };
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
