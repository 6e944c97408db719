/**
 * The CSV of run files (history.csv, metrics.csv, fusion-grid.csv) and of `compare --format csv`:
 * RFC 4180 quoting, a cell is quoted when it holds a comma, a double quote or a line break.
 */

import { parseCsvText } from '../data/csv.js';

/** Writes rows as CSV with a fixed header order (union of keys in first-seen order). */
export function toCsv(rows: Record<string, unknown>[]): string {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v: unknown) => {
    if (v === undefined || v === null) return '';
    const s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(8)) : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.map(cell).join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}

/**
 * Reads CSV text into rows of cells, undoing toCsv's quoting (data/csv.ts holds the one CSV parser).
 * Throws a plain Error for an unterminated quote (callers name the file).
 */
export function parseCsv(text: string): string[][] {
  return parseCsvText(text, ',');
}
