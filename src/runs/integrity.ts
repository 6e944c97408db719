/**
 * Integrity of what a run folder holds (README.md beside this file): run.json's `files` records the
 * size and SHA-256 of every model and checkpoint file, keyed by its path relative to the run folder
 * (`model/weights.bin`, `checkpoint/state.json`). The writers record a file as they write it
 * (model-io's saveModel, checkpoint.ts, through writeRecorded); the readers check what they read
 * against the record, so a truncated, extended or altered file is a DataError naming it, never a
 * model loaded silently (README.md: nothing damaged is loaded silently).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../base/errors.js';
import { log } from '../base/log.js';
import { isNumber, isRecord, readJsonFile, writeJsonFile } from './json-file.js';
import { runPath } from './layout.js';

/** What run.json records of one file; `previous` only while a save that replaces it is under way. */
export interface FileRecord {
  size: number;
  sha256: string;
  /** The record of the file being replaced (null: there was none), kept until the new one is in place. */
  previous?: FileRecord | null;
}

export type FileRecords = Record<string, FileRecord>;

/** A file's contents: text, bytes, or bytes in parts written one after the other (large embedding tables, without a copy). */
export type FileData = string | Uint8Array | readonly Uint8Array[];

export function fileRecord(data: FileData): FileRecord {
  const parts = typeof data === 'string' ? [Buffer.from(data, 'utf8')] : data instanceof Uint8Array ? [data] : data;
  const hash = new FileHasher();
  for (const p of parts) hash.update(p);
  return hash.record();
}

/** The record of a file on disk, read in chunks (files beyond 2 GiB, which readFileSync refuses, included). */
export function hashFile(file: string): FileRecord {
  const hash = new FileHasher();
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    for (let n; (n = readSync(fd, chunk, 0, CHUNK, null)) > 0; ) hash.update(chunk.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return hash.record();
}

const CHUNK = 64 << 20;
const HASH_CHUNK = 1 << 30;

/** A record computed as a file is read piece by piece (model-io reads embedding tables into place this way). */
export class FileHasher {
  private readonly hash = createHash('sha256');
  private size = 0;
  update(bytes: Uint8Array): void {
    // at most 1 GiB a call: node's hash refuses more than 2 GiB at once ("data is too long")
    for (let at = 0; at < bytes.byteLength; at += HASH_CHUNK) this.hash.update(bytes.subarray(at, Math.min(bytes.byteLength, at + HASH_CHUNK)));
    this.size += bytes.byteLength;
  }
  record(): FileRecord {
    return { size: this.size, sha256: this.hash.digest('hex') };
  }
}

function isFileRecord(r: unknown, nested = false): boolean {
  return (
    isRecord(r) &&
    isNumber(r['size']) &&
    typeof r['sha256'] === 'string' &&
    /^[0-9a-f]{64}$/.test(r['sha256']) &&
    (r['previous'] === undefined || (!nested && (r['previous'] === null || isFileRecord(r['previous'], true))))
  );
}

/** Whether a value is a well-formed `files` map (for run.json's validation). */
export function isFileRecords(v: unknown): v is FileRecords {
  return isRecord(v) && Object.values(v).every((r) => isFileRecord(r));
}

/** The key of a file of the run folder: its relative path with `/` separators. */
function recordKey(runDir: string, file: string): string {
  return path.relative(runDir, file).split(path.sep).join('/');
}

/** What run.json on disk records, or undefined (no run.json, unreadable, or written before files were recorded). */
export function recordedFiles(runDir: string): FileRecords | undefined {
  const file = runPath(runDir, 'info');
  if (!existsSync(file)) return undefined;
  try {
    const info = readJsonFile(file);
    return isRecord(info) && isFileRecords(info['files']) ? info['files'] : undefined;
  } catch {
    return undefined;
  }
}

/** Rewrites run.json's `files` on disk (sorted by path); nothing outside a run folder. */
function editRecords(runDir: string, edit: (files: FileRecords) => FileRecords): void {
  const infoFile = runPath(runDir, 'info');
  if (!existsSync(infoFile)) return;
  const info = readJsonFile(infoFile);
  if (!isRecord(info)) throw new DataError(`${infoFile}: expected an object with experiment, version, status, seed and progress`);
  const files = edit(isFileRecords(info['files']) ? { ...info['files'] } : {});
  info['files'] = Object.fromEntries(Object.entries(files).sort(([a], [b]) => a.localeCompare(b)));
  writeJsonFile(infoFile, info);
}

const same = (a: FileRecord, b: FileRecord) => a.size === b.size && a.sha256 === b.sha256;

/**
 * The record of the file now at `file`: `rec` itself, or after a save that was cut short (`rec`
 * still has a `previous`), whichever of the two the file matches (null: neither, or no file).
 */
function settled(file: string, rec: FileRecord | undefined): FileRecord | null {
  if (!rec) return null;
  const plain = { size: rec.size, sha256: rec.sha256 };
  if (rec.previous === undefined) return plain;
  if (!existsSync(file)) return null;
  const found = hashFile(file);
  return same(found, plain) ? plain : rec.previous && same(found, rec.previous) ? rec.previous : null;
}

/**
 * Writes files of a folder of a run (`folder` is e.g. <run>/model; `records` are keyed by name
 * inside it) so that run.json always matches what is on disk: the new records go in first, each
 * keeping the record it replaces as `previous`; `write` puts the files in place; then `previous` is
 * dropped. A crash at any point leaves files that match either the record or its `previous`; a
 * write that fails puts the old records back. With `replace` (the folder is replaced whole),
 * records of files no longer in it are dropped. A folder outside a run folder (no run.json beside
 * it) records nothing.
 */
export function writeRecorded(folder: string, records: Record<string, FileRecord>, replace: boolean, write: () => void): void {
  const abs = path.resolve(folder);
  const runDir = path.dirname(abs);
  const prefix = recordKey(runDir, abs) + '/';
  const keys = Object.keys(records).map((name) => prefix + name);
  editRecords(runDir, (files) => {
    const out: FileRecords = replace ? Object.fromEntries(Object.entries(files).filter(([k]) => !k.startsWith(prefix))) : files;
    for (const [name, r] of Object.entries(records)) out[prefix + name] = { ...r, previous: settled(path.join(abs, name), files[prefix + name]) };
    return out;
  });
  try {
    write();
  } catch (err) {
    // the write failed (not a kill): the old files are in place, so are their records
    editRecords(runDir, (files) => {
      for (const k of keys) {
        const prev = files[k]?.previous;
        if (prev) files[k] = prev;
        else delete files[k];
      }
      return files;
    });
    throw err;
  }
  editRecords(runDir, (files) => {
    for (const k of keys) if (files[k]) files[k] = { size: files[k].size, sha256: files[k].sha256 };
    return files;
  });
}

/** Drops the records of a folder that was removed (e.g. the checkpoint once training finished). */
export function forgetFolder(folder: string): void {
  const abs = path.resolve(folder);
  const runDir = path.dirname(abs);
  const prefix = recordKey(runDir, abs) + '/';
  const files = recordedFiles(runDir);
  if (files && Object.keys(files).some((k) => k.startsWith(prefix))) editRecords(runDir, (f) => Object.fromEntries(Object.entries(f).filter(([k]) => !k.startsWith(prefix))));
}

const short = (hash: string) => hash.slice(0, 12);
const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;

/** Throws a DataError naming `file` when what was found is neither the record nor (after an interrupted save) its `previous`. */
function compare(file: string, infoFile: string, expected: FileRecord | undefined, found: FileRecord): void {
  if (expected?.previous && same(found, expected.previous)) return;
  if (!expected) throw new DataError(`${file}: not recorded in ${infoFile} (not written by this run); refusing to load it`);
  if (found.size !== expected.size) {
    throw new DataError(`${file}: ${bytes(found.size)}, ${infoFile} records ${bytes(expected.size)} (truncated or extended after it was written)`);
  }
  if (found.sha256 !== expected.sha256) {
    throw new DataError(`${file}: SHA-256 ${short(found.sha256)}… differs from ${short(expected.sha256)}… recorded in ${infoFile} (same size: altered after it was written)`);
  }
}

/**
 * The run folder holding `folder`, run.json's path and its records of the folder's files;
 * undefined, after a debug note, where there are none (a run written before files were recorded,
 * or one resumed since, whose older folders are unrecorded).
 */
function recordsOf(folder: string): { runDir: string; infoFile: string; files: FileRecords | undefined } {
  const abs = path.resolve(folder);
  const runDir = path.dirname(abs);
  const infoFile = runPath(runDir, 'info');
  const prefix = recordKey(runDir, abs) + '/';
  const all = Object.entries(recordedFiles(runDir) ?? {}).filter(([k]) => k.startsWith(prefix));
  if (all.length === 0 && existsSync(infoFile)) log.debug(`${infoFile} records no sizes or hashes of ${abs} (written before they were recorded): nothing to verify against, checking shapes only`);
  return { runDir, infoFile, files: all.length ? Object.fromEntries(all) : undefined };
}

/**
 * A checker of the files of one folder of a run (model/ or checkpoint/) as they are read:
 * `check(file, bytes)` compares what was read with run.json's record. Outside a run folder, or for
 * a run written before files were recorded, it checks nothing (the loaders still check shapes).
 */
export function folderVerifier(folder: string): (file: string, data: Uint8Array | string) => void {
  const check = folderRecordVerifier(folder);
  return (file, data) => check.record(file, fileRecord(data));
}

/**
 * As folderVerifier, for a file read in pieces: `size(file, bytes)` before reading (a size that is
 * neither the record's nor its previous one is a DataError at once), `record(file, found)` after.
 */
export function folderRecordVerifier(folder: string): { size: (file: string, size: number) => void; record: (file: string, found: FileRecord) => void } {
  const { runDir, infoFile, files } = recordsOf(folder);
  const expectedOf = (file: string) => files?.[recordKey(runDir, path.resolve(file))];
  return {
    size: (file, size) => {
      const expected = expectedOf(file);
      if (files && size !== expected?.size && size !== expected?.previous?.size) compare(file, infoFile, expected, { size, sha256: '' });
    },
    record: (file, found) => {
      if (files) compare(file, infoFile, expectedOf(file), found);
    },
  };
}

/**
 * Reads and checks every file recorded under `folder` (sizes first, then hashes), so that a command
 * can refuse damaged files before it writes anything (`train --resume` before it marks the run
 * running). Returns false when there are no records to check against.
 */
export function verifyFolder(folder: string): boolean {
  const { runDir, infoFile, files } = recordsOf(folder);
  if (!files) return false;
  const entries = Object.entries(files).map(([k, r]) => [path.join(runDir, ...k.split('/')), r] as const);
  for (const [file, expected] of entries) {
    if (!existsSync(file) && expected.previous === null) continue; // its first save was cut short
    if (!existsSync(file)) throw new DataError(`${file}: missing, but ${infoFile} records it (${bytes(expected.size)})`);
    const size = statSync(file).size;
    if (size !== expected.size && size !== expected.previous?.size) compare(file, infoFile, expected, { size, sha256: '' });
  }
  for (const [file, expected] of entries) if (existsSync(file)) compare(file, infoFile, expected, hashFile(file));
  return true;
}

/**
 * Records a file at the top of a run folder (config.yaml, written once when the run is made) in
 * run.json's `files`, under its name; `verifyTopFile` checks it when the run is loaded.
 */
export function recordTopFile(runDir: string, name: string, data: Uint8Array | string): void {
  editRecords(runDir, (files) => ({ ...files, [name]: fileRecord(data) }));
}

/**
 * Checks a top file of a run folder against run.json's record, so that a file edited after the run
 * was made (one that still reads as valid, e.g. another residual mode) is a DataError naming it;
 * runs made before the file was recorded are not checked.
 */
export function verifyTopFile(runDir: string, name: string): void {
  const expected = recordedFiles(runDir)?.[name];
  if (!expected) return;
  const file = path.join(runDir, name);
  compare(file, runPath(runDir, 'info'), expected, hashFile(file));
}
