/**
 * Fusing the towers' first layers (issue 17, item 2): T towers each computing act(x·W_t + b_t) from
 * the same input x [B, K], as T native sgemm calls of B×K×N, against one call of B×K×(T·N) over the
 * concatenated weights [W_1|…|W_T], alone and followed by the split copy into T [B, N] buffers that
 * the towers' next layers would read. Resflow's own GEMM (native/README.md) on one thread, rates in
 * GFLOP per CPU-second of the process (process.cpuUsage), the variants interleaved, medians.
 *
 *   npm run build && node dist/bench/fused-towers.js [--samples 9]
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { loadAddon } from '../src/kernels/addon.js';
import { Rng } from '../src/base/rng.js';

const { values: args } = parseArgs({ options: { samples: { type: 'string', default: '9' } } });
const SAMPLES = Number(args.samples);
const native = loadAddon();
if (native === null) {
  console.log('native addon not available');
  process.exit(0);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuSeconds = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
};

/** Calls per sample so that a sample takes >= 50 ms of CPU. */
function calibrate(call: () => void): number {
  for (let i = 0; i < 3; i++) call();
  let inner = 1;
  for (;;) {
    const t = process.cpuUsage();
    for (let i = 0; i < inner; i++) call();
    if (cpuSeconds(t) >= 0.05 || inner >= 1 << 14) return inner;
    inner *= 2;
  }
}

function shape(B: number, K: number, N: number, T: number): void {
  const rng = new Rng(3);
  const rand = (n: number) => Float32Array.from({ length: n }, () => rng.next() - 0.5);
  const x = rand(B * K);
  const W = Array.from({ length: T }, () => rand(K * N));
  const b = Array.from({ length: T }, () => rand(N));
  const outs = Array.from({ length: T }, () => new Float32Array(B * N));
  // [W_1|…|W_T]: row k of the fused weights is row k of each W_t side by side.
  const Wf = new Float32Array(K * T * N);
  const bf = new Float32Array(T * N);
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < K; k++) Wf.set(W[t]!.subarray(k * N, (k + 1) * N), k * T * N + t * N);
    bf.set(b[t]!, t * N);
  }
  const fused = new Float32Array(B * T * N);
  const separate = () => {
    for (let t = 0; t < T; t++) native!.sgemm(false, false, B, N, K, x, W[t]!, outs[t]!, 1, b[t]!, 1);
  };
  const fusedOnly = () => native!.sgemm(false, false, B, T * N, K, x, Wf, fused, 1, bf, 1);
  const fusedSplit = () => {
    fusedOnly();
    for (let t = 0; t < T; t++) {
      const o = outs[t]!;
      for (let r = 0; r < B; r++) o.set(fused.subarray(r * T * N + t * N, r * T * N + (t + 1) * N), r * N);
    }
  };
  // The copy as a plain loop (no subarray per row), the cheapest split JavaScript offers.
  const fusedLoop = () => {
    fusedOnly();
    const TN = T * N;
    for (let t = 0; t < T; t++) {
      const o = outs[t]!;
      for (let r = 0; r < B; r++) {
        const src = r * TN + t * N, dst = r * N;
        for (let c = 0; c < N; c++) o[dst + c] = fused[src + c]!;
      }
    }
  };
  // Same bits: the fused columns of tower t are tower t's output.
  separate();
  fusedSplit();
  const check = outs.map((o) => o.slice());
  separate();
  const same = outs.every((o, t) => o.every((v, i) => Object.is(v, check[t]![i])));
  const variants = { separate, fused: fusedOnly, 'fused+split': fusedSplit, 'fused+loop': fusedLoop };
  const inner = Object.fromEntries(Object.entries(variants).map(([k, f]) => [k, calibrate(f)]));
  const rates: Record<string, number[]> = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  const flop = 2 * B * K * N * T;
  for (let s = 0; s < SAMPLES; s++) {
    for (const [k, f] of Object.entries(variants)) {
      const t0 = process.cpuUsage();
      for (let i = 0; i < inner[k]!; i++) f();
      rates[k]!.push((flop * inner[k]!) / cpuSeconds(t0) / 1e9);
    }
  }
  const m = Object.fromEntries(Object.entries(rates).map(([k, r]) => [k, median(r)]));
  const sep = m.separate!;
  console.log(
    `B=${B} K=${K} N=${N} T=${T}  separate ${sep.toFixed(1)}  fused ${m.fused!.toFixed(1)} (${((m.fused! / sep - 1) * 100).toFixed(1)}%)` +
      `  fused+split ${m['fused+split']!.toFixed(1)} (${((m['fused+split']! / sep - 1) * 100).toFixed(1)}%) ` +
      `  fused+loop ${m['fused+loop']!.toFixed(1)} (${((m['fused+loop']! / sep - 1) * 100).toFixed(1)}%) GFLOP/CPU-s` +
      `  bits ${same ? 'identical' : 'DIFFER'}`,
  );
}

console.log(`native ${native.info().simd}, 1 thread, ${SAMPLES} interleaved samples, medians; loadavg ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
shape(1024, 320, 256, 2);
shape(1024, 320, 256, 3);
shape(1024, 320, 128, 2);
// The small models' first layers (configs/models: 10 features × dim 16 in, 64 units).
shape(1024, 160, 64, 2);
shape(1024, 160, 64, 3);
shape(256, 320, 256, 2);
console.log(`loadavg after ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
