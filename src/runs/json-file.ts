/** Reading the JSON files of a run folder: a file that is missing or not JSON is a DataError naming it. */
import { readFileSync } from 'node:fs';
import { DataError } from '../base/errors.js';
import { writeAtomic } from './atomic.js';

export function readJsonFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`${file}: unreadable (${(err as Error).message})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new DataError(`${file}: unreadable (${(err as Error).message})`);
  }
}

/** Pretty-printed JSON with a final newline, written whole. */
export function writeJsonFile(file: string, value: unknown): void {
  writeAtomic(file, JSON.stringify(value, null, 2) + '\n');
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Checks the type of one field; `what` says what was expected, for the DataError. */
export function expectField(file: string, where: string, obj: Record<string, unknown>, key: string, ok: (v: unknown) => boolean, what: string): void {
  if (!ok(obj[key])) throw new DataError(`${file}: ${where}\`${key}\` should be ${what}, found ${JSON.stringify(obj[key]) ?? 'nothing'}`);
}

export const isString = (v: unknown): v is string => typeof v === 'string';
export const isNumber = (v: unknown): v is number => typeof v === 'number';
export const optional =
  (check: (v: unknown) => boolean) =>
  (v: unknown): boolean =>
    v === undefined || check(v);
