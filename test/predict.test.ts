import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { withDuckDB } from '../src/data/duckdb.js';
import { cli, tempDir, tinyDir, trainTiny } from './helpers/fixtures.js';

/** Every role column of the tiny data except the request: what a serving log would not have. */
const NOT_FEATURES = ['click', 'purchase', 'all_click', 'all_purchase', 'stage', 'teacher_ctr', 'teacher_ctcvr', 'p_click', 'p_purchase', 'p_all_click', 'p_all_purchase', 'relevance_ctr', 'relevance_cvr'];

async function rows(file: string, select: string): Promise<unknown[][]> {
  return withDuckDB(async (con) => (await con.runAndReadAll(`SELECT ${select} FROM '${file}'`)).getRows() as unknown[][]);
}

const dir = tempDir();
const unlabelled = path.join(dir, 'nolabel.parquet');
let run = '';

test('setup: a tiny run and the eval split without labels, stage, teacher or truth', async () => {
  run = trainTiny(dir);
  await withDuckDB((con) => con.run(`COPY (SELECT * EXCLUDE (${NOT_FEATURES.join(', ')}) FROM '${tinyDir}/eval.parquet') TO '${unlabelled}' (FORMAT parquet)`));
  const cols = await withDuckDB(async (con) => (await con.runAndReadAll(`DESCRIBE SELECT * FROM '${unlabelled}'`)).getRows().map((r) => String(r[0])));
  for (const c of NOT_FEATURES) assert.ok(!cols.includes(c), c);
});

test('predict on unlabelled rows gives exactly the scores of eval --save-predictions (Parquet and CSV)', async () => {
  const evalPq = path.join(dir, 'eval.parquet');
  assert.equal(cli(['-q', 'eval', run, '--save-predictions', evalPq]).code, 0);
  const outPq = path.join(dir, 'pred.parquet');
  const r = cli(['-q', 'predict', run, '--data', unlabelled, '--out', outPq, '--pass', 'item_id,position']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), outPq);
  // same request, bit-identical p_ and fused, row for row
  const e = await rows(evalPq, 'request, p_ctr, p_ctcvr, fused');
  assert.equal(e.length, 9004);
  assert.deepEqual(await rows(outPq, 'request, p_ctr, p_ctcvr, fused'), e);
  const cols = await withDuckDB(async (con) => (await con.runAndReadAll(`DESCRIBE SELECT * FROM '${outPq}'`)).getRows().map((x) => `${x[0]}:${x[1]}`));
  assert.deepEqual(cols, ['request:BIGINT', 'item_id:BIGINT', 'position:BIGINT', 'p_ctr:DOUBLE', 'p_ctcvr:DOUBLE', 'fused:DOUBLE']);
  // passed columns are the input's, row for row (integers as BIGINT)
  assert.deepEqual(await rows(outPq, 'item_id, position'), await rows(unlabelled, 'item_id::BIGINT, position::BIGINT'));
  // CSV: the same numbers in text (every column float64, printed so that it reads back exactly)
  const outCsv = path.join(dir, 'pred.csv');
  assert.equal(cli(['-q', 'predict', run, '--data', unlabelled, '--out', outCsv]).code, 0);
  const [header, ...body] = readFileSync(outCsv, 'utf8').trim().split('\n');
  assert.equal(header, 'request,p_ctr,p_ctcvr,fused');
  assert.equal(body.length, e.length);
  body.forEach((line, i) => {
    const [req, ctr, ctcvr, fused] = line.split(',').map(Number);
    const want = e[i]!;
    assert.equal(req, Number(want[0]));
    assert.equal(ctr, want[1]);
    assert.equal(ctcvr, want[2]);
    assert.equal(fused, want[3]);
  });
});

test('predict --fusion fuses as eval --fusion does', async () => {
  const evalPq = path.join(dir, 'eval-mult.parquet');
  const spec = 'multiplicative:ctr=1,ctcvr=3';
  assert.equal(cli(['-q', 'eval', run, '--fusion', spec, '--split', 'mult', '--save-predictions', evalPq]).code, 0);
  const out = path.join(dir, 'pred-mult.parquet');
  assert.equal(cli(['-q', 'predict', run, '--data', unlabelled, '--out', out, '--fusion', spec]).code, 0);
  assert.deepEqual(await rows(out, 'fused'), await rows(evalPq, 'fused'));
});

test('eval on unlabelled rows: exit 2 naming the file, the missing label column and resflow predict', () => {
  const r = cli(['-q', 'eval', run, '--data', unlabelled]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /nolabel\.parquet: missing column `click` \(label click\); .*`resflow predict` scores rows without labels/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

test('predict: bad usage is exit 2 naming what was wrong, and no output file is written', async () => {
  const withFused = path.join(dir, 'with-fused.parquet');
  await withDuckDB((con) => con.run(`COPY (SELECT *, 1.0 AS fused FROM '${unlabelled}') TO '${withFused}' (FORMAT parquet)`));
  const out = path.join(dir, 'never.parquet');
  const cases: [string[], RegExp][] = [
    [['--pass', 'nope'], /missing column `nope` \(passed through with --pass\)/],
    [['--pass', 'user_recent_categories'], /column `user_recent_categories` \(passed through with --pass\) has type INTEGER\[\], expected an integer or string column/],
    [['--pass', 'fused'], /column `fused` would appear twice/],
    [['--fusion', 'additive:cvr=1'], /--fusion additive:cvr=1: no task named `cvr`/],
    [['--out', path.join(dir, 'x.arrow')], /--out .*x\.arrow: expected a \.parquet or \.csv file/],
  ];
  for (const [extra, re] of cases) {
    const r = cli(['-q', 'predict', run, '--data', extra[1] === 'fused' ? withFused : unlabelled, '--out', out, ...extra]);
    assert.equal(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
  }
  const r = cli(['-q', 'predict', run, '--data', path.join(dir, 'missing.parquet'), '--out', out]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--data: file not found: .*missing\.parquet/);
  assert.throws(() => readFileSync(out));
});
