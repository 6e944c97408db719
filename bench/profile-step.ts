/**
 * Where one resflow training step of bench/train.ts's model goes (issue 7 part 4): Trainer.step's
 * own parts (embedding lookup, forward+backward, dense update, sparse update, finishing the step)
 * timed one by one, then a per-kernel table of one step from tf.profile, the parts of scoring a
 * batch, and scoring at several batch sizes.
 *
 *   npm run build && node dist/bench/profile-step.js [--backend wasm] [--steps 30] [--repeats 3]
 */
import { parseArgs } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/app/backend.js';
import { silentReporter } from '../src/app/reporter.js';
import { buildBundle, predict } from '../src/models/bundle.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/base/rng.js';
import { RunFolder } from '../src/runs/folder.js';
import { benchConfig, randomBatch } from './reference-model.js';
import { STEP_PARTS, timedStep, type StepPart } from './step-timing.js';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '30' },
    repeats: { type: 'string', default: '3' },
  },
});
const BATCH = 1024;
const STEPS = Number(args.steps);

const PARTS = STEP_PARTS;
type Part = StepPart;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const config = benchConfig(BATCH);
  const backend = await setupBackend(config, silentReporter, args.backend);
  console.log(`backend: ${backend}; batch ${BATCH}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} (shared machine: medians)`);
  const rng = new Rng(1);
  const batches = Array.from({ length: 8 }, () => randomBatch(rng, BATCH));

  // 1. Trainer.step whole, for reference, and 2. the same trainer's step timed part by part.
  const bundleB = buildBundle(config);
  const trainer = new Trainer(bundleB, RunFolder.create(mkdtempSync(path.join(tmpdir(), 'resflow-prof-')), config));
  for (let i = 0; i < 5; i++) await trainer.step(batches[i % 8]!);
  const whole: number[] = [];
  const perRepeat: Map<Part, number>[] = [];
  const copyTotals: number[] = [];
  for (let r = 0; r < Number(args.repeats); r++) {
    let t0 = performance.now();
    for (let i = 0; i < STEPS; i++) await trainer.step(batches[i % 8]!);
    whole.push((performance.now() - t0) / STEPS);
    const acc = new Map<Part, number>();
    t0 = performance.now();
    for (let i = 0; i < STEPS; i++) await timedStep(trainer, batches[i % 8]!, acc);
    copyTotals.push((performance.now() - t0) / STEPS);
    perRepeat.push(acc);
  }
  console.log(`\nTrainer.step: ${median(whole).toFixed(1)} ms/step (${Math.round((BATCH * 1000) / median(whole))} samples/s); timed by parts: ${median(copyTotals).toFixed(1)} ms/step`);
  console.log(`${'part'.padEnd(44)} ms/step   share`);
  const total = median(copyTotals);
  for (const p of PARTS) {
    const ms = median(perRepeat.map((a) => (a.get(p) ?? 0) / STEPS));
    console.log(`${p.padEnd(44)} ${ms.toFixed(2).padStart(7)}  ${((100 * ms) / total).toFixed(1).padStart(5)}%`);
  }

  // 3. Forward alone (training graph, no gradients), to split forward from backward.
  const fwd: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    for (let i = 0; i < STEPS; i++) {
      const mb = batches[i % 8]!;
      tf.tidy(() => {
        const x = tf.tensor2d(bundleB.tables.lookup(mb), [BATCH, bundleB.tables.inputDim]);
        const out = bundleB.model.forward(x, { training: true, dropoutSeed: 0 });
        out.logits.forEach((z) => z.dataSync());
      });
    }
    fwd.push((performance.now() - t0) / STEPS);
  }
  console.log(`forward only (incl. lookup, no loss): ${median(fwd).toFixed(2)} ms/step`);

  // 4. Kernels of one step (tf.profile times each kernel; wasm kernels run synchronously).
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  const byKernel = new Map<string, { ms: number; calls: number }>();
  const PROFILED = 5;
  for (let s = 0; s < PROFILED; s++) {
    const prof = await tf.profile(async () => {
      await trainer.step(batches[s % 8]!);
    });
    for (const k of prof.kernels) {
      const shapes = k.inputShapes.map((sh) => `[${sh?.join('x') ?? ''}]`).join(',');
      const key = `${k.name} ${shapes}`;
      const e = byKernel.get(key) ?? { ms: 0, calls: 0 };
      e.ms += Number(k.kernelTimeMs);
      e.calls++;
      byKernel.set(key, e);
    }
  }
  const rows = [...byKernel.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const kTotal = rows.reduce((s, [, e]) => s + e.ms, 0) / PROFILED;
  const byName = new Map<string, number>();
  for (const [key, e] of rows) byName.set(key.split(' ')[0]!, (byName.get(key.split(' ')[0]!) ?? 0) + e.ms / PROFILED);
  console.log(`\nkernels of one step (mean of ${PROFILED} profiled steps; sum ${kTotal.toFixed(1)} ms; profiling adds overhead):`);
  for (const [name, ms] of [...byName.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log(`  ${name.padEnd(22)} ${ms.toFixed(2).padStart(7)} ms`);
  console.log('top kernel calls by input shapes:');
  for (const [key, e] of rows.slice(0, 16)) console.log(`  ${(e.ms / PROFILED).toFixed(2).padStart(7)} ms  x${(e.calls / PROFILED).toFixed(0).padEnd(3)} ${key}`);

  // 5. Where a scoring batch goes (predict's parts), then scoring at several batch sizes.
  const scoreParts = { 'embedding lookup': [] as number[], 'input to tensor': [] as number[], 'forward + sigmoid (tf)': [] as number[], 'read scores': [] as number[] };
  for (let r = 0; r < 3; r++) {
    const acc = { 'embedding lookup': 0, 'input to tensor': 0, 'forward + sigmoid (tf)': 0, 'read scores': 0 };
    for (let i = 0; i < STEPS; i++) {
      let t = performance.now();
      const lap = (p: keyof typeof acc) => {
        const now = performance.now();
        acc[p] += now - t;
        t = now;
      };
      const xs = bundleB.tables.lookup(batches[i % 8]!);
      lap('embedding lookup');
      tf.tidy(() => {
        const input = tf.tensor2d(xs, [BATCH, bundleB.tables.inputDim]);
        lap('input to tensor');
        const probs = bundleB.model.forward(input, { training: false, dropoutSeed: 0 }).logits.map((z) => tf.sigmoid(z));
        lap('forward + sigmoid (tf)');
        probs.forEach((p) => p.dataSync());
        lap('read scores');
      });
    }
    for (const k of Object.keys(acc) as (keyof typeof acc)[]) scoreParts[k].push(acc[k] / STEPS);
  }
  console.log(`\nscoring batch ${BATCH}, ms per batch:`);
  for (const [k, xs] of Object.entries(scoreParts)) console.log(`  ${k.padEnd(24)} ${median(xs).toFixed(3)}`);
  for (const b of [1024, 4096, 16384]) {
    const sb = b === BATCH ? batches : Array.from({ length: 2 }, () => randomBatch(rng, b));
    await predict(bundleB, sb[0]!);
    const rates: number[] = [];
    for (let r = 0; r < 3; r++) {
      const n = Math.max(1, Math.round((STEPS * BATCH) / b));
      const t0 = performance.now();
      for (let i = 0; i < n; i++) await predict(bundleB, sb[i % sb.length]!);
      rates.push((n * b * 1000) / (performance.now() - t0));
    }
    console.log(`score batch ${String(b).padStart(5)}: ${Math.round(median(rates)).toLocaleString('en-US')} samples/s`);
  }
}

await main();
