/**
 * `data import`: CSV (as public data sets are distributed) to Parquet, with column renames so the
 * result follows the data contract (e.g. AliExpress `search_id` -> `request_id`,
 * `conversion` -> `purchase`). Strict by default (README "Public data"): a ragged line, an
 * unterminated quote, a value that does not fit its column's type or an empty file is an error naming
 * the file and line, and nothing is written; `skipBadLines` leaves such lines out and counts them.
 */
import { existsSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { firstLine, sqlIdent, sqlString, withDuckDB } from './duckdb.js';
import { csvLayout, csvReadError, csvRejects, csvSource, describeReject, locateBadLine, type CsvReject } from './csv.js';
import { DataError, RuntimeFailure, UsageError } from '../base/errors.js';

export interface ImportOptions {
  inputs: string[];
  out: string;
  /** old=new column renames. */
  rename: Record<string, string>;
  /** Keep only these columns (after renaming); all when absent. */
  select?: string[];
  delimiter?: string;
  /** Leave out lines that cannot be read (wrong field count, bad quoting, a value of the wrong type). */
  skipBadLines?: boolean;
}

export interface ImportResult {
  rows: number;
  columns: string[];
  /** Lines left out (only with skipBadLines). */
  skipped: number;
  /** The first line left out, to show the user. */
  firstSkipped: CsvReject | null;
}

export function parseRenames(specs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of specs) {
    const m = /^([^=]+)=([^=]+)$/.exec(s);
    if (!m) throw new UsageError(`--rename ${s}: expected old=new, e.g. --rename conversion=purchase`);
    out[m[1]!.trim()] = m[2]!.trim();
  }
  return out;
}

function checkPaths(opts: ImportOptions): void {
  for (const f of opts.inputs) {
    if (!existsSync(f)) throw new DataError(`${f}: file not found`);
    if (statSync(f).isDirectory()) throw new DataError(`${f}: is a folder; expected a CSV file`);
  }
  const ext = path.extname(opts.out).toLowerCase();
  if (ext !== '.parquet' && ext !== '.pq') throw new UsageError(`--out ${opts.out}: expected a .parquet file`);
  const dir = path.dirname(path.resolve(opts.out));
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--out ${opts.out}: the folder ${dir} does not exist; create it first`);
  if (opts.delimiter !== undefined && opts.delimiter.length !== 1) throw new UsageError(`--delimiter ${JSON.stringify(opts.delimiter)}: expected one character (\\t for a tab)`);
}

const hint = (count: number) => `${count > 1 ? `; ${count.toLocaleString('en-US')} bad lines in all` : ''}; nothing written (--skip-bad-lines leaves bad lines out)`;

export async function importCsv(opts: ImportOptions): Promise<ImportResult> {
  if (opts.delimiter === '\\t') opts = { ...opts, delimiter: '\t' };
  checkPaths(opts);
  const layout = csvLayout(opts.inputs, opts.delimiter);
  return withDuckDB(async (con) => {
    // store_rejects: refused lines go to a table (with file and line) instead of stopping the read.
    const src = csvSource(opts.inputs, layout, ', store_rejects = true');
    let cols: string[];
    try {
      const d = await con.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`);
      cols = d.getRows().map((r) => String(r[0]));
    } catch (err) {
      // DuckDB could not detect column types with this dialect: find the line that breaks it.
      const bad = await locateBadLine(con, opts.inputs, layout).catch(() => ({ first: null, count: 0 }));
      if (bad.first) throw new DataError(`${describeReject(bad.first)}${opts.skipBadLines ? '; --skip-bad-lines cannot skip it because it stops type detection' : hint(bad.count)}`);
      throw new DataError(`${opts.inputs.join(', ')}: cannot read as CSV (${firstLine(err)})`);
    }
    for (const old of Object.keys(opts.rename)) {
      if (!cols.includes(old)) throw new DataError(`${opts.inputs[0]}: --rename names column \`${old}\`, which the CSV does not have; it has: ${cols.join(', ')}`);
    }
    const renamed = cols.map((c) => opts.rename[c] ?? c);
    const dup = renamed.find((c, i) => renamed.indexOf(c) !== i);
    if (dup) throw new UsageError(`--rename gives two columns the name \`${dup}\``);
    const keep = opts.select ?? renamed;
    for (const c of keep) if (!renamed.includes(c)) throw new DataError(`--select names column \`${c}\`, which the CSV does not have (after renames): ${renamed.join(', ')}`);
    const exprs = keep.map((c) => `${sqlIdent(cols[renamed.indexOf(c)]!)} AS ${sqlIdent(c)}`);
    const tmp = `${opts.out}.tmp-${process.pid}`;
    try {
      try {
        // Only kept columns are converted: a value that does not fit a dropped column does not matter.
        await con.run(`COPY (SELECT ${exprs.join(', ')} FROM ${src}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`);
      } catch (err) {
        if (/CSV Error/.test(String(err))) throw csvReadError(err, opts.inputs.join(', '));
        throw new RuntimeFailure(`${opts.out}: cannot write (${firstLine(err)})`);
      }
      const rejects = await csvRejects(con);
      if (rejects.first && !opts.skipBadLines) throw new DataError(`${describeReject(rejects.first)}${hint(rejects.count)}`);
      const r = await con.runAndReadAll(`SELECT COUNT(*)::BIGINT FROM read_parquet(${sqlString(tmp)})`);
      const rows = Number(r.getRows()[0]![0]);
      if (rows === 0) throw new DataError(`${opts.inputs.join(', ')}: no data rows${rejects.count ? ` (${rejects.count} bad lines left out)` : ' after the header'}; nothing written`);
      renameSync(tmp, opts.out);
      return { rows, columns: keep, skipped: rejects.count, firstSkipped: rejects.first };
    } finally {
      rmSync(tmp, { force: true });
    }
  });
}
