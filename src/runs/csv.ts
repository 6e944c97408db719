/**
 * The CSV of run files (history.csv, metrics.csv, fusion-grid.csv) and of `compare --format csv`:
 * RFC 4180 quoting, a cell is quoted when it holds a comma, a double quote or a line break.
 */

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
 * Reads CSV text into rows of cells, undoing toCsv's quoting: a quoted cell may hold commas, doubled
 * quotes and line breaks. Lines end with \n or \r\n; blank lines are skipped. Throws a plain Error
 * for an unterminated quote (callers name the file).
 */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  // a line is blank when it ends with nothing in it (no cell text and no quotes were seen)
  let touched = false;
  const endLine = () => {
    row.push(cell);
    if (touched || row.length > 1 || cell !== '') rows.push(row);
    row = [];
    cell = '';
    touched = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"', i++);
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') (quoted = true, (touched = true));
    else if (ch === ',') (row.push(cell), (cell = ''), (touched = true));
    else if (ch === '\n') endLine();
    else if (ch === '\r' && text[i + 1] === '\n') continue;
    else cell += ch;
  }
  if (quoted) throw new Error('a quoted cell is not closed');
  if (cell !== '' || row.length > 0 || touched) endLine();
  return rows;
}
