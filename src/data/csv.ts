/**
 * CSV as `data import` and `data inspect` read it (README "Public data"): a header row, the delimiter
 * taken from the header line (or given), RFC 4180 quotes (`"`, doubled to escape), column types
 * detected by DuckDB from the first rows. Every error names the file and its line (1-based, the header
 * being line 1). DuckDB's own dialect sniffer is not used: on a ragged file it can settle on one column
 * per line, and on an unterminated quote on no quoting at all, both without an error.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import type { DuckDBConnection } from '@duckdb/node-api';
import { DataError } from '../base/errors.js';
import { firstLine, sqlString } from './duckdb.js';

const DELIMITERS = [',', '\t', ';', '|'];

/** The first line of a file (up to 1 MiB), without its line break; a DataError when the file is empty. */
function headerLine(file: string): string {
  if (statSync(file).size === 0) throw new DataError(`${file}: the file is empty; expected a header row and data rows`);
  const fd = openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const text = buf.subarray(0, n).toString('utf8').replace(/^\uFEFF/, '');
    const end = text.search(/\r?\n/);
    return end < 0 ? text : text.slice(0, end);
  } finally {
    closeSync(fd);
  }
}

/** Splits one line on `delim` outside quotes (a quote left open runs to the end of the line). */
function splitFields(line: string, delim: string): string[] {
  try {
    return parseCsvText(line, delim)[0] ?? [''];
  } catch {
    return parseCsvText(line + '"', delim)[0] ?? [''];
  }
}

/**
 * Reads CSV text into rows of cells (RFC 4180): a quoted cell may hold the delimiter, doubled
 * quotes and line breaks. Lines end with \n or \r\n; blank lines are skipped. Throws a plain Error
 * for an unterminated quote (callers name the file).
 */
export function parseCsvText(text: string, delim = ','): string[][] {
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
    else if (ch === delim) (row.push(cell), (cell = ''), (touched = true));
    else if (ch === '\n') endLine();
    else if (ch === '\r' && text[i + 1] === '\n') continue;
    else cell += ch;
  }
  if (quoted) throw new Error('a quoted cell is not closed');
  if (cell !== '' || row.length > 0 || touched) endLine();
  return rows;
}

export interface CsvLayout {
  delim: string;
  /** Column names from the first file's header row. */
  header: string[];
}

/** The delimiter (given, or the one the header line splits on most) and the header's column names. */
export function csvLayout(files: string[], delimiter?: string): CsvLayout {
  const line = headerLine(files[0]!);
  for (const f of files.slice(1)) headerLine(f);
  if (line.trim() === '') throw new DataError(`${files[0]}: line 1 is blank; expected a header row naming the columns`);
  let delim = delimiter;
  if (delim === undefined) {
    let best = 0;
    delim = ',';
    for (const d of DELIMITERS) {
      const n = splitFields(line, d).length;
      if (n > best) (best = n, (delim = d));
    }
  }
  const header = splitFields(line, delim).map((h) => h.trim());
  const seen = new Set<string>();
  header.forEach((h, i) => {
    if (h === '') throw new DataError(`${files[0]}: line 1: column ${i + 1} of the header has no name`);
    if (seen.has(h)) throw new DataError(`${files[0]}: line 1: the header names column \`${h}\` twice`);
    seen.add(h);
  });
  return { delim, header };
}

/** `read_csv(...)` over the files with the layout's dialect; `extra` adds options (`, store_rejects = true`). */
export function csvSource(files: string[], layout: CsvLayout, extra = ''): string {
  const list = `[${files.map(sqlString).join(', ')}]`;
  return `read_csv(${list}, header = true, delim = ${sqlString(layout.delim)}, quote = '"', escape = '"'${extra})`;
}

/** Every column as text, no type detection: only the file's structure can fail. */
function textSource(files: string[], layout: CsvLayout): string {
  const cols = layout.header.map((h) => `${sqlString(h)}: 'VARCHAR'`).join(', ');
  return csvSource(files, layout, `, auto_detect = false, columns = {${cols}}, store_rejects = true`);
}

export interface CsvReject {
  file: string;
  line: number;
  /** DuckDB's error type: CAST, MISSING COLUMNS, TOO MANY COLUMNS, UNQUOTED VALUE, ... */
  type: string;
  message: string;
}

/** The lines a read with `store_rejects = true` refused on this connection: the first (by file, line) and how many. */
export async function csvRejects(con: DuckDBConnection): Promise<{ first: CsvReject | null; count: number }> {
  const r = await con.runAndReadAll(
    `SELECT s.file_path, e.line::BIGINT, e.error_type::VARCHAR, e.error_message, COUNT(*) OVER ()::BIGINT
     FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id) ORDER BY e.file_id, e.line LIMIT 1`,
  );
  const row = r.getRows()[0];
  if (!row) return { first: null, count: 0 };
  return { first: { file: String(row[0]), line: Number(row[1]), type: String(row[2]), message: String(row[3]) }, count: Number(row[4]) };
}

/** Says what is wrong with a refused line in the project's words. */
export function describeReject(r: CsvReject): string {
  const m = /Expected Number of Columns: (\d+) Found: (\d+)/.exec(r.message);
  if (m) return `${r.file}: line ${r.line} has ${m[2]} fields, expected ${m[1]} as in the header`;
  if (r.type === 'UNQUOTED VALUE') return `${r.file}: line ${r.line} opens a quoted value that is never closed (unterminated quote)`;
  const cast = /converting column "(.*)"\. Could not convert string "(.*)" to '(.*)'/.exec(r.message);
  if (cast) return `${r.file}: line ${r.line}: column \`${cast[1]}\` holds "${cast[2]}", expected ${cast[3]} (the type its first rows have)`;
  return `${r.file}: line ${r.line}: ${r.message}`;
}

/**
 * Finds the first structurally bad line (field count, quoting, encoding) of files whose dialect DuckDB
 * could not sniff, by reading every column as text; null when none is found.
 */
export async function locateBadLine(con: DuckDBConnection, files: string[], layout: CsvLayout): Promise<{ first: CsvReject | null; count: number }> {
  await con.run(`SELECT COUNT(*) FROM (SELECT * FROM ${textSource(files, layout)})`);
  return csvRejects(con);
}

/** A DuckDB error while reading CSV as a DataError naming the file and line (DuckDB: "CSV Error on Line: N"). */
export function csvReadError(err: unknown, file: string): DataError {
  const text = String(err instanceof Error ? err.message : err);
  const line = /CSV Error on Line: (\d+)/.exec(text);
  if (!line) return new DataError(`${file}: cannot read as CSV (${firstLine(text)})`);
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Original Line:'));
  let msg = lines.slice(at + 1).find((l) => l.trim() !== '' && !l.startsWith('Original Line')) ?? firstLine(text);
  // The original line may span several text lines (a quoted value running on); DuckDB's message follows a blank line.
  const blank = lines.indexOf('', at + 1);
  if (at >= 0 && blank > at) msg = lines.slice(blank + 1).find((l) => l.trim() !== '') ?? msg;
  return new DataError(`${file}: line ${line[1]}: ${msg}`);
}
