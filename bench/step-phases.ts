/**
 * Where a training step's time goes, and what moving data to and from the backend costs (README.md,
 * "Backends"; most useful on `webgpu`, where every step uploads the batch's gathered embedding rows
 * and reads back the losses and the gradient of those rows).
 *
 * Phases are the Trainer's own parts of a step, timed one by one on the reference model
 * (bench/reference-model.ts, bench/step-timing.ts): the embedding lookup (CPU gather + tensor),
 * forward+backward (upload, dense forward and backward, read-back of the losses and of the input
 * gradient), the dense update (on webgpu only queued: its GPU work finishes inside the next step's
 * forward+backward), the sparse update (CPU, while the GPU does the dense update), the finish. Transfers: a [batch, inputDim] float32 tensor
 * uploaded (with a one-number kernel and read-back, less that round trip alone) and read back
 * (computed and synchronised first, so only the copy is timed). Medians over the steps.
 *
 *   npm run bench:step-phases [-- --backend webgpu|wasm|cpu --batch 1024 --steps 20 --threads N]
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildBundle } from '../src/models/bundle.js';
import { referenceTrainer } from './reference-model.js';
import { STEP_PARTS, timedStep, type StepPart } from './step-timing.js';
import { fileURLToPath } from 'node:url';
import { loadExperiment } from '../src/app/load-experiment.js';
import { BatchEncoder, openSplit, planFeatures } from '../src/data/encode.js';
import { labelledBatches } from '../src/data/rank-labels.js';
import { readAhead } from '../src/base/read-ahead.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    batch: { type: 'string', default: '1024' },
    steps: { type: 'string', default: '20' },
    threads: { type: 'string' },
  },
});
const BATCH = Number(args.batch);
const STEPS = Number(args.steps);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => x.toFixed(2);

/** Seconds to upload and to read back a [rows, cols] float32 tensor, medians of `reps`. */
async function transfers(rows: number, cols: number, reps: number): Promise<{ upload: number; readBack: number; roundTrip: number }> {
  const data = new Float32Array(rows * cols).map((_, i) => (i % 97) / 97);
  const resident = tf.tensor2d(data, [rows, cols]);
  await tf.sum(resident).data(); // uploaded once, stays on the backend
  const up: number[] = [];
  const down: number[] = [];
  const trip: number[] = [];
  for (let r = 0; r < reps; r++) {
    let t = performance.now();
    const s0 = tf.sum(resident);
    await s0.data(); // a one-number kernel and read-back alone
    trip.push(performance.now() - t);
    t = performance.now();
    const x = tf.tensor2d(data, [rows, cols]);
    const s1 = tf.sum(x);
    await s1.data();
    up.push(performance.now() - t);
    const y = tf.mul(resident, 2);
    const s2 = tf.sum(y);
    await s2.data(); // y is computed and the queue is idle: what follows is the copy alone
    t = performance.now();
    await y.data();
    down.push(performance.now() - t);
    tf.dispose([s0, x, s1, y, s2]);
  }
  resident.dispose();
  const roundTrip = median(trip);
  return { upload: Math.max(0, median(up) - roundTrip) / 1000, readBack: median(down) / 1000, roundTrip: roundTrip / 1000 };
}

async function main() {
  const { backend, bundle, trainer, batches } = await referenceTrainer(BATCH, args.backend!, args.threads);
  for (let i = 0; i < 3; i++) await trainer.step(batches[i % batches.length]!); // warm-up

  const perStep: Map<StepPart, number>[] = [];
  const totals: number[] = [];
  for (let i = 0; i < STEPS; i++) {
    const acc = new Map<StepPart, number>();
    await timedStep(trainer, batches[i % batches.length]!, acc);
    perStep.push(acc);
    totals.push([...acc.values()].reduce((a, b) => a + b, 0));
  }
  const inDim = bundle.tables.inputDim;
  const step = median(totals);
  console.log(`backend: ${backend}; reference model, batch ${BATCH}, input width ${inDim}; ${STEPS} steps; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`step: median ${ms(step)} ms (${Math.round((BATCH / step) * 1000).toLocaleString('en-US')} samples/s)`);
  for (const p of STEP_PARTS) {
    const m = median(perStep.map((a) => a.get(p) ?? 0));
    console.log(`  ${p.padEnd(44)} ${ms(m).padStart(8)} ms  ${((m / step) * 100).toFixed(1).padStart(5)}%`);
  }
  const bytes = BATCH * inDim * 4;
  const tr = await transfers(BATCH, inDim, Math.max(5, Math.min(STEPS, 20)));
  const mbps = (s: number) => (s > 0 ? `${(bytes / s / 2 ** 20).toFixed(0)} MiB/s` : 'n/a');
  console.log(`transfers of the step's [${BATCH}, ${inDim}] float32 input (${(bytes / 2 ** 20).toFixed(2)} MiB each way):`);
  console.log(`  upload     ${ms(tr.upload * 1000).padStart(8)} ms  ${mbps(tr.upload)}  (${((tr.upload * 1000 / step) * 100).toFixed(1)}% of a step; n/a: within the round trip's noise)`);
  console.log(`  read-back  ${ms(tr.readBack * 1000).padStart(8)} ms  ${mbps(tr.readBack)}  (${((tr.readBack * 1000 / step) * 100).toFixed(1)}% of a step)`);
  console.log(`  one-number kernel + read-back round trip ${ms(tr.roundTrip * 1000)} ms (paid by every synchronisation)`);
  tf.dispose([...bundle.params.variables.values()]);
  await readAheadCheck(step);
}

/**
 * What the read-ahead (src/base/read-ahead.ts) hides: an epoch of the quickstart's training file
 * through the training pipeline's reader (labelledBatches), with an idle wait per read batch standing
 * in for a GPU step (the thread is free, as on webgpu while the GPU works): wall time with and without
 * reading one batch ahead. Without it the reading and the wait add up; with it they overlap.
 */
async function readAheadCheck(stepMs: number) {
  const { config } = loadExperiment(path.join(root, 'configs/quickstart.yaml'));
  config.data.read_batch_rows = 4096; // more, smaller reads than the default 65,536: a steadier figure
  const bundle = buildBundle(config);
  const waitMs = Math.max(1, Math.min(20, Math.round(stepMs / 2)));
  const epoch = async (ahead: boolean) => {
    const opened = await openSplit(config, 'train', undefined, { truth: false, features: planFeatures(bundle.plan) });
    const source = labelledBatches(config, new BatchEncoder(config, bundle.plan), opened);
    const t = performance.now();
    let batches = 0;
    for await (const _ of ahead ? readAhead(source) : source) {
      batches++;
      await new Promise((r) => setTimeout(r, waitMs));
    }
    return { seconds: (performance.now() - t) / 1000, batches };
  };
  const off: number[] = [];
  const on: number[] = [];
  let batches = 0;
  for (let r = 0; r < 3; r++) {
    off.push((await epoch(false)).seconds);
    const e = await epoch(true);
    on.push(e.seconds);
    batches = e.batches;
  }
  const idle = (batches * waitMs) / 1000;
  const read = median(off) - idle;
  console.log(`read-ahead: configs/quickstart.yaml's training file, ${batches} read batches of 4,096 rows, an idle wait of ${waitMs} ms each standing in for a step (medians of 3):`);
  console.log(`  without: ${median(off).toFixed(3)} s (waits ${idle.toFixed(3)} s + reading ${read.toFixed(3)} s); with: ${median(on).toFixed(3)} s; reading hidden: ${(((median(off) - median(on)) / Math.max(read, 1e-9)) * 100).toFixed(0)}%`);
}

await main();
