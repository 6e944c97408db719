/**
 * `eval --save-predictions` (README.md, "Predictions"): the file reproduces the metrics exactly. The
 * probabilities are written as float64 (the values `fused` and the metrics were computed from), so
 * `fused` recomputed from them equals the written one bit for bit, and AUC, WR@K and ASH@K computed
 * here from the file, by other means than src/metrics (rank sums with average ranks; a sort per
 * request), equal metrics.json's values exactly. `--with` adds input columns as read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { withDuckDB } from '../src/data/duckdb.js';
import { cli, tempDir, tinyDir, trainTiny } from './helpers/fixtures.js';

interface Rec { name: string; task: string; k?: number; split: string; value: number; variant?: string }

const dir = tempDir();
let run = '';

test('setup: a tiny run', () => {
  run = trainTiny(dir);
});

function readCsv(file: string): { col: (name: string) => string[]; header: string[]; n: number } {
  const [head, ...lines] = readFileSync(file, 'utf8').trim().split('\n');
  const header = head!.split(',');
  // no quoted commas in the columns read here (list columns come last and are not read)
  const cells = lines.map((l) => l.split(','));
  return { header, n: lines.length, col: (name) => cells.map((c) => c[header.indexOf(name)]!) };
}

/** Tie-aware AUC as a Mann–Whitney rank sum: (R+ − P(P+1)/2) / (P·N), average ranks for ties. */
function rankSumAuc(scores: number[], labels: number[]): number {
  const idx = scores.map((_, i) => i).sort((a, b) => scores[a]! - scores[b]!);
  let rPos = 0;
  let P = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j < idx.length && scores[idx[j]!] === scores[idx[i]!]) j++;
    const avgRank = (i + 1 + j) / 2; // ranks i+1..j
    for (let t = i; t < j; t++) if (labels[idx[t]!]) (rPos += avgRank), P++;
    i = j;
  }
  const N = idx.length - P;
  return (rPos - (P * (P + 1)) / 2) / (P * N);
}

/** Per request (in order of first appearance): top K by score, ties to the earlier row; macro and micro of hits / positives. */
function topKShare(requests: string[], scores: number[], positive: number[], k: number): { macro: number; micro: number } {
  const groups = new Map<string, number[]>();
  requests.forEach((r, i) => (groups.get(r) ?? groups.set(r, []).get(r)!).push(i));
  let sum = 0;
  let counted = 0;
  let top = 0;
  let all = 0;
  for (const rows of groups.values()) {
    const ranked = [...rows].sort((a, b) => scores[b]! - scores[a]! || a - b);
    const total = rows.reduce((s, i) => s + positive[i]!, 0);
    const hits = ranked.slice(0, k).reduce((s, i) => s + positive[i]!, 0);
    if (total > 0) (sum += hits / total), counted++;
    top += hits;
    all += total;
  }
  return { macro: sum / counted, micro: top / all };
}

function checkAgainstMetrics(file: string, split: string, fuse: (ctr: number, ctcvr: number) => number): void {
  const { col } = readCsv(file);
  const pCtr = col('p_ctr').map(Number);
  const pCtcvr = col('p_ctcvr').map(Number);
  const fused = col('fused').map(Number);
  // the written probabilities are float32 values (exactly, in float64), and fused follows from them bit for bit
  pCtr.forEach((p, i) => assert.equal(Math.fround(p), p, `p_ctr row ${i} is a float32 value`));
  fused.forEach((f, i) => assert.equal(fuse(pCtr[i]!, pCtcvr[i]!), f, `fused row ${i} recomputed from the file`));
  const metrics = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Rec[];
  const value = (name: string, task: string, k?: number, variant?: string) => {
    const r = metrics.find((m) => m.split === split && m.name === name && m.task === task && m.k === k && m.variant === variant);
    assert.ok(r, `${split} ${name} ${task} ${k ?? ''} ${variant ?? ''} in metrics.json`);
    return r.value;
  };
  const exposed = col('stage').map((s) => s === 'exposure');
  for (const [task, label, p] of [['ctr', 'click', pCtr], ['ctcvr', 'purchase', pCtcvr]] as const) {
    const y = col(label).map(Number);
    const keep = (a: number[]) => a.filter((_, i) => exposed[i]);
    assert.equal(rankSumAuc(keep(p), keep(y)), value('auc', task), `${split} auc ${task}`);
  }
  const requests = col('request');
  for (const k of [10, 50]) {
    for (const [name, label] of [['wrecall', 'purchase'], ['ash', 'all_purchase']] as const) {
      const got = topKShare(requests, fused, col(label).map(Number), k);
      assert.equal(got.macro, value(name, 'fused', k, 'macro'), `${split} ${name}@${k} macro`);
      assert.equal(got.micro, value(name, 'fused', k, 'micro'), `${split} ${name}@${k} micro`);
    }
  }
}

test('the predictions file reproduces AUC, WR@K and ASH@K of metrics.json exactly (additive fusion)', () => {
  const file = path.join(dir, 'p.csv');
  const r = cli(['-q', 'eval', run, '--save-predictions', file]);
  assert.equal(r.code, 0, r.stderr);
  checkAgainstMetrics(file, 'eval', (ctr, ctcvr) => 0 + 1 * ctr + 1 * ctcvr);
});

test('... and under a re-fusion (multiplicative, a variant split): fused recomputed from the file, metrics exact', () => {
  const file = path.join(dir, 'm.csv');
  const r = cli(['-q', 'eval', run, '--fusion', 'multiplicative:ctr=1,ctcvr=3', '--save-predictions', file]);
  assert.equal(r.code, 0, r.stderr);
  const clip = (p: number) => (p < 1e-7 ? 1e-7 : p > 1 ? 1 : p);
  checkAgainstMetrics(file, 'eval@fusion=multiplicative:ctr=1;ctcvr=3', (ctr, ctcvr) => Math.exp(0 + 1 * Math.log(clip(ctr)) + 3 * Math.log(clip(ctcvr))));
});

test('--with user,truth,item_id,user_recent_categories: the input columns as read, row for row; Parquet types', async () => {
  const file = path.join(dir, 'w.parquet');
  const r = cli(['-q', 'eval', run, '--save-predictions', file, '--with', 'user,truth,item_id,user_recent_categories']);
  assert.equal(r.code, 0, r.stderr);
  const [types, got, want] = await withDuckDB(async (con) => [
    (await con.runAndReadAll(`DESCRIBE SELECT * FROM '${file}'`)).getRows().map((x) => `${x[0]}:${x[1]}`),
    (await con.runAndReadAll(`SELECT request, user, p_click, relevance_cvr, item_id, user_recent_categories FROM '${file}' ORDER BY row`)).getRows(),
    (await con.runAndReadAll(`SELECT request_id::BIGINT, user_id::BIGINT, p_click::DOUBLE, relevance_cvr::DOUBLE, item_id::BIGINT, to_json(user_recent_categories)::VARCHAR FROM '${tinyDir}/eval.parquet'`)).getRows(),
  ]);
  assert.deepEqual(types, [
    'row:BIGINT', 'request:BIGINT', 'stage:VARCHAR', 'click:TINYINT', 'purchase:TINYINT', 'all_click:TINYINT', 'all_purchase:TINYINT', 'exposure:TINYINT',
    'p_ctr:DOUBLE', 'p_ctcvr:DOUBLE', 'fused:DOUBLE', 'user:BIGINT',
    'p_click:DOUBLE', 'p_purchase:DOUBLE', 'p_all_click:DOUBLE', 'p_all_purchase:DOUBLE', 'relevance_ctr:DOUBLE', 'relevance_cvr:DOUBLE',
    'item_id:BIGINT', 'user_recent_categories:VARCHAR',
  ]);
  assert.equal(got.length, 9004);
  assert.deepEqual(got, want);
});

test('--with: bad usage is exit 2 naming the column, before anything is written', () => {
  const before = readFileSync(path.join(run, 'metrics.json'), 'utf8');
  const out = path.join(dir, 'never.csv');
  const cases: [string[], RegExp][] = [
    [['--save-predictions', out, '--with', 'item_idd'], /eval\.parquet: missing column `item_idd` \(--with\)/],
    [['--save-predictions', out, '--with', 'user,click'], /--with user,click: column `click` \(--with\) would appear twice/],
    [['--with', 'user'], /--with names columns of the predictions file: give --save-predictions FILE too/],
    [['--save-predictions', out, '--with', 'user,,truth'], /--with user,,truth: expected column names/],
  ];
  for (const [args, message] of cases) {
    const r = cli(['-q', 'eval', run, '--split', 'never', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
  assert.equal(readFileSync(path.join(run, 'metrics.json'), 'utf8'), before, 'metrics.json untouched');
  assert.throws(() => readFileSync(out), /ENOENT/);
});

test('--with columns handed out n rows at a time line up with the file when takes straddle read batches and files', async () => {
  const { loadExperiment } = await import('../src/app/load-experiment.js');
  const { planPredictions, CopiedRows } = await import('../src/eval/predictions.js');
  const { config } = loadExperiment(path.join(run, 'config.yaml'));
  const file = path.join(tinyDir, 'eval.parquet');
  const extras = await planPredictions(path.join(dir, 'x.csv'), config, [file, file], ['item_id', 'user']);
  // reads of 1,000 rows, takes of 700 (and one of 1,408 that spans the two files' seam)
  const copies = new CopiedRows(extras, 1000);
  const items: bigint[] = [];
  const users: bigint[] = [];
  const sizes = [...Array.from({ length: 12 }, () => 700), 1408, ...Array.from({ length: 11 }, () => 700), 500];
  assert.equal(sizes.reduce((a, b) => a + b), 2 * 9004);
  let at = 0;
  for (const n of sizes) {
    const part = await copies.take(n, at);
    const [it, us] = [part.item_id as BigInt64Array | Float64Array, part.user as BigInt64Array | Float64Array];
    assert.equal(it.length, n);
    for (let i = 0; i < n; i++) (items.push(BigInt(it[i]!)), users.push(BigInt(us[i]!)));
    at += n;
  }
  copies.finish(at);
  const want = await withDuckDB(async (con) => (await con.runAndReadAll(`SELECT item_id::BIGINT, user_id::BIGINT FROM '${file}'`)).getRows());
  const twice = [...want, ...want];
  assert.deepEqual(items, twice.map((r) => r[0] as bigint));
  assert.deepEqual(users, twice.map((r) => r[1] as bigint));
  await assert.rejects(copies.take(1, at), /--with: the files hold 18008 rows, more were scored \(18009\)/);
  assert.throws(() => new CopiedRows(extras).finish(5), /--with: the files hold 18008 rows, 5 were scored/);
});
