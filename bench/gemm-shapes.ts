/**
 * GFLOP per CPU-second of the native sgemm on each GEMM of the reference model's training step
 * (bench/reference-model.ts: batch 1024, input 320, towers 256 -> 128, one-wide logits), forward
 * and backward, each call repeated on the same operands; and the step's GEMMs in one sequence, as a
 * step runs them, for their total. Compare with bench/gemm-rate.ts (the 1024x320x256 forward shape).
 *
 *   npm run build && node dist/bench/gemm-shapes.js [--threads 1]
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { loadAddon } from '../src/kernels/addon.js';
import { Rng } from '../src/base/rng.js';

const { values: args } = parseArgs({ options: { threads: { type: 'string', default: '1' }, samples: { type: 'string', default: '9' } } });
const native = loadAddon();
if (native === null) throw new Error('native addon not available');
const threads = Number(args.threads);
const B = 1024;
const rng = new Rng(3);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() - 0.5);
const cpu = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Call { what: string; ta: boolean; tb: boolean; M: number; N: number; K: number; A: Float32Array; B: Float32Array; C: Float32Array; bias?: Float32Array; act?: number }
const calls: Call[] = [];
const ones = new Float32Array(B).fill(1);
for (const [i, o] of [[320, 256], [256, 128], [128, 1]] as const) {
  const x = rand(B * i);
  const W = rand(i * o);
  const dz = rand(B * o);
  calls.push({ what: `fwd  x·W ${B}x${i}x${o} +bias,relu`, ta: false, tb: false, M: B, N: o, K: i, A: x, B: W, C: new Float32Array(B * o), bias: rand(o), act: o > 1 ? 1 : 0 });
  calls.push({ what: `dx   dz·Wᵀ`, ta: false, tb: true, M: B, N: i, K: o, A: dz, B: W, C: new Float32Array(B * i) });
  if (o === 1) calls.push({ what: `dW   dzᵀ·x`, ta: true, tb: false, M: 1, N: i, K: B, A: dz, B: x, C: new Float32Array(i) });
  else calls.push({ what: `dW   xᵀ·dz`, ta: true, tb: false, M: i, N: o, K: B, A: x, B: dz, C: new Float32Array(i * o) });
  calls.push({ what: `db   ones·dz`, ta: false, tb: false, M: 1, N: o, K: B, A: ones, B: dz, C: new Float32Array(o) });
}
const run = (c: Call) => native.sgemm(c.ta, c.tb, c.M, c.N, c.K, c.A, c.B, c.C, threads, c.bias ?? null, c.act ?? 0);
console.log(`native sgemm, ${threads} thread(s), ${native.info().simd}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
let stepFlops = 0;
for (const c of calls) {
  for (let i = 0; i < 3; i++) run(c);
  const flops = 2 * c.M * c.N * c.K;
  stepFlops += flops * 2; // two towers
  const inner = Math.max(1, Math.round(4e8 / flops));
  const rates: number[] = [];
  for (let s = 0; s < Number(args.samples); s++) {
    const t = cpu();
    for (let i = 0; i < inner; i++) run(c);
    rates.push((flops * inner) / (cpu() - t) / 1e9);
  }
  console.log(`  ${c.what.padEnd(34)} ${median(rates).toFixed(1).padStart(6)} GFLOP/s  (${((flops / median(rates)) * 1e-6).toFixed(3)} ms)`);
}
const seq: number[] = [];
for (let s = 0; s < Number(args.samples); s++) {
  const t = cpu();
  for (let r = 0; r < 10; r++) for (const c of [...calls, ...calls]) run(c);
  seq.push((stepFlops * 10) / (cpu() - t) / 1e9);
}
console.log(`a step's GEMMs in sequence (two towers): ${median(seq).toFixed(1)} GFLOP/s, ${((stepFlops / median(seq)) * 1e-6).toFixed(2)} ms per step`);
