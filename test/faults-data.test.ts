/**
 * Bad data in, as issue 12 found it: every case exits 2 (or is a DataError) naming the file, the
 * column and the real row or line, and nothing written before is lost. Files are generated small.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DataError, ResflowError } from '../src/base/errors.js';
import { loadConfig } from '../src/config/load.js';
import { sqlString, withDuckDB } from '../src/data/duckdb.js';
import { BatchEncoder, buildFeaturePlan, encodedBatches, openSplit, type Split } from '../src/data/encode.js';
import { inspectFile } from '../src/data/inspect.js';
import { importCsv } from '../src/data/import.js';
import type { ColumnBatch } from '../src/data/write.js';
import { cli, tempDir, writeFile } from './helpers/fixtures.js';

/** Rows i = 0..n-1 of a valid table; `over` replaces a column's SQL expression (of i). */
function tableSql(n: number, over: Record<string, string> = {}): string {
  const cols: Record<string, string> = {
    request_id: 'i // 4',
    user_id: 'i % 50',
    stage: "CASE i % 4 WHEN 3 THEN 'prerank_candidate' ELSE 'exposure' END",
    click: '(i % 7 = 0)::TINYINT',
    purchase: '(i % 21 = 0)::TINYINT',
    item_id: 'i % 100',
    hist: '[i % 5, i % 7]',
    price: 'i / 10.0',
    p_click: '0.5::DOUBLE',
    ...over,
  };
  return `SELECT ${Object.entries(cols).map(([k, v]) => `${v} AS ${k}`).join(', ')} FROM range(${n}) t(i)`;
}

async function writeData(file: string, n: number, over: Record<string, string> = {}): Promise<string> {
  const format = file.endsWith('.arrow') ? 'arrow' : 'parquet';
  if (format === 'parquet') {
    await withDuckDB((con) => con.run(`COPY (${tableSql(n, over)}) TO ${sqlString(file)} (FORMAT parquet)`));
  } else {
    // Arrow through the project's writer, from a Parquet file written the same way.
    const { tableInfo, readBatches } = await import('../src/data/reader.js');
    const { writeTable } = await import('../src/data/write.js');
    const pq = `${file}.parquet`;
    await writeData(pq, n, over);
    const info = await tableInfo(pq);
    const cols = info.columns.map((c) => ({ name: c.name, type: c.kind === 'string' ? 'string' as const : c.kind === 'list' ? 'list_int32' as const : 'float64' as const }));
    const batches: ColumnBatch[] = [];
    for await (const b of readBatches(info, cols.map((c) => ({ name: c.name, kind: c.type === 'string' ? 'string' as const : c.type === 'list_int32' ? 'list' as const : 'number' as const })), 1 << 20)) {
      const columns: Record<string, unknown> = {};
      for (const [name, c] of b.columns) columns[name] = c.type === 'list' ? { offsets: c.offsets, values: Int32Array.from(c.values as Float64Array) } : c.values;
      batches.push({ length: b.length, columns } as ColumnBatch);
    }
    await writeTable(file, cols, batches, { format: 'arrow' });
  }
  return file;
}

function configFor(dir: string, files: Partial<Record<Split, string>>, extra = ''): string {
  const data = Object.entries(files).map(([k, v]) => `  ${k}: ${v}`).join('\n');
  return writeFile(dir, 'exp.yaml', `name: faults
data:
${data}
  read_batch_rows: 1000
  columns:
    request: request_id
    user: user_id
    stage: stage
    labels: { click: click, purchase: purchase }
    truth: { click: p_click }
features:
  - { name: item_id, buckets: 100 }
  - { name: hist, type: list, buckets: 10, max_len: 4 }
  - { name: price, type: numeric }
tasks:
  - { name: ctr, label: click }
  - { name: ctcvr, label: purchase }
model: { type: resflow, embedding_dim: 4, hidden: [4] }
train: { epochs: 1, batch_size: 256 }
eval: { metrics: [auc] }
${extra}`);
}

/** Encodes a whole split the way training and evaluation read it; returns the batches' row count. */
async function encodeSplit(cfg: string, split: Split): Promise<number> {
  const { config } = loadConfig(cfg);
  const enc = new BatchEncoder(config, buildFeaturePlan(config));
  let rows = 0;
  for await (const b of encodedBatches(config, enc, await openSplit(config, split))) rows += b.length;
  return rows;
}

const rejectsWith = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof DataError, `expected a DataError, got ${String(e)}`);
  assert.match(e.message, re);
  return true;
};

for (const ext of ['parquet', 'arrow']) {
  test(`${ext}: a bad label deep in the file names the file's own row, not the row within a read batch`, async () => {
    const dir = tempDir();
    // Row 4322 (1-based) is i = 4321: the 5th read batch of 1000 rows, at 322 within it.
    const file = await writeData(path.join(dir, `bad.${ext}`), 5000, { click: 'CASE WHEN i = 4321 THEN 2 ELSE 0 END::TINYINT' });
    await assert.rejects(encodeSplit(configFor(dir, { train: file }), 'train'), rejectsWith(/bad\.\w+: column `click` \(label click\) holds 2 at row 4322; expected 0 or 1/));
  });
}

test('train: a bad stage value at row 2,345 of the second file exits 2 naming that file and row', async () => {
  const dir = tempDir();
  const a = await writeData(path.join(dir, 'a.parquet'), 3000);
  const b = await writeData(path.join(dir, 'b.parquet'), 3000, { stage: "CASE WHEN i = 2344 THEN 'shown' ELSE 'exposure' END" });
  const r = cli(['-q', 'train', configFor(dir, { train: `[${a}, ${b}]` }), '--runs-dir', dir]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /b\.parquet: column `stage` \(stage\) holds `shown` at row 2345; expected one of/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('train: NaN in a numeric feature exits 2 naming column, file and row (not a non-finite loss later)', async () => {
  const dir = tempDir();
  const file = await writeData(path.join(dir, 'nan.parquet'), 3000, { price: "CASE WHEN i = 2500 THEN 'NaN'::DOUBLE ELSE i / 10.0 END" });
  const r = cli(['-q', 'train', configFor(dir, { train: file }), '--runs-dir', dir]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /nan\.parquet: column `price` \(feature price\) holds NaN at row 2501; expected a finite number/);
  assert.doesNotMatch(r.stderr, /loss/);
});

test('eval: +Inf in the eval split exits 2 naming column, file and row, after training wrote the model', async () => {
  const dir = tempDir();
  const train = await writeData(path.join(dir, 'train.parquet'), 2000);
  const bad = await writeData(path.join(dir, 'eval.parquet'), 2000, { price: "CASE WHEN i = 1500 THEN 'inf'::DOUBLE ELSE i / 10.0 END" });
  const cfg = configFor(dir, { train, eval: bad });
  const r = cli(['-q', 'train', cfg, '--runs-dir', dir]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /eval\.parquet: column `price` \(feature price\) holds Infinity at row 1501; expected a finite number/);
  assert.doesNotMatch(r.stdout + r.stderr, /n\/a/);
});

test('non-finite values are refused in every split and every numeric role', async () => {
  const dir = tempDir();
  const good = await writeData(path.join(dir, 'good.parquet'), 1200);
  const cases: [Split, Record<string, string>, RegExp][] = [
    ['validation', { price: "CASE WHEN i = 1100 THEN '-inf'::DOUBLE ELSE 1 END" }, /column `price` \(feature price\) holds -Infinity at row 1101; expected a finite number/],
    ['eval', { price: 'CASE WHEN i = 5 THEN 1e39 ELSE 1 END' }, /column `price` \(feature price\) holds 1e\+39 at row 6; expected a finite number within float32 range/],
    ['eval', { purchase: "CASE WHEN i = 1001 THEN 'NaN'::DOUBLE ELSE 0 END" }, /column `purchase` \(label purchase\) holds NaN at row 1002; expected 0 or 1/],
    ['validation', { p_click: "CASE WHEN i = 999 THEN 'inf'::DOUBLE ELSE 0.5 END" }, /column `p_click` \(truth click\) holds Infinity at row 1000; expected a probability in \[0, 1\]/],
  ];
  for (const [i, [split, over, re]] of cases.entries()) {
    const file = await writeData(path.join(dir, `bad${i}.parquet`), 1200, over);
    const cfg = configFor(dir, { train: good, [split]: file });
    await assert.rejects(encodeSplit(cfg, split), rejectsWith(new RegExp(`bad${i}\\.parquet: ${re.source}`)));
  }
  // A null in a numeric feature is no error (it reads as 0), and the good file encodes whole.
  const nulls = await writeData(path.join(dir, 'nulls.parquet'), 1200, { price: 'CASE WHEN i = 7 THEN NULL ELSE 1 END' });
  assert.equal(await encodeSplit(configFor(dir, { train: nulls }), 'train'), 1200);
});

test('fractional ids are refused in feature, list, request and user columns; integer-valued doubles are accepted', async () => {
  const dir = tempDir();
  const cases: [Record<string, string>, RegExp][] = [
    [{ item_id: 'CASE WHEN i = 1234 THEN 3.5 ELSE i % 100 END::DOUBLE' }, /column `item_id` \(feature item_id\) holds 3\.5 at row 1235; expected an integer id/],
    [{ hist: 'CASE WHEN i = 1500 THEN [1.0, 2.25] ELSE [1.0, 2.0] END' }, /column `hist` \(feature hist\) holds 2\.25 at row 1501; expected an integer id/],
    [{ hist: 'CASE WHEN i = 1500 THEN [1.0, 2.75] ELSE [1.0, 2.0] END::DOUBLE[]' }, /column `hist` \(feature hist\) holds 2\.75 at row 1501; expected an integer id/],
    [{ request_id: 'CASE WHEN i = 1800 THEN 450.5 ELSE i // 4 END::DOUBLE' }, /column `request_id` \(request\) holds 450\.5 at row 1801; expected an integer id/],
    [{ user_id: "CASE WHEN i = 3 THEN 'NaN'::DOUBLE ELSE i % 50 END" }, /column `user_id` \(user\) holds NaN at row 4; expected an integer id/],
  ];
  for (const [i, [over, re]] of cases.entries()) {
    const file = await writeData(path.join(dir, `ids${i}.parquet`), 2000, over);
    await assert.rejects(encodeSplit(configFor(dir, { train: file }), 'train'), rejectsWith(new RegExp(`ids${i}\\.parquet: ${re.source}`)));
  }
  // The same ids stored as DOUBLE and as BIGINT give the same table rows.
  const asInt = await writeData(path.join(dir, 'int.parquet'), 500);
  const asDouble = await writeData(path.join(dir, 'double.parquet'), 500, { item_id: '(i % 100)::DOUBLE', hist: '[(i % 5)::DOUBLE, (i % 7)::DOUBLE]' });
  const ids = async (file: string) => {
    const { config } = loadConfig(configFor(dir, { train: file }));
    const enc = new BatchEncoder(config, buildFeaturePlan(config));
    const out: number[][] = [[], []];
    for await (const b of encodedBatches(config, enc, await openSplit(config, 'train'))) b.ids.forEach((a, k) => out[k]!.push(...a));
    return out;
  };
  assert.deepEqual(await ids(asDouble), await ids(asInt));
});

function csv(dir: string, name: string, lines: string[]): string {
  return writeFile(dir, name, lines.join('\n') + '\n');
}

test('data import is strict: ragged rows, an unterminated quote, an empty file, a late type error and a missing folder exit 2 naming file and line', async () => {
  const dir = tempDir();
  const body = (n: number) => Array.from({ length: n }, (_, i) => `${i},${i % 2},${i * 3}`);
  const out = path.join(dir, 'out.parquet');
  writeFileSync(out, 'written before');
  const cases: [string, string, RegExp][] = [
    [csv(dir, 'ragged.csv', ['request_id,click,item', ...body(100), '7,1', ...body(50)]), '', /ragged\.csv: line 102 has 2 fields, expected 3 as in the header/],
    [csv(dir, 'long.csv', ['request_id,click,item', ...body(10), '7,1,2,9', ...body(5)]), '', /long\.csv: line 12 has 4 fields, expected 3 as in the header/],
    [csv(dir, 'quote.csv', ['request_id,click,item', ...body(10), '3,"0,4', ...body(3)]), '', /quote\.csv: line 12 opens a quoted value that is never closed \(unterminated quote\)/],
    [writeFile(dir, 'empty.csv', ''), '', /empty\.csv: the file is empty; expected a header row and data rows/],
    [csv(dir, 'header.csv', ['request_id,click,item']), '', /header\.csv: no data rows after the header/],
    [csv(dir, 'late.csv', ['request_id,click,item', ...body(30_000), 'x7,0,1', ...body(10)]), '', /late\.csv: line 30002: column `request_id` holds "x7", expected BIGINT/],
    [csv(dir, 'ok.csv', ['a,b', '1,2']), path.join(dir, 'no/such/folder/x.parquet'), /--out .*no\/such\/folder\/x\.parquet: the folder .*no\/such\/folder does not exist/],
  ];
  for (const [file, target, re] of cases) {
    await assert.rejects(importCsv({ inputs: [file], out: target || out, rename: {} }), (e: unknown) => {
      assert.ok(e instanceof ResflowError && e.exitCode === 2, `${path.basename(file)}: ${String(e)}`);
      assert.match(e.message, re);
      assert.doesNotMatch(e.message, /Error:|Possible fixes/, 'no raw DuckDB message');
      return true;
    });
  }
  // The same through the command line: exit 2, one line, no stack trace.
  for (const [file, target, re] of [cases[0]!, cases[6]!]) {
    const r = cli(['-q', 'data', 'import', file, '--out', target || out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  }
  assert.equal(readFileSync(out, 'utf8'), 'written before', 'a failed import leaves the output as it was');
});

test('data import --skip-bad-lines leaves bad lines out and says how many', async () => {
  const dir = tempDir();
  const body = (from: number, n: number) => Array.from({ length: n }, (_, i) => `${from + i},${i % 2},${i}`);
  // Types are detected from the first 20,480 lines: the `x` on line 21,003 is a type error there.
  const file = csv(dir, 'mixed.csv', ['request_id,click,item', ...body(0, 40), '1,2', ...body(40, 20_960), 'x,1,1', ...body(21_000, 20), '1,2,3,4']);
  const out = path.join(dir, 'mixed.parquet');
  const strict = cli(['-q', 'data', 'import', file, '--out', out]);
  assert.equal(strict.code, 2);
  assert.match(strict.stderr, /mixed\.csv: line 42 has 2 fields, expected 3 as in the header; 3 bad lines in all; nothing written \(--skip-bad-lines/);
  assert.ok(!existsSync(out));
  const r = cli(['data', 'import', file, '--out', out, '--skip-bad-lines']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*mixed\.parquet: 21,020 rows, 3 columns; skipped 3 bad lines \(the first: .*mixed\.csv: line 42 has 2 fields/);
  const report = await inspectFile(out);
  assert.equal(report.rows, 21_020);
  assert.equal(report.requests, 21_020);
});

test('data inspect on a file without role columns reports schema and rows and names the roles it did not find', async () => {
  const dir = tempDir();
  const file = path.join(dir, 'plain.parquet');
  await withDuckDB((con) => con.run(`COPY (SELECT i AS x, i * 0.5 AS y FROM range(1234) t(i)) TO ${sqlString(file)} (FORMAT parquet)`));
  const r = cli(['data', 'inspect', file]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /format parquet, 1,234 rows, 2 columns/);
  assert.match(r.stdout, /role columns not found: request, user, stage, click, purchase, all_click, all_purchase/);
  assert.match(r.stdout, /x\s+BIGINT/);
  assert.match(r.stdout, /exposure\s+1,234/);
  const json = JSON.parse(cli(['data', 'inspect', file, '--json']).stdout) as { notFound: string[]; rows: number };
  assert.equal(json.rows, 1234);
  assert.equal(json.notFound.length, 7);
});

test('data inspect reads CSV with the same counts as the imported Parquet; a bad CSV line exits 2 naming it', async () => {
  const dir = tempDir();
  const lines = ['search_id,stage,click,conversion', ...Array.from({ length: 300 }, (_, i) => `${i % 37},${i % 3 === 0 ? 'ranking_candidate' : 'exposure'},${i % 3 !== 0 && i % 5 === 0 ? 1 : 0},0`)];
  const file = csv(dir, 'log.csv', lines);
  const viaCsv = await inspectFile(file);
  assert.equal(viaCsv.format, 'csv');
  assert.equal(viaCsv.rows, 300);
  assert.equal(viaCsv.requests, 37);
  const pq = path.join(dir, 'log.parquet');
  assert.equal(cli(['-q', 'data', 'import', file, '--out', pq]).code, 0);
  const viaParquet = await inspectFile(pq);
  assert.deepEqual(viaCsv.stages, viaParquet.stages);
  assert.deepEqual(viaCsv.labelRates, viaParquet.labelRates);
  const bad = csv(dir, 'bad.csv', [...lines.slice(0, 200), '5,exposure,1', ...lines.slice(200)]);
  const r = cli(['data', 'inspect', bad]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bad\.csv: line 201 has 3 fields, expected 4 as in the header/);
});

test('whole-request training: a request whose rows are not contiguous exits 2 naming file, row and the request id', async () => {
  const dir = tempDir();
  // Request 3 (rows 13-16) comes back at row 2501, after other requests.
  const file = await writeData(path.join(dir, 'ungrouped.parquet'), 3000, { request_id: 'CASE WHEN i = 2500 THEN 3 ELSE i // 4 END' });
  const r = cli(['-q', 'train', configFor(dir, { train: file }, 'sampling: { prerank_candidates: 1 }'), '--runs-dir', dir]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /ungrouped\.parquet: row 2501: request 3 appears again after other requests/);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('an empty train split, or one with no row in any task sample space, exits 2 instead of saving an untrained model', async () => {
  const dir = tempDir();
  const empty = await writeData(path.join(dir, 'empty.parquet'), 0);
  const r = cli(['-q', 'train', configFor(dir, { train: empty }), '--runs-dir', path.join(dir, 'runs-a')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /data\.train: .*empty\.parquet holds no rows; there is nothing to train on/);
  assert.ok(!existsSync(path.join(dir, 'runs-a')), 'no run folder is made');
  const unseen = await writeData(path.join(dir, 'unseen.parquet'), 400, { stage: "'prerank_candidate'" });
  const s = cli(['-q', 'train', configFor(dir, { train: unseen }), '--runs-dir', path.join(dir, 'runs-b')]);
  assert.equal(s.code, 2, s.stderr);
  assert.match(s.stderr, /no training rows in the tasks' sample spaces \(ctr: exposure; ctcvr: exposure\)/);
});
