/**
 * Where one training step of the reference model (bench/reference-model.ts) goes, kernel by kernel,
 * for finding what in a step is not GEMM (issue 17):
 * 1. every native addon call of a step (the training program's products, relu gradients and adds,
 *    the embedding lookup and update, the dense Adam steps), timed from JavaScript: per call in
 *    step order, the median ms over the steps and the GEMMs' GFLOP/s; then the totals by function
 *    and what is left of the step outside the addon (JavaScript, tfjs, the objective);
 * 2. the tfjs kernels a step still dispatches, from tf.profile: per kernel name, calls and ms per
 *    step, then by input shapes. On the training program's path (models/dense-program-train.ts)
 *    that is only the objective's few kernels; tf.profile cannot see the addon's calls.
 *
 *   npm run bench:step-kernels [-- --threads 1 --steps 200 --profile-steps 10 --backend wasm]
 */
import { parseArgs } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setupBackend } from '../src/app/backend.js';
import { silentReporter } from '../src/app/reporter.js';
import { buildBundle } from '../src/models/bundle.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/base/rng.js';
import { RunFolder } from '../src/runs/folder.js';
import { benchConfig, randomBatch } from './reference-model.js';
import { nativeCallTimer } from './native-calls.js';

const { values: args } = parseArgs({
  options: {
    backend: { type: 'string', default: 'wasm' },
    steps: { type: 'string', default: '200' },
    'profile-steps': { type: 'string', default: '10' },
    threads: { type: 'string' },
  },
});
const BATCH = 1024;
const STEPS = Number(args['profile-steps']);
const NATIVE_STEPS = Number(args.steps);
/** Kernels that are matmuls (ResflowDenseGrad: a dense layer's three backward GEMMs), and the customGrad wrapper (`forward`, which holds the kernels it runs). */
const MATMUL = new Set(['BatchMatMul', '_FusedMatMul', 'ResflowDenseGrad']);

async function main() {
  const config = benchConfig(BATCH);
  if (args.threads !== undefined) config.runtime.threads = Number(args.threads);
  // First: the backend's set-up picks the sparse kernels, which keep references to the addon's functions.
  const timer = nativeCallTimer();
  const backend = await setupBackend(config, silentReporter, args.backend);
  console.log(`backend: ${backend}; batch ${BATCH}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const rng = new Rng(1);
  const batches = Array.from({ length: 8 }, () => randomBatch(rng, BATCH));
  const trainer = new Trainer(buildBundle(config), RunFolder.create(mkdtempSync(path.join(tmpdir(), 'resflow-kern-')), config));
  for (let i = 0; i < 5; i++) await trainer.step(batches[i % 8]!);
  if (timer === null) console.log('native calls: the addon is not loaded (wasm kernels and JavaScript loops only)');
  else await timer.measure(NATIVE_STEPS, (s) => trainer.step(batches[s % 8]!));
  tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
  const byName = new Map<string, { ms: number; calls: number }>();
  const byShape = new Map<string, { ms: number; calls: number }>();
  const add = (m: typeof byName, key: string, ms: number) => {
    const e = m.get(key) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls++;
    m.set(key, e);
  };
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let s = 0; s < STEPS; s++) {
    const prof = await tf.profile(async () => {
      await trainer.step(batches[s % 8]!);
    });
    for (const k of prof.kernels) {
      const ms = Number(k.kernelTimeMs);
      add(byName, k.name, ms);
      if (!MATMUL.has(k.name) && k.name !== 'forward') add(byShape, `${k.name} ${k.inputShapes.map((sh) => `[${sh?.join('x') ?? ''}]`).join(',')}`, ms);
    }
  }
  const cpu = process.cpuUsage(c0);
  console.log(`\ntfjs kernels (tf.profile over ${STEPS} steps): ${((performance.now() - t0) / STEPS).toFixed(1)} ms wall, ${((cpu.user + cpu.system) / 1000 / STEPS).toFixed(1)} ms CPU per step (with profiling)`);
  const per = (e: { ms: number; calls: number }) => `${(e.ms / STEPS).toFixed(3).padStart(7)} ms  x${String(e.calls / STEPS).padEnd(4)}`;
  const sorted = (m: typeof byName) => [...m.entries()].sort((a, b) => b[1].ms - a[1].ms);
  let mm = 0;
  let rest = 0;
  console.log('\nkernel                  ms/step  calls/step');
  for (const [name, e] of sorted(byName)) {
    if (MATMUL.has(name)) mm += e.ms;
    else if (name !== 'forward') rest += e.ms;
    console.log(`  ${name.padEnd(20)} ${per(e)}${name === 'forward' ? ' (customGrad wrapper; includes its kernels)' : ''}`);
  }
  console.log(`matmul kernels ${(mm / STEPS).toFixed(2)} ms/step; all other kernels ${(rest / STEPS).toFixed(2)} ms/step`);
  console.log('\nnon-matmul kernels by input shapes:');
  for (const [key, e] of sorted(byShape)) console.log(`  ${per(e)} ${key}`);
}

await main();
