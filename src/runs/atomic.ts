/**
 * Whole-file and whole-folder writes: written under a temporary name, then renamed into place, so a
 * crash never leaves a half-written file or a model folder that mixes two saves.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { oldName, tempName } from './layout.js';

export function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = tempName(file);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Fills a fresh temporary folder, then swaps it in for `dir` (which may not exist yet). */
export function replaceFolderAtomic(dir: string, fill: (tmpDir: string) => void): void {
  const tmp = tempName(dir);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  fill(tmp);
  const old = oldName(dir);
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}
