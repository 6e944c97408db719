/**
 * The native dense backward (src/kernels/native-dense-grad.ts) against tfjs's separate kernels, in
 * one process: blocks of training steps of the reference model (bench/reference-model.ts) taken
 * alternately with the kernel registered and without it (the same bits either way), CPU time per
 * step of each block and of its GEMM calls; prints the medians and their ratio. In-process alternation keeps the
 * comparison fair on a loaded machine, where separate runs differ by more than the effect.
 *
 *   npm run build && node dist/bench/dense-grad.js [--threads 1] [--blocks 20] [--steps 10]
 */
import { parseArgs } from 'node:util';
import { mkdtempSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { setupBackend } from '../src/app/backend.js';
import { silentReporter } from '../src/app/reporter.js';
import { buildBundle } from '../src/models/bundle.js';
import { Trainer } from '../src/train/trainer.js';
import { Rng } from '../src/base/rng.js';
import { RunFolder } from '../src/runs/folder.js';
import { loadAddon } from '../src/kernels/addon.js';
import { NATIVE_MATMUL, nativeDenseGradRegistered, nativeMatmulThreads, registerNativeMatmulKernels } from '../src/kernels/native-matmul.js';
import { DENSE_GRAD } from '../src/kernels/native-dense-grad.js';
import { restoreKernel } from '../src/kernels/overrides.js';
import { benchConfig, randomBatch } from './reference-model.js';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string' },
    blocks: { type: 'string', default: '20' },
    steps: { type: 'string', default: '10' },
  },
});
const BATCH = 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const config = benchConfig(BATCH);
  if (args.threads !== undefined) config.runtime.threads = Number(args.threads);
  const backend = await setupBackend(config, silentReporter, 'wasm');
  const native = loadAddon();
  if (native === null || !nativeDenseGradRegistered()) throw new Error(`the native dense backward is not available (${backend})`);
  const setKernel = (on: boolean) => {
    if (on) registerNativeMatmulKernels(native, { threads: nativeMatmulThreads() });
    else restoreKernel(DENSE_GRAD, 'wasm', NATIVE_MATMUL);
    if (nativeDenseGradRegistered() !== on) throw new Error('could not switch the kernel');
  };
  // CPU time inside the GEMM calls, to tell what of a step is not GEMM.
  let gemmCpu = 0;
  const sgemm = native.sgemm;
  native.sgemm = (...a: Parameters<typeof sgemm>) => {
    const c0 = process.cpuUsage();
    sgemm(...a);
    const c = process.cpuUsage(c0);
    gemmCpu += c.user + c.system;
  };
  const rng = new Rng(1);
  const batches = Array.from({ length: 8 }, () => randomBatch(rng, BATCH));
  const trainer = new Trainer(buildBundle(config), RunFolder.create(mkdtempSync(path.join(tmpdir(), 'resflow-dgrad-')), config));
  for (let i = 0; i < 5; i++) await trainer.step(batches[i % 8]!);
  const steps = Number(args.steps);
  const cpuMs: Record<'native' | 'tfjs', number[]> = { native: [], tfjs: [] };
  const gemmMs: Record<'native' | 'tfjs', number[]> = { native: [], tfjs: [] };
  let s = 0;
  for (let b = 0; b < Number(args.blocks); b++) {
    for (const mode of b % 2 === 0 ? (['native', 'tfjs'] as const) : (['tfjs', 'native'] as const)) {
      setKernel(mode === 'native');
      await trainer.step(batches[s++ % 8]!); // one step to settle after the switch
      const c0 = process.cpuUsage();
      gemmCpu = 0;
      for (let i = 0; i < steps; i++) await trainer.step(batches[s++ % 8]!);
      const c = process.cpuUsage(c0);
      cpuMs[mode].push((c.user + c.system) / 1000 / steps);
      gemmMs[mode].push(gemmCpu / 1000 / steps);
    }
  }
  setKernel(true);
  const [nat, ops] = [median(cpuMs.native), median(cpuMs.tfjs)];
  console.log(`backend: ${backend}; batch ${BATCH}; ${args.blocks} blocks of ${steps} steps per mode; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`training step, CPU ms (median of blocks): native dense backward ${nat.toFixed(2)}, tfjs kernels ${ops.toFixed(2)}; ${(ops / nat).toFixed(3)}x`);
  console.log(`of which in the GEMM calls (CPU ms per step, median): native dense backward ${median(gemmMs.native).toFixed(2)}, tfjs kernels ${median(gemmMs.tfjs).toFixed(2)}`);
  console.log(`train samples per CPU-second: native dense backward ${Math.round((BATCH * 1000) / nat).toLocaleString('en-US')}, tfjs kernels ${Math.round((BATCH * 1000) / ops).toLocaleString('en-US')}`);
}

await main();
