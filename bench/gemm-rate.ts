/**
 * The machine's measured GEMM rate: resflow's own native sgemm (native/README.md) on one thread, on
 * the reference model's largest matmul (batch 1024 x input 320 x 256 units, the first tower layer),
 * median of several samples timed in CPU time of the process (so other jobs on a shared machine do
 * not lower it; the pool's workers are idle at one thread). bench/compare.ts reports each side's dense FLOP rate as a fraction
 * of it. Null when the addon is not available.
 *
 *   npm run build && node dist/bench/gemm-rate.js [--threads 1] [--wall]
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { loadAddon } from '../src/kernels/addon.js';
import { Rng } from '../src/base/rng.js';

export const GEMM_SHAPE = { M: 1024, K: 320, N: 256 };

/**
 * The median rate over `samples` timed batches of calls. `clock` 'cpu' divides by the process's CPU
 * time (the per-core rate: what one thread's figures are compared with); 'wall' by elapsed time (what
 * `threads` threads of this machine deliver together, waits and all).
 */
export function measureGemmRate(threads = 1, samples = 15, clock: 'cpu' | 'wall' = 'cpu'): { gflops: number; simd: string } | null {
  const native = loadAddon();
  if (native === null) return null;
  const { M, K, N } = GEMM_SHAPE;
  const rng = new Rng(11);
  const A = Float32Array.from({ length: M * K }, () => rng.next() - 0.5);
  const B = Float32Array.from({ length: K * N }, () => rng.next() - 0.5);
  const C = new Float32Array(M * N);
  const call = () => native.sgemm(false, false, M, N, K, A, B, C, threads);
  for (let i = 0; i < 5; i++) call();
  type Mark = NodeJS.CpuUsage | number;
  const mark = (): Mark => (clock === 'cpu' ? process.cpuUsage() : performance.now());
  const seconds = (since: Mark) => {
    if (typeof since === 'number') return (performance.now() - since) / 1e3;
    const d = process.cpuUsage(since);
    return (d.user + d.system) / 1e6;
  };
  let inner = 1;
  for (;;) {
    const t = mark();
    for (let i = 0; i < inner; i++) call();
    if (seconds(t) >= 0.02 || inner >= 1 << 14) break;
    inner *= 2;
  }
  const rates: number[] = [];
  for (let s = 0; s < samples; s++) {
    const t = mark();
    for (let i = 0; i < inner; i++) call();
    rates.push((2 * M * N * K * inner) / seconds(t) / 1e9);
  }
  rates.sort((a, b) => a - b);
  return { gflops: rates[Math.floor(rates.length / 2)]!, simd: native.info().simd };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { threads: { type: 'string', default: '1' }, wall: { type: 'boolean', default: false } } });
  const r = measureGemmRate(Number(values.threads), 15, values.wall ? 'wall' : 'cpu');
  console.log(r === null ? 'native addon not available' : `sgemm ${GEMM_SHAPE.M}x${GEMM_SHAPE.K}x${GEMM_SHAPE.N}, ${values.threads} thread(s), ${r.simd}: ${r.gflops.toFixed(1)} GFLOP/s ${values.wall ? 'wall-clock' : 'per CPU-second'}`);
}
