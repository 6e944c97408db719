/**
 * Small helpers the scheduler launchers share: quoting for POSIX shells, finding a program on PATH,
 * and writing the index list of a sweep stage compactly (README.md, "Sweeps on Slurm").
 */
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Quotes one word for a POSIX shell (bash, sh): unchanged when it is plainly safe. */
export function shellQuote(word: string): string {
  if (word !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** The first executable named `program` on `searchPath` (a PATH string), or undefined. */
export function findOnPath(program: string, searchPath: string | undefined): string | undefined {
  for (const dir of (searchPath ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, program);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/**
 * Sorted, de-duplicated indices as Slurm's array syntax: runs of consecutive numbers become ranges
 * ("0-3,5,7-9"); a run of two stays a list ("4,5") as Slurm writes it.
 */
export function indexRanges(indices: readonly number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    const [a, b] = [sorted[i]!, sorted[j]!];
    parts.push(b - a >= 2 ? `${a}-${b}` : a === b ? `${a}` : `${a},${b}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** True when the indices are exactly 0..n-1 (in any order, no repeats). */
export function isDense(indices: readonly number[]): boolean {
  const set = new Set(indices);
  return set.size === indices.length && indices.every((i) => i < indices.length);
}
