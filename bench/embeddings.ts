/**
 * Micro-benchmark of the sparse embedding tables alone (lookup and lazy-Adam update) for the
 * The reference model (bench/reference-model.ts): 20 fields x vocabulary 10,000 x dim 16, batch 1024. Prints median ms per step
 * for the JavaScript kernels and the native ones (1 and 2 threads), each "warm" (steps back to
 * back, tables partly cached) and "cold" (64 MiB streamed through the caches before each call, as
 * the rest of a training step does), which is what a real step sees.
 *   node dist/bench/embeddings.js       (OPT=adagrad|sgd for the other optimizers)
 */
import { EmbeddingTables } from '../src/models/embeddings.js';
import { createSparseKernels, JsSparseKernels, NativeSparseKernels, type SparseKernels } from '../src/kernels/sparse-kernels.js';
import type { EncodedBatch, FeaturePlan } from '../src/data/encode.js';
import { Rng } from '../src/base/rng.js';

const FIELDS = 20;
const VOCAB = 10_000;
const DIM = 16;
const B = 1024;
const plan: FeaturePlan = {
  sparse: Array.from({ length: FIELDS }, (_, i) => ({ name: `f${i}`, column: `f${i}`, kind: 'categorical' as const, tableSize: VOCAB, width: 1, pooling: 'mean' as const, dim: DIM, toRow: () => 0 })),
  numeric: [],
};
const rng = new Rng(1);
const batches: EncodedBatch[] = Array.from({ length: 8 }, () => ({
  length: B,
  ids: Array.from({ length: FIELDS }, () => Int32Array.from({ length: B }, () => rng.int(VOCAB))),
  numeric: new Float32Array(0),
  labels: new Map(),
  stage: new Uint8Array(B),
  request: null,
  user: null,
  teacher: new Map(),
  truth: new Map(),
}));
const grad = Float32Array.from({ length: B * FIELDS * DIM }, () => rng.normal() * 1e-3);
const flush = new Float64Array(8 << 20); // 64 MiB
let sink = 0;
const evict = () => {
  for (let j = 0; j < flush.length; j += 8) sink += flush[j]! += 1;
};
const time = (f: () => void, cold: boolean, reps = 40) => {
  const xs: number[] = [];
  for (let r = 0; r < reps; r++) {
    if (cold) evict();
    const t0 = performance.now();
    f();
    xs.push(performance.now() - t0);
  }
  return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
};

const preferred = createSparseKernels();
const variants: [string, SparseKernels][] = [['js', new JsSparseKernels()]];
if (preferred instanceof NativeSparseKernels) {
  variants.push(['native, 1 thread', new NativeSparseKernels(preferred.fns, 1)], [`native, ${preferred.threads} threads`, preferred]);
} else console.log('(native kernels not available)');
const optimizer = { type: (process.env['OPT'] ?? 'adam') as 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, initial_accumulator: 0.1 };
console.log(`kernels            lookup warm / cold   update (${optimizer.type}) warm / cold   ms per step of ${B} rows`);
for (const [name, kernels] of variants) {
  const tables = new EmbeddingTables(plan, new Rng(1), optimizer, kernels);
  let i = 0;
  for (let w = 0; w < 20; w++) (tables.lookup(batches[w % 8]!), tables.applyGradients(batches[w % 8]!, grad));
  const cells = [false, true].flatMap((cold) => [
    time(() => tables.lookup(batches[i++ % 8]!), cold),
    time(() => tables.applyGradients(batches[i++ % 8]!, grad), cold),
  ]);
  const [lw, uw, lc, uc] = cells.map((x) => x.toFixed(2).padStart(6));
  console.log(`${name.padEnd(18)} ${lw} / ${lc}          ${uw} / ${uc}`);
}
if (sink === 42) console.log('');
