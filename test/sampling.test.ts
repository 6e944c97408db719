import { test } from 'node:test';
import assert from 'node:assert/strict';
import { epochBatches, type BatchPlan } from '../src/data/batches.js';
import type { EncodedBatch } from '../src/data/encode.js';
import { Rng } from '../src/base/rng.js';

/** Requests 0..R-1, each with E exposures, M' ranking and L' pre-ranking candidates, contiguous. */
function funnel(R: number, E: number, Mr: number, Lp: number): EncodedBatch {
  const stage: number[] = [];
  const request: number[] = [];
  for (let r = 0; r < R; r++) {
    for (const [s, n] of [[0, E], [1, Mr], [2, Lp]] as const) for (let i = 0; i < n; i++) (stage.push(s), request.push(r));
  }
  const n = stage.length;
  return {
    length: n,
    ids: [Int32Array.from({ length: n }, (_, i) => i)], // row identity, to see which rows were kept
    numeric: new Float32Array(0),
    labels: new Map([['exposure', Uint8Array.from(stage, (s) => (s === 0 ? 1 : 0))]]),
    stage: Uint8Array.from(stage),
    request: Int32Array.from(request),
    user: null,
    teacher: new Map(),
    truth: new Map(),
  };
}

async function* chunks(b: EncodedBatch, size: number): AsyncGenerator<EncodedBatch> {
  const { selectRows } = await import('../src/data/batches.js');
  for (let i = 0; i < b.length; i += size) yield selectRows(b, Int32Array.from({ length: Math.min(size, b.length - i) }, (_, j) => i + j));
}

const plan = (over: Partial<BatchPlan> = {}): BatchPlan => ({
  keepStage: [true, true, true],
  wholeRequests: true,
  sampleCounts: [null, 10, 40],
  batchSize: 200,
  shuffle: true,
  bufferRows: 1000,
  ...over,
});

async function collect(p: BatchPlan, seed: number, readSize = 97) {
  const data = funnel(30, 8, 25, 60);
  const out: EncodedBatch[] = [];
  for await (const b of epochBatches(chunks(data, readSize), p, new Rng(seed, 1000))) out.push(b);
  return out;
}

test('sampling: all exposures + M ranking + L pre-ranking candidates per request, whole requests per batch', async () => {
  const batches = await collect(plan(), 1);
  const perRequest = new Map<number, number[]>();
  for (const b of batches) {
    const reqs = new Set(b.request!);
    for (const r of reqs) assert.ok(!perRequest.has(r), `request ${r} split across batches`);
    for (let i = 0; i < b.length; i++) {
      const r = b.request![i]!;
      if (!perRequest.has(r)) perRequest.set(r, [0, 0, 0]);
      perRequest.get(r)![b.stage[i]!]!++;
    }
  }
  assert.equal(perRequest.size, 30);
  for (const [r, counts] of perRequest) assert.deepEqual(counts, [8, 10, 40], `request ${r}`);
});

test('sampling is uniform without replacement, seeded, and fresh each epoch', async () => {
  const rowsOf = (bs: EncodedBatch[]) => bs.flatMap((b) => Array.from(b.ids[0]!));
  const a = rowsOf(await collect(plan(), 1));
  const b = rowsOf(await collect(plan(), 1));
  const c = rowsOf(await collect(plan(), 2));
  assert.deepEqual(a, b, 'same seed, same rows in the same order');
  assert.notDeepEqual(c, a, 'another seed (epoch stream) draws other candidates');
  assert.equal(new Set(a).size, a.length, 'no row drawn twice');
  // Uniformity: over many epochs every pre-ranking candidate is drawn about L/L' = 40/60 of the time.
  const counts = new Map<number, number>();
  const epochs = 60;
  for (let e = 0; e < epochs; e++) {
    const data = funnel(1, 2, 0, 60);
    for await (const batch of epochBatches(chunks(data, 50), plan({ sampleCounts: [null, 0, 40] }), new Rng(7, e))) {
      for (let i = 0; i < batch.length; i++) if (batch.stage[i] === 2) counts.set(batch.ids[0]![i]!, (counts.get(batch.ids[0]![i]!) ?? 0) + 1);
    }
  }
  const rates = [...counts.values()].map((n) => n / epochs);
  assert.equal(counts.size, 60);
  const mean = rates.reduce((s, x) => s + x, 0) / rates.length;
  assert.ok(Math.abs(mean - 40 / 60) < 1e-9);
  for (const r of rates) assert.ok(Math.abs(r - 2 / 3) < 0.25, `rate ${r}`);
});

test('null counts keep every candidate; stages no task uses are dropped; rows mode ignores requests', async () => {
  const all = (await collect(plan({ sampleCounts: [null, null, null] }), 1)).reduce((s, b) => s + b.length, 0);
  assert.equal(all, 30 * (8 + 25 + 60));
  const exposuresOnly = await collect(plan({ keepStage: [true, false, false], wholeRequests: false, sampleCounts: [null, null, null] }), 1);
  assert.equal(exposuresOnly.reduce((s, b) => s + b.length, 0), 30 * 8);
  assert.ok(exposuresOnly.every((b) => b.stage.every((s) => s === 0)));
  assert.ok(exposuresOnly.slice(0, -1).every((b) => b.length === 200));
});

test('a request whose rows are not contiguous is a clear error in whole-request mode', async () => {
  const data = funnel(3, 2, 0, 0);
  data.request![1] = 2; // request 2 appears before request 1 ends, and again later
  await assert.rejects(async () => {
    for await (const _ of epochBatches(chunks(data, 100), plan(), new Rng(1))) void _;
  }, /not contiguous/);
});
