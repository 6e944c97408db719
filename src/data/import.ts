/**
 * `data import`: CSV (as public data sets are distributed) to Parquet, with column renames so the
 * result follows the data contract (e.g. AliExpress `search_id` -> `request_id`,
 * `conversion` -> `purchase`).
 */
import { existsSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { firstLine, sqlIdent, sqlString, withDuckDB } from './duckdb.js';
import { DataError, UsageError } from '../base/errors.js';

export interface ImportOptions {
  inputs: string[];
  out: string;
  /** old=new column renames. */
  rename: Record<string, string>;
  /** Keep only these columns (after renaming); all when absent. */
  select?: string[];
  delimiter?: string;
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

export async function importCsv(opts: ImportOptions): Promise<{ rows: number; columns: string[] }> {
  for (const f of opts.inputs) if (!existsSync(f)) throw new DataError(`${f}: file not found`);
  const ext = path.extname(opts.out).toLowerCase();
  if (ext !== '.parquet' && ext !== '.pq') throw new UsageError(`--out ${opts.out}: expected a .parquet file`);
  return withDuckDB(async (con) => {
    const src = `read_csv([${opts.inputs.map(sqlString).join(', ')}], header = true, auto_detect = true${opts.delimiter ? `, delim = ${sqlString(opts.delimiter)}` : ''})`;
    let cols: string[];
    try {
      const d = await con.runAndReadAll(`DESCRIBE SELECT * FROM ${src}`);
      cols = d.getRows().map((r) => String(r[0]));
    } catch (err) {
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
      await con.run(`COPY (SELECT ${exprs.join(', ')} FROM ${src}) TO ${sqlString(tmp)} (FORMAT parquet, COMPRESSION zstd)`);
      renameSync(tmp, opts.out);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    }
    const r = await con.runAndReadAll(`SELECT COUNT(*)::BIGINT FROM read_parquet(${sqlString(opts.out)})`);
    return { rows: Number(r.getRows()[0]![0]), columns: keep };
  });
}
