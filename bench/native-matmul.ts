/**
 * The optional native matmul (src/kernels/native-matmul.ts) against the wasm kernels:
 *  1. GFLOP/s per matmul shape of the benchmark model's training step (batch 1024, input 320,
 *     towers 256 -> 128, a logit per task): tfjs's own wasm kernel, resflow's wasm kernel (the
 *     transposing wrapper of wasm-kernels.ts), the native kernel through tf.matMul, and the native
 *     sgemm called directly on Float32Arrays with 1 and 2 threads;
 *  2. end to end: training and scoring samples/s of bench/train.ts's model, with the wasm kernels
 *     and with the native ones (2 threads and 1 thread), runs interleaved, medians.
 * The machine may be shared and noisy: every number is a median of several runs.
 *
 *   npm run build && node dist/bench/native-matmul.js [--runs 15] [--steps 30] [--repeats 5]
 */
import { parseArgs } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { registerWasmKernels } from '../src/kernels/wasm-kernels.js';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';
import { nativeMatmulStats, registerNativeMatmulKernels, unregisterNativeMatmulKernels } from '../src/kernels/native-matmul.js';
import { buildBundle, predict } from '../src/models/bundle.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/base/rng.js';
import { RunFolder } from '../src/runs/folder.js';
import { FIELDS, VOCAB, benchConfig, randomBatch } from './reference-model.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    steps: { type: 'string', default: '30' },
    repeats: { type: 'string', default: '5' },
  },
});
const RUNS = Number(args.runs);
const STEPS = Number(args.steps);
const REPEATS = Number(args.repeats);
const BATCH = 1024;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// ---------------------------------------------------------------------------------------------
// The model of bench/train.ts (which cannot be imported: it runs on import).
// ---------------------------------------------------------------------------------------------


// ---------------------------------------------------------------------------------------------
// 1. Kernels
// ---------------------------------------------------------------------------------------------

interface Shape {
  label: string;
  a: [number, number];
  b: [number, number];
  ta: boolean;
  tb: boolean;
}

/**
 * The matmuls of one training step of the benchmark model, as resflow's layers call them
 * (src/models/layers.ts: the weight gradient is taken as (dyT.x)T when the layer is narrower than
 * its input), plus the xT.dy form the wasm-gap bench and the brief name.
 */
const SHAPES: Shape[] = [
  { label: 'fwd  x.W1', a: [1024, 320], b: [320, 256], ta: false, tb: false },
  { label: 'fwd  h1.W2', a: [1024, 256], b: [256, 128], ta: false, tb: false },
  { label: 'fwd  h2.w (logit)', a: [1024, 128], b: [128, 1], ta: false, tb: false },
  { label: 'bwd  dy1.W1T (input grad)', a: [1024, 256], b: [320, 256], ta: false, tb: true },
  { label: 'bwd  dy2.W2T', a: [1024, 128], b: [256, 128], ta: false, tb: true },
  { label: 'bwd  dy1T.x (W1 grad)', a: [1024, 256], b: [1024, 320], ta: true, tb: false },
  { label: 'bwd  dy2T.h1 (W2 grad)', a: [1024, 128], b: [1024, 256], ta: true, tb: false },
  { label: 'bwd  xT.dy1 (W1 grad, alt.)', a: [1024, 320], b: [1024, 256], ta: true, tb: false },
  { label: 'bwd  h1T.dy2 (W2 grad, alt.)', a: [1024, 256], b: [1024, 128], ta: true, tb: false },
  { label: 'bwd  dzT.h2 (logit W grad)', a: [1024, 1], b: [1024, 128], ta: true, tb: false },
  { label: 'bwd  ones.dy1 (bias grad)', a: [1, 1024], b: [1024, 256], ta: false, tb: false },
  { label: 'bwd  ones.dy2 (bias grad)', a: [1, 1024], b: [1024, 128], ta: false, tb: false },
];

function flops(s: Shape): number {
  const M = s.ta ? s.a[1] : s.a[0];
  const K = s.ta ? s.a[0] : s.a[1];
  const N = s.tb ? s.b[0] : s.b[1];
  return 2 * M * N * K;
}

/** Seconds per call of f, median of RUNS samples of enough calls to take >= 20 ms. */
function timeIt(f: () => void): number {
  f();
  f();
  let inner = 1;
  for (;;) {
    const t = performance.now();
    for (let i = 0; i < inner; i++) f();
    if (performance.now() - t >= 20 || inner >= 1 << 16) break;
    inner *= 2;
  }
  const samples: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = performance.now();
    for (let i = 0; i < inner; i++) f();
    samples.push((performance.now() - t) / 1000 / inner);
  }
  return median(samples);
}

function kernelTable(native: ReturnType<typeof loadAddon>): void {
  const rng = new Rng(5);
  const cols = ['tfjs wasm', 'resflow wasm', 'native tf.matMul', 'sgemm 1 thr', 'sgemm 2 thr'];
  console.log(`\n1. GFLOP/s per matmul (median of ${RUNS}; batch ${BATCH})`);
  console.log(`  ${'shape'.padEnd(28)} ${'a x b'.padEnd(26)} ${cols.map((c) => c.padStart(16)).join('')}`);
  for (const s of SHAPES) {
    const av = Float32Array.from({ length: s.a[0] * s.a[1] }, () => rng.next() - 0.5);
    const bv = Float32Array.from({ length: s.b[0] * s.b[1] }, () => rng.next() - 0.5);
    const a = tf.tensor2d(av, s.a);
    const b = tf.tensor2d(bv, s.b);
    const viaTf = () => tf.matMul(a, b, s.ta, s.tb).dispose();
    const rates: (number | null)[] = [];
    const calls0 = nativeMatmulStats().calls;
    unregisterNativeMatmulKernels();
    registerWasmKernels({ transposedMatMul: false });
    rates.push(flops(s) / timeIt(viaTf) / 1e9);
    registerWasmKernels();
    rates.push(flops(s) / timeIt(viaTf) / 1e9);
    if (nativeMatmulStats().calls !== calls0) throw new Error('native kernel used in a wasm column');
    if (native !== null) {
      registerNativeMatmulKernels(native, { threads: 2 });
      const before = nativeMatmulStats().calls;
      rates.push(flops(s) / timeIt(viaTf) / 1e9);
      if (nativeMatmulStats().calls === before) throw new Error('native kernel not used');
      const M = s.ta ? s.a[1] : s.a[0];
      const K = s.ta ? s.a[0] : s.a[1];
      const N = s.tb ? s.b[0] : s.b[1];
      const C = new Float32Array(M * N);
      for (const threads of [1, 2]) rates.push(flops(s) / timeIt(() => native.sgemm(s.ta, s.tb, M, N, K, av, bv, C, threads)) / 1e9);
    } else {
      rates.push(null, null, null);
    }
    unregisterNativeMatmulKernels();
    tf.dispose([a, b]);
    const shape = `[${s.a}]${s.ta ? 'T' : ''} x [${s.b}]${s.tb ? 'T' : ''}`;
    console.log(`  ${s.label.padEnd(28)} ${shape.padEnd(26)} ${rates.map((r) => (r === null ? '-' : r.toFixed(1)).padStart(16)).join('')}`);
  }
}

// ---------------------------------------------------------------------------------------------
// 2. End to end
// ---------------------------------------------------------------------------------------------

type Mode = 'wasm' | 'native 2 threads' | 'native 1 thread';

/**
 * Order matters: unregister the native kernels before registerWasmKernels(), which would
 * otherwise wrap whatever matmul kernel is registered, the native one included.
 */
function setMode(mode: Mode, native: ReturnType<typeof loadAddon>): void {
  unregisterNativeMatmulKernels();
  registerWasmKernels();
  if (mode !== 'wasm') registerNativeMatmulKernels(native!, { threads: mode === 'native 2 threads' ? 2 : 1 });
}

async function endToEnd(native: ReturnType<typeof loadAddon>): Promise<void> {
  const config = benchConfig(BATCH);
  const bundle = buildBundle(config);
  const trainer = new Trainer(bundle, RunFolder.create(mkdtempSync(path.join(tmpdir(), 'resflow-bench-native-')), config));
  const rng = new Rng(1);
  const batches = Array.from({ length: 8 }, () => randomBatch(rng, BATCH));
  const modes: Mode[] = native !== null ? ['wasm', 'native 2 threads', 'native 1 thread'] : ['wasm'];
  const train = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  const score = new Map<Mode, number[]>(modes.map((m) => [m, []]));
  for (const mode of modes) {
    setMode(mode, native);
    for (let i = 0; i < 3; i++) await trainer.step(batches[i % 8]!); // warm-up
    await predict(bundle, batches[0]!);
  }
  // Interleaved: each repeat runs every mode, so slow phases of a shared machine hit all alike.
  for (let r = 0; r < REPEATS; r++) {
    for (const mode of modes) {
      setMode(mode, native);
      let t0 = performance.now();
      const calls0 = nativeMatmulStats().calls;
      for (let i = 0; i < STEPS; i++) await trainer.step(batches[i % 8]!);
      if ((nativeMatmulStats().calls > calls0) !== (mode !== 'wasm')) throw new Error(`mode ${mode}: native kernel use is wrong`);
      train.get(mode)!.push((STEPS * BATCH) / ((performance.now() - t0) / 1000));
      t0 = performance.now();
      for (let i = 0; i < STEPS; i++) await predict(bundle, batches[i % 8]!);
      score.get(mode)!.push((STEPS * BATCH) / ((performance.now() - t0) / 1000));
    }
  }
  const fmt = (x: number) => Math.round(x).toLocaleString('en-US');
  console.log(`\n2. End to end: resflow, ${FIELDS} fields x vocab ${VOCAB} x dim 16, towers 256-128, 2 tasks, batch ${BATCH}, Adam`);
  console.log(`   (${STEPS} steps per run, ${REPEATS} interleaved runs per mode; medians, then all runs)`);
  const base = { train: median(train.get('wasm')!), score: median(score.get('wasm')!) };
  for (const mode of modes) {
    const t = median(train.get(mode)!);
    const s = median(score.get(mode)!);
    console.log(
      `  ${mode.padEnd(18)} train ${fmt(t).padStart(9)} samples/s (${(t / base.train).toFixed(2)}x)   score ${fmt(s).padStart(10)} samples/s (${(s / base.score).toFixed(2)}x)`,
    );
    console.log(`  ${''.padEnd(18)}   train runs: ${train.get(mode)!.map(fmt).join(', ')}; score runs: ${score.get(mode)!.map(fmt).join(', ')}`);
  }
  unregisterNativeMatmulKernels();
}

async function main() {
  const info = await initBackend('wasm');
  const native = loadAddon();
  console.log(`backend: ${info.detail}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')} (shared machine: medians)`);
  if (native === null) console.log(`native matmul: not available (${addonUnavailableReason()}); only the wasm columns are measured`);
  else {
    const ni = native.info();
    console.log(`native matmul: ${ni.simd}, ${ni.mr}x${ni.nr} micro-kernel, kc ${ni.kc}, ${ni.compiler}, ${native.path}`);
  }
  kernelTable(native);
  await endToEnd(native);
  console.log(`\nload average at the end: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main();
