/** history.csv: one row per finished epoch (epoch, steps, samples, seconds, losses, validation metrics). */
import { existsSync, readFileSync } from 'node:fs';
import { DataError } from '../base/errors.js';
import { writeAtomic } from './atomic.js';
import { parseCsv, toCsv } from './csv.js';
import { runPath } from './layout.js';

/** One epoch's row as the trainer records it. */
export type HistoryRow = Record<string, number | string>;

export interface HistoryTable {
  columns: string[];
  /** Every cell is a number; an empty cell (a value the epoch did not have) reads as NaN. */
  rows: Record<string, number>[];
}

export function writeHistory(runDir: string, rows: HistoryRow[]): void {
  writeAtomic(runPath(runDir, 'history'), toCsv(rows));
}

/** Reads history.csv; null when the run has none (or it is empty). Cells must be numbers. */
export function readHistory(runDir: string): HistoryTable | null {
  const file = runPath(runDir, 'history');
  if (!existsSync(file)) return null;
  let lines: string[][];
  try {
    lines = parseCsv(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file}: not valid CSV (${(err as Error).message})`);
  }
  if (lines.length === 0) return null;
  const columns = lines[0]!;
  const rows = lines.slice(1).map((cells, i) => {
    const line = i + 2;
    if (cells.length !== columns.length) throw new DataError(`${file}: line ${line} has ${cells.length} cells, expected ${columns.length} (one per column of the header)`);
    const row: Record<string, number> = {};
    columns.forEach((c, j) => {
      const s = cells[j]!.trim();
      const v = s === '' ? NaN : Number(s);
      if (Number.isNaN(v) && s !== '' && s !== 'NaN') throw new DataError(`${file}: line ${line}, column \`${c}\`: expected a number, found \`${s}\``);
      row[c] = v;
    });
    return row;
  });
  return { columns, rows };
}
