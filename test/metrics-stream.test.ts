import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluateMetrics, type EvalInput } from '../src/metrics/registry.js';
import { NotContiguous, StreamingEvaluator, type EvalChunk } from '../src/metrics/stream.js';
import { fuseScores } from '../src/metrics/fusion.js';
import { itemWeights } from '../src/metrics/ranking.js';
import { Rng } from '../src/base/rng.js';

const ALL = ['auc', 'gauc', 'logloss', 'recall', 'wrecall', 'ash', 'online'];

/** Random rows in contiguous requests (ids in order of first appearance), with ties and masks. */
function randomInput(seed: number, requests: number, gaucGroup: 'request' | 'user'): EvalInput {
  const rng = new Rng(seed);
  const sizes = Array.from({ length: requests }, () => 1 + rng.int(rng.int(4) === 0 ? 60 : 8));
  const n = sizes.reduce((a, b) => a + b, 0);
  const req = new Int32Array(n);
  let at = 0;
  sizes.forEach((s, r) => req.fill(r, at, (at += s)));
  const users = Int32Array.from(req, (r) => (r * 7919) % Math.max(1, Math.floor(requests / 3))); // users span requests
  const coarse = () => Math.round(rng.next() * 20) / 20; // many ties
  const ctr = Float32Array.from({ length: n }, () => (rng.int(3) ? coarse() : rng.next()));
  const cvr = Float32Array.from({ length: n }, () => (rng.int(3) ? coarse() : rng.next()));
  const click = Uint8Array.from({ length: n }, () => (rng.next() < 0.3 ? 1 : 0));
  const buy = Uint8Array.from(click, (c) => (c && rng.next() < 0.4 ? 1 : 0));
  const allBuy = Uint8Array.from(buy, (b) => (b || rng.next() < 0.05 ? 1 : 0));
  const exposed = Uint8Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0));
  const probs = { ctr, ctcvr: cvr };
  return {
    split: 'test',
    metrics: ALL,
    ks: [1, 3, 5, 50],
    tasks: ['ctr', 'ctcvr'],
    probs,
    labels: { ctr: click, ctcvr: buy },
    masks: { ctr: exposed, ctcvr: undefined },
    fused: fuseScores(probs, 'additive', { ctr: 1, ctcvr: 2 }),
    requests: req,
    users,
    gaucGroup,
    itemWeights: itemWeights({ click, purchase: buy }, { click: 1, purchase: 4 }),
    ashTargets: allBuy,
    online: {
      teacherCtcvr: Float32Array.from({ length: n }, () => rng.next()),
      relevanceCtr: Float32Array.from({ length: n }, () => rng.next() * 0.2),
      relevanceCvr: Float32Array.from({ length: n }, () => rng.next() * 0.3),
      exposed,
    },
  };
}

function sliceInput(input: EvalInput, s: number, e: number): EvalChunk {
  type Arr = Float32Array | Float64Array | Uint8Array | Int32Array;
  const cut = <A extends Arr | undefined>(a: A): A => (a === undefined ? a : (a.subarray(s, e) as A));
  const rec = <A extends Arr>(r: Readonly<Record<string, A | undefined>>): Record<string, A> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, cut(v)])) as Record<string, A>;
  const o = input.online!;
  return {
    probs: rec(input.probs as Record<string, Float32Array>),
    labels: rec(input.labels as Record<string, Uint8Array>),
    masks: rec(input.masks!),
    fused: cut(input.fused as Float64Array),
    requests: cut(input.requests),
    users: cut(input.users),
    itemWeights: cut(input.itemWeights as Float64Array),
    ashTargets: cut(input.ashTargets as Uint8Array),
    online: { teacherCtcvr: cut(o.teacherCtcvr as Float32Array), relevanceCtr: cut(o.relevanceCtr as Float32Array), relevanceCvr: cut(o.relevanceCvr as Float32Array), exposed: cut(o.exposed) },
  };
}

function streamed(input: EvalInput, cuts: number[]): ReturnType<typeof evaluateMetrics> {
  const ev = new StreamingEvaluator(input, cuts.length % 2 ? 0 : input.requests!.length);
  let s = 0;
  for (const e of [...cuts, input.requests!.length]) (ev.push(sliceInput(input, s, e)), (s = e));
  return ev.finish();
}

for (const group of ['request', 'user'] as const) {
  test(`streamed records are bit-identical to evaluateMetrics on all rows at once (gAUC by ${group}), whatever the chunking`, () => {
    for (const seed of [1, 2, 3]) {
      const input = randomInput(seed, 400, group);
      const n = input.requests!.length;
      const whole = evaluateMetrics(input);
      assert.ok(whole.length > 30);
      assert.ok(whole.every((r) => Number.isFinite(r.value)), 'every value finite (the data exercise every metric)');
      const rng = new Rng(seed + 100);
      const chunkings = [[], [1, 2, 3], Array.from({ length: 9 }, () => rng.int(n)).sort((a, b) => a - b), Array.from({ length: Math.floor(n / 7) }, (_, i) => 7 * (i + 1))];
      for (const cuts of chunkings) {
        assert.equal(JSON.stringify(streamed(input, cuts)), JSON.stringify(whole), `seed ${seed}, ${cuts.length} cuts`);
      }
    }
  });
}

test('streamed evaluation of no rows gives the same (NaN) records as evaluateMetrics', () => {
  const input = randomInput(4, 0, 'request');
  const ev = new StreamingEvaluator(input);
  ev.push(sliceInput(input, 0, 0));
  assert.deepEqual(ev.finish(), evaluateMetrics(input));
});

test('a request that comes back after another is refused as not contiguous', () => {
  const input = randomInput(5, 3, 'request');
  const req = input.requests!;
  const ev = new StreamingEvaluator({ ...input, metrics: ['recall'] });
  ev.push(sliceInput(input, 0, req.length));
  ev.push(sliceInput(input, 0, 1)); // request 0 again, after 1 and 2
  assert.throws(() => ev.finish(), (e: unknown) => e instanceof NotContiguous && e.request === 0);
});

test('a missing input is the same DataError as evaluateMetrics gives', () => {
  const input = randomInput(6, 5, 'request');
  const ev = new StreamingEvaluator({ ...input, metrics: ['ash'] });
  assert.throws(() => ev.push({ ...sliceInput(input, 0, 3), ashTargets: undefined }), /metric `ash` needs/);
  assert.throws(() => evaluateMetrics({ ...input, metrics: ['ash'], ashTargets: undefined }), /metric `ash` needs/);
});
