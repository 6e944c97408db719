/**
 * `data split`: one Parquet file into train / valid / eval files, keeping every request whole
 * (README.md, "Data contract": a request's rows are contiguous). Everything runs inside DuckDB: the
 * rows stream from the input to the outputs and never pass through JavaScript.
 *
 * - `request`: each request goes to a split by a seeded hash of its id (md5 of `<seed>:<id>`), so a
 *   request lands in the same split whatever else the file holds; the fractions are reached in
 *   expectation, counted in requests.
 * - `time`: requests are ordered by the smallest value of the time column among their rows (ties by
 *   where the request starts in the file) and cut at the fractions of the request count: the first
 *   requests train, the next validate, the last evaluate.
 *
 * Each output holds its requests' rows contiguous and in the input's order (a request placed where its
 * first row was). Outputs are written under temporary names and renamed, and an existing output is
 * never replaced.
 */
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError, UsageError } from '../base/errors.js';
import { firstLine, sqlIdent, sqlString, withDuckDB } from './duckdb.js';

export const SPLIT_NAMES = ['train', 'valid', 'eval'] as const;
export type SplitName = (typeof SPLIT_NAMES)[number];

export interface SplitOptions {
  input: string;
  outDir: string;
  by: 'request' | 'time';
  /** Fractions of requests for train, valid and eval; they sum to 1. */
  fractions: [number, number, number];
  requestColumn: string;
  /** Required with `by: 'time'`. */
  timeColumn?: string;
  /** Seed of the request hash (`by: 'request'`). */
  seed: number;
}

export interface SplitResult {
  files: Record<SplitName, string>;
  rows: Record<SplitName, number>;
  requests: Record<SplitName, number>;
}

/** Parses `0.8,0.1,0.1`: three non-negative numbers summing to 1 (within 1e-9). */
export function parseFractions(text: string): [number, number, number] {
  const parts = text.split(',').map((s) => s.trim());
  const values = parts.map(Number);
  if (parts.length !== 3 || values.some((v, i) => parts[i] === '' || !Number.isFinite(v) || v < 0)) {
    throw new UsageError(`--fractions ${text}: expected three non-negative numbers for train, valid and eval, e.g. 0.8,0.1,0.1`);
  }
  const sum = values[0]! + values[1]! + values[2]!;
  if (Math.abs(sum - 1) > 1e-9) throw new UsageError(`--fractions ${text}: the fractions sum to ${sum}; expected 1`);
  return values as [number, number, number];
}

function checkOptions(o: SplitOptions): Record<SplitName, string> {
  if (!existsSync(o.input)) throw new DataError(`${o.input}: file not found`);
  if (statSync(o.input).isDirectory()) throw new DataError(`${o.input}: is a folder; expected a Parquet file`);
  const ext = path.extname(o.input).toLowerCase();
  if (ext !== '.parquet' && ext !== '.pq') throw new UsageError(`${o.input}: expected a .parquet file (convert CSV with \`resflow data import\` first)`);
  if (o.by === 'time' && !o.timeColumn) throw new UsageError('--by time needs --time-column COLUMN');
  if (o.by !== 'time' && o.timeColumn) throw new UsageError('--time-column applies only with --by time');
  if (!Number.isInteger(o.seed) || o.seed < 0) throw new UsageError(`--seed ${o.seed}: expected a non-negative integer`);
  if (existsSync(o.outDir) && !statSync(o.outDir).isDirectory()) throw new UsageError(`--out ${o.outDir}: exists and is not a folder`);
  const files = Object.fromEntries(SPLIT_NAMES.map((s) => [s, path.join(o.outDir, `${s}.parquet`)])) as Record<SplitName, string>;
  const taken = SPLIT_NAMES.filter((s) => existsSync(files[s]));
  if (taken.length) throw new UsageError(`--out ${o.outDir}: ${taken.map((s) => files[s]).join(', ')} already exist${taken.length === 1 ? 's' : ''}; choose an empty folder (nothing is replaced)`);
  return files;
}

export async function splitFile(o: SplitOptions): Promise<SplitResult> {
  const files = checkOptions(o);
  const src = `read_parquet(${sqlString(o.input)}, file_row_number = true)`;
  return withDuckDB(async (con) => {
    let columns: string[];
    try {
      columns = (await con.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlString(o.input)})`)).getRows().map((r) => String(r[0]));
    } catch (err) {
      throw new DataError(`${o.input}: not a readable Parquet file (${firstLine(err)})`);
    }
    for (const [flag, col] of [['--request', o.requestColumn], ['--time-column', o.timeColumn]] as const) {
      if (col !== undefined && !columns.includes(col)) throw new DataError(`${o.input}: no column \`${col}\` (${flag}); the file has: ${columns.join(', ')}`);
    }
    if (columns.includes('file_row_number')) throw new DataError(`${o.input}: has a column \`file_row_number\`, a name data split needs for itself; rename it first`);
    const req = sqlIdent(o.requestColumn);
    if (o.timeColumn) {
      const t = sqlIdent(o.timeColumn);
      const nulls = (await con.runAndReadAll(`SELECT count(*), min(file_row_number) FROM ${src} WHERE ${t} IS NULL`)).getRows()[0]!;
      if (Number(nulls[0]) > 0) {
        throw new DataError(`${o.input}: column \`${o.timeColumn}\` (--time-column) holds a null at row ${Number(nulls[1]) + 1}${Number(nulls[0]) > 1 ? ` and ${Number(nulls[0]) - 1} more rows` : ''}; every row needs a time`);
      }
    }
    // One row per request: where it starts in the file, and its split.
    const [f0, f1] = o.fractions;
    const cut1 = f0;
    const cut2 = f0 + f1;
    const assign =
      o.by === 'request'
        ? // the top 53 bits of md5('<seed>:<id>') as a number in [0, 1)
          `CASE WHEN u < ${cut1} THEN 'train' WHEN u < ${cut2} THEN 'valid' ELSE 'eval' END`
        : // position (0-based) among requests ordered by time, then by where they start
          `CASE WHEN pos < ${cut1} * n THEN 'train' WHEN pos < ${cut2} * n THEN 'valid' ELSE 'eval' END`;
    const inner =
      o.by === 'request'
        ? `SELECT req, start, (md5_number(${sqlString(`${o.seed}:`)} || coalesce(req::VARCHAR, 'null')) >> 75)::DOUBLE / 9007199254740992.0 AS u FROM reqs`
        : `SELECT req, start, (row_number() OVER (ORDER BY t, start) - 1)::DOUBLE AS pos, (count(*) OVER ())::DOUBLE AS n FROM reqs`;
    try {
      await con.run(
        `CREATE TEMP TABLE reqs AS SELECT ${req} AS req, min(file_row_number) AS start${o.timeColumn ? `, min(${sqlIdent(o.timeColumn)}) AS t` : ''} FROM ${src} GROUP BY ${req}`,
      );
      await con.run(`CREATE TEMP TABLE assigned AS SELECT req, start, ${assign} AS part FROM (${inner})`);
    } catch (err) {
      throw new DataError(`${o.input}: cannot assign requests to splits (${firstLine(err)})`);
    }
    mkdirSync(o.outDir, { recursive: true });
    const tmp = (s: SplitName) => path.join(o.outDir, `.${s}.parquet.tmp-${process.pid}`);
    const rows = {} as Record<SplitName, number>;
    const requests = {} as Record<SplitName, number>;
    try {
      for (const s of SPLIT_NAMES) {
        // `IS NOT DISTINCT FROM` keeps rows of a null request id together (as one request).
        await con.run(
          `COPY (SELECT d.* EXCLUDE (file_row_number) FROM ${src} d JOIN assigned a ON d.${req} IS NOT DISTINCT FROM a.req ` +
            `WHERE a.part = ${sqlString(s)} ORDER BY a.start, d.file_row_number) TO ${sqlString(tmp(s))} (FORMAT parquet)`,
        );
        rows[s] = Number((await con.runAndReadAll(`SELECT count(*) FROM read_parquet(${sqlString(tmp(s))})`)).getRows()[0]![0]);
        requests[s] = Number((await con.runAndReadAll(`SELECT count(*) FROM assigned WHERE part = ${sqlString(s)}`)).getRows()[0]![0]);
      }
      for (const s of SPLIT_NAMES) renameSync(tmp(s), files[s]);
    } catch (err) {
      for (const s of SPLIT_NAMES) rmSync(tmp(s), { force: true });
      throw new DataError(`${o.input}: writing the splits to ${o.outDir} failed (${firstLine(err)}); nothing written`);
    }
    return { files, rows, requests };
  });
}
