/**
 * What the parts of a resflow training step on wasm could cost if done differently (issue 7 part 4:
 * ideas for closing the gap with PyTorch). ms per call, median of runs, on the benchmark model's
 * shapes (batch 1024, input 320, towers 256 -> 128). Measures, side by side:
 *  - the layer as resflow runs it (matMul + add + relu) vs tf.fused.matMul with bias and relu;
 *  - the bias gradient as tfjs computes it (Sum over axis 0) vs a matmul with a row of ones;
 *  - the kernel gradient xᵀ·dy (resflow's transpose-then-matmul wrapper) vs a plain matmul on an
 *    xᵀ computed once; the two towers' first layers as one 320x512 matmul;
 *  - the sparse lazy Adam and the embedding lookup as resflow runs them vs tight single loops.
 *
 *   npm run build && node dist/bench/wasm-gap.js [runs]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/train/backend.js';
import { validate, type SchemaIssue } from '../src/config/schema.js';
import { experimentSchema, type ExperimentConfig } from '../src/config/experiment.js';
import { buildBundle } from '../src/train/bundle.js';
import type { EncodedBatch } from '../src/data/encode.js';
import { Rng } from '../src/rng.js';

const RUNS = Number(process.argv[2] ?? 15);
const B = 1024;
const FIELDS = 20;
const VOCAB = 10_000;
const DIM = 16;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** ms per call of f (whose result is read back, so the work is done), median of RUNS. */
function ms(f: () => tf.Tensor | tf.Tensor[] | void): number {
  const once = () => {
    const r = f();
    const ts = r === undefined ? [] : Array.isArray(r) ? r : [r];
    for (const t of ts) t.dataSync();
    tf.dispose(ts);
  };
  once();
  once();
  const out: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    once();
    out.push(performance.now() - t);
  }
  return median(out);
}

function row(label: string, a: number, bLabel?: string, b?: number): void {
  const rest = bLabel !== undefined && b !== undefined ? `   vs ${bLabel}: ${b.toFixed(2).padStart(6)} ms (${(a / b).toFixed(1)}x)` : '';
  console.log(`  ${label.padEnd(44)} ${a.toFixed(2).padStart(6)} ms${rest}`);
}

function config(): ExperimentConfig {
  const raw = {
    name: 'bench',
    data: { train: 'unused', columns: { labels: { click: 'click', purchase: 'purchase' } } },
    features: Array.from({ length: FIELDS }, (_, i) => ({ name: `f${i}`, buckets: VOCAB })),
    tasks: [
      { name: 'ctr', label: 'click' },
      { name: 'ctcvr', label: 'purchase' },
    ],
    model: { type: 'resflow', embedding_dim: DIM, hidden: [256, 128], activation: 'relu' },
    train: { batch_size: B, optimizer: { type: 'adam', lr: 1e-3 } },
  };
  const issues: SchemaIssue[] = [];
  const c = validate(experimentSchema, raw, [], issues) as ExperimentConfig;
  if (issues.length) throw new Error(JSON.stringify(issues));
  return c;
}

/** Lookup of width-1 sum-pooled fields in one tight loop. */
function tightLookup(weights: Float32Array[], ids: Int32Array[], n: number): Float32Array {
  const D = FIELDS * DIM;
  const x = new Float32Array(n * D);
  for (let f = 0; f < FIELDS; f++) {
    const w = weights[f]!;
    const id = ids[f]!;
    for (let i = 0; i < n; i++) x.set(w.subarray(id[i]! * DIM, id[i]! * DIM + DIM), i * D + f * DIM);
  }
  return x;
}

/** Row-wise lazy Adam over width-1 fields, one function, no allocation per step but the slot arrays. */
function tightLazyAdam(
  W: Float32Array[], M: Float32Array[], V: Float32Array[], slot: Int32Array[], acc: Float32Array, touched: Int32Array,
  ids: Int32Array[], gradX: Float32Array, n: number, step: number,
): void {
  const D = FIELDS * DIM;
  const lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-7;
  const c2 = Math.sqrt(1 - Math.pow(b2, step));
  const lrT = (lr * c2) / (1 - Math.pow(b1, step));
  const epsHat = eps * c2;
  for (let f = 0; f < FIELDS; f++) {
    const id = ids[f]!;
    const sl = slot[f]!;
    let k = 0;
    for (let i = 0; i < n; i++) {
      const row = id[i]!;
      let s = sl[row]!;
      if (s < 0) {
        s = k++;
        sl[row] = s;
        touched[s] = row;
        acc.fill(0, s * DIM, s * DIM + DIM);
      }
      const a = s * DIM;
      const g = i * D + f * DIM;
      for (let d = 0; d < DIM; d++) acc[a + d]! += gradX[g + d]!;
    }
    const w = W[f]!, m = M[f]!, v = V[f]!;
    for (let s = 0; s < k; s++) {
      const base = touched[s]! * DIM;
      sl[touched[s]!] = -1;
      for (let d = 0; d < DIM; d++) {
        const gd = acc[s * DIM + d]!;
        const i = base + d;
        const mi = (m[i] = b1 * m[i]! + (1 - b1) * gd);
        const vi = (v[i] = b2 * v[i]! + (1 - b2) * gd * gd);
        w[i]! -= (lrT * mi) / (Math.sqrt(vi) + epsHat);
      }
    }
  }
}

async function main() {
  const info = await initBackend('wasm');
  console.log(`backend: ${info.detail}; ms per call, median of ${RUNS}; shared machine`);
  const rnd = (shape: number[]) => tf.randomUniform(shape, -0.1, 0.1, 'float32', 7);
  const x = rnd([B, 320]);
  const W1 = rnd([320, 256]);
  const W1b = rnd([320, 512]);
  const b1 = rnd([256]);
  const dy1 = rnd([B, 256]);
  const dy1b = rnd([B, 512]);
  const W2 = rnd([256, 128]);
  const ones = tf.ones([1, B]);

  console.log('forward, layer 1 of one tower (x[1024x320] . W[320x256] + b, relu):');
  const unfused = ms(() => tf.tidy(() => tf.relu(tf.add(tf.matMul(x, W1), b1))));
  const fused = ms(() => tf.fused.matMul({ a: x, b: W1, bias: b1, activation: 'relu' }));
  row('matMul + add + relu (resflow today)', unfused, 'fused.matMul(bias, relu)', fused);
  row('matMul alone', ms(() => tf.matMul(x, W1)));
  row('both towers as one x . W[320x512]', ms(() => tf.matMul(x, W1b)), '2 x matMul [320x256]', 2 * ms(() => tf.matMul(x, W1)));

  console.log('backward, layer 1:');
  const sumBias = ms(() => tf.sum(dy1, 0));
  const onesBias = ms(() => tf.matMul(ones, dy1));
  row('bias grad: sum(dy[1024x256], axis 0)', sumBias, 'ones[1x1024] . dy', onesBias);
  const xT = tf.transpose(x);
  const wrapped = ms(() => tf.matMul(x, dy1, true, false));
  const plain = ms(() => tf.matMul(xT, dy1));
  row('kernel grad xT.dy (transpose + matmul)', wrapped, 'xT computed once, matmul only', plain);
  row('transpose x[1024x320] alone', ms(() => tf.transpose(x)));
  row('both towers: xT.dy[1024x512] (one transpose)', ms(() => tf.matMul(x, dy1b, true, false)), '2 x xT.dy[1024x256]', 2 * wrapped);
  row('input grad dy . W1T (small transpose)', ms(() => tf.matMul(dy1, W1, false, true)));
  row('both towers: dy[1024x512] . W1bT', ms(() => tf.matMul(dy1b, W1b, false, true)), '2 x dy . W1T + add', ms(() => tf.tidy(() => tf.add(tf.matMul(dy1, W1, false, true), tf.matMul(dy1, W1, false, true)))));
  const h1 = rnd([B, 256]);
  const dy2 = rnd([B, 128]);
  row('layer 2 kernel grad h1T.dy2', ms(() => tf.matMul(h1, dy2, true, false)), 'forward h1 . W2', ms(() => tf.matMul(h1, W2)));
  const h2 = rnd([B, 128]);
  const dz = rnd([B, 1]);
  row('head kernel grad h2T.dz [128x1]', ms(() => tf.matMul(h2, dz, true, false)), 'dzT . h2 (row form)', ms(() => tf.matMul(dz, h2, true, false)));

  console.log('embeddings (JS, 20 fields x 1024 rows x dim 16):');
  const bundle = buildBundle(config());
  const rng = new Rng(3);
  const batch: EncodedBatch = {
    length: B,
    ids: Array.from({ length: FIELDS }, () => Int32Array.from({ length: B }, () => rng.int(VOCAB))),
    numeric: new Float32Array(0),
    labels: new Map(),
    stage: new Uint8Array(B),
    request: null,
    user: null,
    teacher: new Map(),
    truth: new Map(),
  };
  const tables = bundle.tables;
  const gradX = Float32Array.from({ length: B * 320 }, () => (rng.next() - 0.5) * 1e-3);
  const timeJs = (f: () => void) => {
    for (let i = 0; i < 5; i++) f();
    const ts: number[] = [];
    for (let i = 0; i < RUNS * 2; i++) {
      const t = performance.now();
      f();
      ts.push(performance.now() - t);
    }
    return median(ts);
  };
  const weights = tables.tables.map((t) => t.weights);
  row('lookup (EmbeddingTables.lookup)', timeJs(() => void tables.lookup(batch)), 'tight loop with subarray().set', timeJs(() => void tightLookup(weights, batch.ids, B)));
  const M = tables.tables.map((t) => new Float32Array(t.weights.length));
  const V = tables.tables.map((t) => new Float32Array(t.weights.length));
  const Wc = tables.tables.map((t) => Float32Array.from(t.weights));
  const slot = tables.tables.map((t) => new Int32Array(t.rows).fill(-1));
  const acc = new Float32Array(B * DIM);
  const touched = new Int32Array(B);
  let step = 0;
  row('sparse lazy Adam (EmbeddingTables.applyGradients)', timeJs(() => tables.applyGradients(batch, gradX)), 'tight single function', timeJs(() => tightLazyAdam(Wc, M, V, slot, acc, touched, batch.ids, gradX, B, ++step)));
}

await main();
