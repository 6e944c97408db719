/**
 * `resflow data split` (issue 15, point 8): the splits' rows add up to the input, no request is cut,
 * each request's rows stay contiguous and in the input's order, the fractions hold, the hash split is
 * stable under its seed, the time split cuts by time, bad usage exits 2 naming what is wrong and
 * replaces nothing, and `train` runs on the output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { DataError, UsageError } from '../src/base/errors.js';
import { sqlString, withDuckDB } from '../src/data/duckdb.js';
import { parseFractions, splitFile, type SplitOptions } from '../src/data/split.js';
import { cli, tempDir, tinyConfigYaml, tinyDir, writeFile } from './helpers/fixtures.js';

const SPLITS = ['train', 'valid', 'eval'] as const;

/** `rows` rows: requests of 1 to 5 rows each, in file order; `ts` runs backwards through the file. */
async function writeInput(file: string, requests: number): Promise<void> {
  await withDuckDB((con) =>
    con.run(
      `COPY (SELECT r AS request_id, j AS pos, (${requests} - r) * 10 AS ts, r * 100 + j AS payload ` +
        `FROM range(${requests}) a(r), range(5) b(j) WHERE j < 1 + (r * 7) % 5 ORDER BY r, j) TO ${sqlString(file)} (FORMAT parquet)`,
    ),
  );
}

/** The rows of a Parquet file in its order, as [request_id, pos, ts, payload]. */
async function readRows(file: string): Promise<number[][]> {
  return withDuckDB(async (con) => (await con.runAndReadAll(`SELECT request_id, pos, ts, payload FROM read_parquet(${sqlString(file)})`)).getRows().map((r) => r.map(Number)));
}

/** Checks the invariants every split must hold; returns the rows per split. */
async function checkSplits(input: string, out: string): Promise<Record<string, number[][]>> {
  const all = await readRows(input);
  const parts: Record<string, number[][]> = {};
  for (const s of SPLITS) parts[s] = await readRows(path.join(out, `${s}.parquet`));
  assert.equal(SPLITS.reduce((n, s) => n + parts[s]!.length, 0), all.length, 'rows add up to the input');
  const home = new Map<number, string>();
  for (const s of SPLITS) {
    const rows = parts[s]!;
    const seen = new Set<number>();
    for (let i = 0; i < rows.length; i++) {
      const req = rows[i]![0]!;
      if (i === 0 || rows[i - 1]![0] !== req) {
        assert.ok(!seen.has(req), `${s}: request ${req} is not contiguous`);
        seen.add(req);
      }
      assert.ok((home.get(req) ?? s) === s, `request ${req} is cut between ${home.get(req)} and ${s}`);
      home.set(req, s);
    }
    // in the input's order: each output is the input's rows of its requests, in the input's order
    assert.deepEqual(rows, all.filter((r) => home.get(r[0]!) === s));
  }
  return parts;
}

test('data split --by request: whole requests, rows add up, input order, fractions of requests, stable seed', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'in.parquet');
  await writeInput(input, 4000);
  const r = cli(['data', 'split', input, '--out', path.join(dir, 'a'), '--fractions', '0.7,0.2,0.1', '--seed', '3']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^train .*train\.parquet {2}[\d,]+ rows, [\d,]+ requests$/m);
  const parts = await checkSplits(input, path.join(dir, 'a'));
  const requests = (s: string) => new Set(parts[s]!.map((x) => x[0])).size;
  // 4000 requests: a fraction's standard error is below 0.008
  for (const [s, f] of [['train', 0.7], ['valid', 0.2], ['eval', 0.1]] as const) {
    assert.ok(Math.abs(requests(s) / 4000 - f) < 0.03, `${s}: ${requests(s)} of 4000 requests, expected about ${f}`);
  }
  // the same seed gives the same files; another seed another assignment
  const opts: SplitOptions = { input, outDir: path.join(dir, 'b'), by: 'request', fractions: [0.7, 0.2, 0.1], requestColumn: 'request_id', seed: 3 };
  await splitFile(opts);
  await splitFile({ ...opts, outDir: path.join(dir, 'c'), seed: 4 });
  const same = await readRows(path.join(dir, 'b', 'valid.parquet'));
  assert.deepEqual(same, parts.valid);
  assert.notDeepEqual(await readRows(path.join(dir, 'c', 'valid.parquet')), parts.valid);
});

test('data split --by time: requests ordered by their time and cut at the fractions', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'in.parquet');
  await writeInput(input, 1000);
  await splitFile({ input, outDir: path.join(dir, 't'), by: 'time', timeColumn: 'ts', fractions: parseFractions('0.8,0.1,0.1'), requestColumn: 'request_id', seed: 1 });
  const parts = await checkSplits(input, path.join(dir, 't'));
  // ts runs backwards through the file: the last 800 requests (earliest times) train
  const reqs = (s: string) => [...new Set(parts[s]!.map((x) => x[0]!))];
  assert.equal(reqs('train').length, 800);
  assert.equal(reqs('valid').length, 100);
  assert.equal(reqs('eval').length, 100);
  assert.equal(Math.min(...reqs('train')), 200);
  assert.deepEqual(reqs('valid').sort((a, b) => a - b)[0], 100);
  assert.equal(Math.max(...reqs('eval')), 99);
});

test('data split: bad usage and missing columns exit 2 naming what is wrong; nothing is replaced', async () => {
  const dir = tempDir();
  const input = path.join(dir, 'in.parquet');
  await writeInput(input, 50);
  const out = path.join(dir, 'o');
  const base: SplitOptions = { input, outDir: out, by: 'request', fractions: [0.8, 0.1, 0.1], requestColumn: 'request_id', seed: 1 };
  assert.throws(() => parseFractions('0.8,0.1'), (e: unknown) => e instanceof UsageError && /--fractions 0\.8,0\.1: expected three non-negative numbers/.test(e.message));
  assert.throws(() => parseFractions('0.8,0.1,0.2'), (e: unknown) => e instanceof UsageError && /the fractions sum to 1\.1\d*; expected 1/.test(e.message));
  const cases: [Partial<SplitOptions>, typeof UsageError, RegExp][] = [
    [{ by: 'time' }, UsageError, /--by time needs --time-column/],
    [{ by: 'time', timeColumn: 'tss' }, DataError, /in\.parquet: no column `tss` \(--time-column\); the file has: request_id, pos, ts, payload/],
    [{ requestColumn: 'search_id' }, DataError, /in\.parquet: no column `search_id` \(--request\)/],
  ];
  for (const [over, type, re] of cases) {
    await assert.rejects(splitFile({ ...base, ...over }), (e: unknown) => e instanceof type && re.test(e.message));
    assert.ok(!existsSync(out), 'nothing written');
  }
  const day = cli(['data', 'split', input, '--out', out, '--by', 'day']);
  assert.equal(day.code, 2);
  assert.match(day.stderr, /--by day: expected request or time/);
  const missing = cli(['data', 'split', path.join(dir, 'nope.parquet'), '--out', out]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.parquet: file not found/);
  // an existing output is never replaced
  mkdirSync(out, { recursive: true });
  writeFile(out, 'valid.parquet', 'mine');
  const taken = cli(['data', 'split', input, '--out', out]);
  assert.equal(taken.code, 2);
  assert.match(taken.stderr, /valid\.parquet already exists; choose an empty folder/);
  assert.equal(readFileSync(path.join(out, 'valid.parquet'), 'utf8'), 'mine');
  assert.ok(!existsSync(path.join(out, 'train.parquet')));
});

test('data split of the tiny eval file: train runs on its output', async () => {
  const dir = tempDir();
  const out = path.join(dir, 'split');
  const r = cli(['data', 'split', path.join(tinyDir, 'eval.parquet'), '--out', out, '--fractions', '0.6,0.2,0.2']);
  assert.equal(r.code, 0, r.stderr);
  for (const s of SPLITS) assert.ok(statSync(path.join(out, `${s}.parquet`)).size > 0);
  const cfg = writeFile(
    dir,
    'exp.yaml',
    tinyConfigYaml().replace(/train: .*\n {2}validation: .*\n {2}eval: .*\n/, `train: ${out}/train.parquet\n  validation: ${out}/valid.parquet\n  eval: ${out}/eval.parquet\n`),
  );
  assert.match(readFileSync(cfg, 'utf8'), /validation: .*split\/valid\.parquet/);
  const t = cli(['-q', 'train', cfg, '--runs-dir', dir]);
  assert.equal(t.code, 0, t.stderr);
  const run = t.stdout.trim().split('\n').pop()!;
  const metrics = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as { split: string; name: string }[];
  assert.ok(metrics.some((m) => m.split === 'eval' && m.name === 'auc'));
});
