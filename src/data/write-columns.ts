/**
 * Shared by the table writers: the schema check, each batch's columns checked and brought to one
 * array type per column type (Canon), int64 as little-endian words, and synchronous file output.
 */
import { writeSync } from 'node:fs';
import { endianness } from 'node:os';
import { DataError } from '../base/errors.js';
import type { ColumnBatch, ColumnDef, ColumnType, ColumnValues } from './table-schema.js';

const TYPES: readonly ColumnType[] = ['int8', 'int32', 'int64', 'float32', 'float64', 'string', 'list_int32'];

export function checkSchema(file: string, schema: ColumnDef[]): void {
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
export interface CsrList {
  offsets: Int32Array;
  values: Int32Array;
}

/** A batch's column checked against its definition and brought to the canonical array type. */
export type Canon =
  | { kind: 'fixed'; data: Int8Array | Int32Array | Float32Array | Float64Array }
  | { kind: 'int64'; data: Float64Array | BigInt64Array }
  | { kind: 'string'; data: string[] }
  | { kind: 'list'; data: CsrList };

export function isTypedNumeric(v: unknown): v is NumericArray {
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

export function canonColumn(file: string, def: ColumnDef, v: ColumnValues | undefined, length: number): Canon {
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

export function canonBatch(file: string, schema: ColumnDef[], batch: ColumnBatch): Canon[] {
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
export function int64Words(src: Float64Array | BigInt64Array, start: number, n: number, out: Int32Array): void {
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

export async function* iterate<T>(it: Iterable<T> | AsyncIterable<T>): AsyncGenerator<T> {
  if (Symbol.asyncIterator in (it as object)) {
    for await (const x of it as AsyncIterable<T>) yield x;
  } else {
    for (const x of it as Iterable<T>) yield x;
  }
}

export function writeAll(fd: number, buf: Uint8Array): void {
  let off = 0;
  while (off < buf.byteLength) off += writeSync(fd, buf, off, buf.byteLength - off);
}
