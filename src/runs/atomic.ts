/**
 * Whole-file and whole-folder writes: written under a temporary name, then renamed into place, so a
 * crash never leaves a half-written file or a model folder that mixes two saves. A write that fails
 * (disk full, quota, read-only file system) removes its temporary file or folder and is a
 * RuntimeFailure (exit 1) naming the file the run was writing (README.md, "Reliability").
 */
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { ResflowError, RuntimeFailure } from '../base/errors.js';
import { oldName, tempName } from './layout.js';

const WHY: Record<string, string> = {
  ENOSPC: 'no space left on the device (the disk is full)',
  EDQUOT: 'the disk quota is exceeded (the disk is full for this user)',
  EROFS: 'the file system is read-only',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
};

/** The name a user knows: temporary `.tmp-<pid>` / `.old-<pid>` parts taken out of the path. */
export function displayPath(file: string): string {
  return file.replace(/(\.(tmp|old)-\d+)+(?=[/\\]|$)/g, '');
}

/** A failed write as a RuntimeFailure naming the file and, for a full disk, saying so. */
export function writeFailure(file: string, err: unknown): ResflowError {
  if (err instanceof ResflowError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why = (code && WHY[code]) ?? (err instanceof Error ? err.message : String(err));
  return new RuntimeFailure(`${displayPath(file)}: cannot write: ${why}${code && WHY[code] ? ` (${code})` : ''}`);
}

/**
 * Test-only fault injection: RESFLOW_TEST_WRITE_FAULT=CODE:TEXT[:N] makes the N-th (default first)
 * whole-file write whose path contains TEXT write half its bytes and then fail with CODE (ENOSPC,
 * EDQUOT, EROFS), as a full disk would. Used by test/faults-signals.test.ts; unset in normal use.
 */
let faultHits = 0;
function injectedFault(file: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  const spec = process.env['RESFLOW_TEST_WRITE_FAULT'];
  if (!spec) return;
  const [code, text, nth] = spec.split(':');
  if (!code || !text || !file.includes(text)) return;
  if (++faultHits !== Number(nth ?? 1)) return;
  const bytes = typeof data === 'string' || data instanceof Uint8Array ? data : Buffer.concat(data);
  writeFileSync(file, typeof bytes === 'string' ? bytes.slice(0, bytes.length >> 1) : bytes.subarray(0, bytes.length >> 1));
  throw Object.assign(new Error(`${code}: injected write failure, write '${file}'`), { code });
}

/** Writes `data` (text, bytes, or bytes in parts written one after the other) to `file` whole, or not at all. */
export function writeAtomic(file: string, data: string | Uint8Array | readonly Uint8Array[]): void {
  const tmp = tempName(file);
  try {
    injectedFault(tmp, data);
    if (typeof data === 'string' || data instanceof Uint8Array) writeFileSync(tmp, data);
    else writeParts(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw writeFailure(file, err);
  }
}

/** Parts written in order, at most 1 GiB a call (large embedding tables are written from where they are, without a copy). */
function writeParts(file: string, parts: readonly Uint8Array[]): void {
  const fd = openSync(file, 'w');
  try {
    for (const p of parts) {
      for (let at = 0; at < p.byteLength; ) at += writeSync(fd, p, at, Math.min(p.byteLength - at, 1 << 30));
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Fills a fresh temporary folder, then swaps it in for `dir` (which may not exist yet). If filling
 * fails the temporary folder is removed and `dir` is left as it was.
 */
export function replaceFolderAtomic(dir: string, fill: (tmpDir: string) => void): void {
  const tmp = tempName(dir);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    fill(tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw writeFailure(dir, err);
  }
  const old = oldName(dir);
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}
