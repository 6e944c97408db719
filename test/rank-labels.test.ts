/**
 * Rank-consistency labels (README.md, "Rank-consistency tasks"): label = the teacher put the row in
 * its top k within its request; ties go to the earlier row. Checked against labels worked out by hand
 * on small requests with ties, whatever the read batches' cuts, and end to end through the CLI (a
 * file read 3 rows at a time, so requests span read batches; the labels as `eval --save-predictions`
 * writes them). A request that is not contiguous and an unknown teacher are exit 2 naming the place.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { markTopK, withRankLabels } from '../src/data/rank-labels.js';
import { KeyIndex, type EncodedBatch } from '../src/data/encode.js';
import { writeTable } from '../src/data/write.js';
import { cli, tempDir, writeFile } from './helpers/fixtures.js';

// Four requests; the teacher's scores with ties inside requests 1 and 3.
const REQUESTS = [1, 1, 1, 1, 1, 2, 3, 3, 3, 4, 4, 4, 4];
const TEACHER = [0.3, 0.8, 0.3, 0.8, 0.1, 0.5, 0.2, 0.2, 0.2, 0.9, 0.4, 0.6, 0.7];
// By hand. Request 1: the two 0.8s are its top 2 (rows 2 and 4 of it); top 3 adds the first 0.3 (row 1,
// before row 3). Request 2 has one row. Request 3: all tied, so the first k rows. Request 4: 0.9, 0.7, 0.6.
const TOP2 = [0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 1];
const TOP3 = [1, 1, 0, 1, 0, 1, 1, 1, 1, 1, 0, 1, 1];

test('markTopK: the k highest scores of a range, ties to the earlier row', () => {
  const out = new Uint8Array(5).fill(7);
  markTopK([0.3, 0.8, 0.3, 0.8, 0.1], 0, 5, 2, out);
  assert.deepEqual(Array.from(out), [0, 1, 0, 1, 0]);
  markTopK([0.3, 0.8, 0.3, 0.8, 0.1], 0, 5, 3, out);
  assert.deepEqual(Array.from(out), [1, 1, 0, 1, 0]);
  markTopK([0.3, 0.8, 0.3, 0.8, 0.1], 0, 5, 9, out);
  assert.deepEqual(Array.from(out), [1, 1, 1, 1, 1]);
  const part = new Uint8Array(5);
  markTopK([9, 0.5, 0.5, 0.7, 9], 1, 4, 1, part);
  assert.deepEqual(Array.from(part), [0, 0, 0, 1, 0], 'only rows 1..3 are looked at');
});

function rows(from: number, to: number): EncodedBatch {
  const n = to - from;
  return {
    length: n,
    ids: [],
    numeric: new Float32Array(0),
    labels: new Map([['click', new Uint8Array(n)]]),
    stage: new Uint8Array(n),
    request: Int32Array.from(REQUESTS.slice(from, to)),
    user: null,
    teacher: new Map([['ctcvr', Float32Array.from(TEACHER.slice(from, to))]]),
    truth: new Map(),
    origin: { file: 'f.parquet', firstRow: from + 1, requestKeys: new KeyIndex() },
  };
}

async function labelsFor(batchRows: number): Promise<{ top2: number[]; top3: number[]; cuts: number[] }> {
  const source = async function* () {
    for (let at = 0; at < REQUESTS.length; at += batchRows) yield rows(at, Math.min(at + batchRows, REQUESTS.length));
  };
  const specs = [{ key: 'top2_ctcvr', teacher: 'ctcvr', topK: 2 }, { key: 'top3_ctcvr', teacher: 'ctcvr', topK: 3 }];
  const out = { top2: [] as number[], top3: [] as number[], cuts: [] as number[] };
  for await (const b of withRankLabels(source(), specs)) {
    out.top2.push(...b.labels.get('top2_ctcvr')!);
    out.top3.push(...b.labels.get('top3_ctcvr')!);
    out.cuts.push(b.length);
  }
  return out;
}

test('withRankLabels: the hand-worked labels whatever the read batches, each batch ending at a request end', async () => {
  for (let batchRows = 1; batchRows <= REQUESTS.length; batchRows++) {
    const { top2, top3, cuts } = await labelsFor(batchRows);
    assert.deepEqual(top2, TOP2, `top 2, read batches of ${batchRows}`);
    assert.deepEqual(top3, TOP3, `top 3, read batches of ${batchRows}`);
    let at = 0;
    for (const n of cuts) {
      at += n;
      assert.ok(at === REQUESTS.length || REQUESTS[at] !== REQUESTS[at - 1], `batches of ${batchRows}: a cut at ${at} splits a request`);
    }
  }
});

const CONFIG = (file: string, label: string) => `name: rank
data:
  train: ${file}
  validation: ${file}
  eval: ${file}
  read_batch_rows: 3
  columns: { request: request_id, labels: { click: click }, teacher: { ctcvr: teacher_ctcvr } }
features:
  - { name: item_id, buckets: 16 }
tasks:
  - { name: ctr, label: click }
  - { name: consistent, label: ${label} }
  - { name: consistent3, label: { from_teacher: ctcvr, top_k: 3 } }
model: { type: cold, embedding_dim: 2, hidden: [3] }
train: { epochs: 1, batch_size: 4 }
eval: { metrics: [auc, logloss, recall], ks: [2], batch_size: 5 }
runtime: { backend: wasm, tensorboard: false }
`;

async function dataFile(dir: string, requests: number[]): Promise<string> {
  const file = path.join(dir, 'rows.parquet');
  const n = requests.length;
  await writeTable(file, [
    { name: 'request_id', type: 'int64' },
    { name: 'item_id', type: 'int64' },
    { name: 'click', type: 'int8' },
    { name: 'teacher_ctcvr', type: 'float32' },
  ], [{ length: n, columns: { request_id: Float64Array.from(requests), item_id: Float64Array.from({ length: n }, (_, i) => i % 5), click: Int8Array.from({ length: n }, (_, i) => i % 2), teacher_ctcvr: Float32Array.from(TEACHER) } }]);
  return file;
}

test('CLI: a task with label { from_teacher, top_k } trains and evaluates; the predictions file holds the hand-worked labels', async () => {
  const dir = tempDir();
  const config = writeFile(dir, 'rank.yaml', CONFIG(await dataFile(dir, REQUESTS), '{ from_teacher: ctcvr, top_k: 2 }'));
  const r = cli(['-q', 'train', config, '--runs-dir', path.join(dir, 'runs')]);
  assert.equal(r.code, 0, r.stderr);
  const run = r.stdout.trim().split('\n').pop()!;
  const preds = path.join(dir, 'preds.csv');
  const e = cli(['-q', 'eval', run, '--save-predictions', preds]);
  assert.equal(e.code, 0, e.stderr);
  const [head, ...lines] = readFileSync(preds, 'utf8').trim().split('\n');
  const cols = head!.split(',');
  const column = (name: string) => lines.map((l) => Number(l.split(',')[cols.indexOf(name)]));
  assert.deepEqual(column('top2_ctcvr'), TOP2);
  assert.deepEqual(column('top3_ctcvr'), TOP3);
  const metrics = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as { name: string; task: string; split: string }[];
  assert.ok(metrics.some((m) => m.name === 'auc' && m.task === 'consistent' && m.split === 'eval'));
});

test('CLI: a request whose rows are not contiguous, and an unknown teacher, are exit 2 naming the place', async () => {
  const dir = tempDir();
  const scattered = [1, 1, 1, 1, 1, 2, 3, 3, 3, 1, 4, 4, 4];
  const config = writeFile(dir, 'rank.yaml', CONFIG(await dataFile(dir, scattered), '{ from_teacher: ctcvr, top_k: 2 }'));
  const r = cli(['-q', 'train', config, '--runs-dir', path.join(dir, 'runs')]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /rows\.parquet: row 10: request 1 appears again after other requests; rank-consistency labels/);
  const bad = writeFile(dir, 'bad.yaml', CONFIG(path.join(dir, 'rows.parquet'), '{ from_teacher: ctvr, top_k: 2 }'));
  const c = cli(['config', 'check', bad]);
  assert.equal(c.code, 2);
  assert.match(c.stderr, /bad\.yaml:\d+: tasks\[1\]\.label\.from_teacher: teacher `ctvr` is not under data\.columns\.teacher \(known: ctcvr\)/);
});
