/**
 * Micro-benchmark of the sparse embedding tables alone (lookup and lazy-Adam update) for the
 * DESIGN §9 model: 20 fields x vocabulary 10,000 x dim 16, batch 1024. Prints median ms per step.
 *   node dist/bench/embeddings.js
 */
import { EmbeddingTables } from '../src/models/embeddings.js';
import type { EncodedBatch, FeaturePlan } from '../src/data/encode.js';
import { Rng } from '../src/rng.js';

const FIELDS = 20;
const VOCAB = 10_000;
const DIM = 16;
const B = 1024;
const plan: FeaturePlan = {
  sparse: Array.from({ length: FIELDS }, (_, i) => ({ name: `f${i}`, column: `f${i}`, kind: 'categorical' as const, tableSize: VOCAB, width: 1, pooling: 'mean' as const, dim: DIM, toRow: () => 0 })),
  numeric: [],
};
const rng = new Rng(1);
const tables = new EmbeddingTables(plan, rng, { type: (process.env.OPT ?? 'adam') as 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, initial_accumulator: 0.1 });
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
const time = (f: () => void, reps = 50) => {
  const xs: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    f();
    xs.push(performance.now() - t0);
  }
  return xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
};
let i = 0;
for (let w = 0; w < 20; w++) (tables.lookup(batches[w % 8]!), tables.applyGradients(batches[w % 8]!, grad));
console.log(`lookup:          ${time(() => tables.lookup(batches[i++ % 8]!)).toFixed(2)} ms/step`);
console.log(`applyGradients:  ${time(() => tables.applyGradients(batches[i++ % 8]!, grad)).toFixed(2)} ms/step`);
