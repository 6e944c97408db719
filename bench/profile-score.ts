import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/train/backend.js';
import { buildBundle, predict } from '../src/train/bundle.js';
import { Rng } from '../src/rng.js';
import { benchConfig, randomBatch } from './reference-model.js';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
await initBackend('wasm');
const B = 1024;
const bundle = buildBundle(benchConfig(B));
const rng = new Rng(1);
const batches = Array.from({ length: 8 }, () => randomBatch(rng, B));
for (let i = 0; i < 20; i++) predict(bundle, batches[i % 8]!);
const parts = { lookup: [] as number[], upload: [] as number[], forward: [] as number[], read: [] as number[], total: [] as number[] };
for (let r = 0; r < 5; r++) {
  const acc = { lookup: 0, upload: 0, forward: 0, read: 0, total: 0 };
  const N = 50;
  const t00 = performance.now();
  for (let i = 0; i < N; i++) {
    let t = performance.now();
    const x = bundle.tables.lookup(batches[i % 8]!);
    acc.lookup += performance.now() - t; t = performance.now();
    tf.tidy(() => {
      const input = tf.tensor2d(x, [B, bundle.tables.inputDim]);
      acc.upload += performance.now() - t; t = performance.now();
      const { logits } = bundle.model.forward(input, { training: false, dropoutSeed: 0 });
      const p = logits.map((z) => tf.sigmoid(z));
      acc.forward += performance.now() - t; t = performance.now();
      p.forEach((z) => z.dataSync());
      acc.read += performance.now() - t;
    });
  }
  acc.total = performance.now() - t00;
  for (const k of Object.keys(parts) as (keyof typeof parts)[]) parts[k].push(acc[k] / N);
}
for (const k of Object.keys(parts) as (keyof typeof parts)[]) console.log(k.padEnd(8), median(parts[k]).toFixed(3), 'ms');
console.log('samples/s', Math.round(B * 1000 / median(parts.total)));
const prof = await tf.profile(() => { predict(bundle, batches[0]!); });
for (const k of prof.kernels) console.log(k.name.padEnd(14), String(k.kernelTimeMs).slice(0, 6), k.inputShapes.map((s) => `[${s}]`).join(' '));
