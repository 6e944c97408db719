/**
 * Times every call a piece of work makes into the native addon (src/kernels/native-api.ts), from
 * JavaScript: each function of the loaded addon is wrapped (once, for the process). Used by bench/step-kernels.ts for a training step, whose dense pass runs as
 * addon calls that tf.profile does not see.
 */
import { loadAddon } from '../src/kernels/addon.js';
import type { NativeAddon } from '../src/kernels/native-api.js';

/** The addon's functions a training or scoring step calls. */
const NATIVE_STEP_FUNCTIONS = ['sgemm', 'embeddingSgemm', 'embeddingLookup', 'embeddingUpdateLazy', 'adamStep', 'reluBackward', 'addArrays'] as const;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A call's label (function and operand shapes) and its dense FLOPs (0 for the element-wise and sparse kernels). */
function describe(name: string, a: unknown[]): { label: string; flops: number } {
  const epilogue = (bias: unknown, act: unknown, residual: unknown) =>
    `${bias ? ' +bias' : ''}${act === 1 ? ' relu' : ''}${residual ? ' +residual' : ''}`;
  if (name === 'sgemm') {
    const [ta, tb, M, N, K] = a as [boolean, boolean, number, number, number];
    return { label: `sgemm ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} ${M}x${N}x${K}${epilogue(a[9], a[10], a[11])}`, flops: 2 * M * N * K };
  }
  if (name === 'embeddingSgemm') {
    const n = a[3] as number, D = a[5] as number, N = a[7] as number;
    return { label: `embeddingSgemm (lookup in the product) ${n}x${N}x${D}${epilogue(a[10], a[11], a[12])}`, flops: 2 * n * N * D };
  }
  if (name === 'embeddingLookup') return { label: `embeddingLookup ${(a[1] as unknown[]).length} tables x ${a[3]} rows`, flops: 0 };
  if (name === 'embeddingUpdateLazy') return { label: `embeddingUpdateLazy ${(a[2] as unknown[]).length} tables x ${a[9]} rows`, flops: 0 };
  return { label: `${name} ${(a[0] as Float32Array).length} floats`, flops: 0 };
}

/** One addon call of a step, with its median time over the timed steps. */
export interface TimedCall {
  fn: string;
  label: string;
  flops: number;
  ms: number;
}

export interface NativeCallTimer {
  measure(steps: number, step: (s: number) => unknown, warmup?: number, print?: boolean): Promise<{ calls: TimedCall[]; stepMs: number }>;
}

let made: NativeCallTimer | null = null;

type AddonFunction = (...a: unknown[]) => unknown;

/**
 * Replaces each of the addon's step functions with what `wrap` makes of it (given its name and the
 * original), on the addon object itself: do it before building what calls them (some modules keep a
 * reference to a function rather than the addon). Used by the timer below and bench/step-replay.ts.
 */
export function wrapNativeStepFunctions(native: NativeAddon, wrap: (name: string, fn: AddonFunction) => AddonFunction): void {
  const table = native as unknown as Record<string, AddonFunction>;
  for (const name of NATIVE_STEP_FUNCTIONS) {
    const fn = table[name];
    if (typeof fn === 'function') table[name] = wrap(name, fn);
  }
}

/**
 * Wraps the loaded addon's functions so that their calls can be timed: call it before building what
 * calls them (some modules keep a reference to a function rather than the addon). The wrappers only
 * record inside `measure`; null when the addon is not loaded.
 */
export function nativeCallTimer(): NativeCallTimer | null {
  const native = loadAddon();
  if (native === null) return null;
  if (made !== null) return made; // wrapped once per process
  // The calls of the step being timed (each with its own time), or null outside measure.
  let calls: TimedCall[] | null = null;
  wrapNativeStepFunctions(native, (name, fn) => (...a) => {
    if (calls === null) return fn.apply(native, a);
    const t = performance.now();
    const out = fn.apply(native, a);
    calls.push({ ...describe(name, a), ms: performance.now() - t, fn: name });
    return out;
  });
  made = {
    /**
     * Runs `step(s)` for s in [0, warmup + steps) and prints the addon calls of a step in order (the
     * median over the timed steps; every step must make the same calls), the totals per function,
     * and the step's median wall time with the part spent outside the addon (unless `print` is
     * false); returns the calls and the step's median.
     */
    async measure(steps, step, warmup = 40, print = true) {
      const perCall: { label: string; flops: number; fn: string; ms: number[] }[] = [];
      const stepMs: number[] = [];
      try {
        for (let s = 0; s < warmup + steps; s++) {
          const these: TimedCall[] = [];
          calls = these;
          const t = performance.now();
          await step(s);
          const ms = performance.now() - t;
          calls = null;
          if (s < warmup) continue;
          stepMs.push(ms);
          if (perCall.length === 0) these.forEach((c) => perCall.push({ label: c.label, flops: c.flops, fn: c.fn, ms: [] }));
          if (these.length !== perCall.length || these.some((c, i) => c.label !== perCall[i]!.label)) throw new Error('native calls: the steps do not make the same calls');
          these.forEach((c, i) => perCall[i]!.ms.push(c.ms));
        }
      } finally {
        calls = null;
      }
      const timed = perCall.map((c) => ({ fn: c.fn, label: c.label, flops: c.flops, ms: median(c.ms) }));
      if (print) report(native, timed, median(stepMs), stepMs.length);
      return { calls: timed, stepMs: median(stepMs) };
    },
  };
  return made;
}

function report(native: NativeAddon, calls: TimedCall[], step: number, steps: number): void {
  console.log(`\nnative calls of a step (addon version ${native.info().version}; median ms over ${steps} steps, in step order):`);
  const byFn = new Map<string, { ms: number; calls: number; flops: number }>();
  let inAddon = 0;
  calls.forEach((c, i) => {
    inAddon += c.ms;
    const e = byFn.get(c.fn) ?? { ms: 0, calls: 0, flops: 0 };
    byFn.set(c.fn, { ms: e.ms + c.ms, calls: e.calls + 1, flops: e.flops + c.flops });
    const rate = c.flops > 0 ? `${(c.flops / c.ms / 1e6).toFixed(1).padStart(7)} GFLOP/s` : '';
    console.log(`  ${String(i).padStart(3)}  ${c.label.padEnd(58)} ${c.ms.toFixed(3).padStart(7)} ms ${rate}`);
  });
  console.log('by function (sums of the medians):');
  for (const [fn, e] of [...byFn].sort((a, b) => b[1].ms - a[1].ms)) {
    const rate = e.flops > 0 ? `, ${(e.flops / 1e9).toFixed(3)} GFLOP at ${(e.flops / e.ms / 1e6).toFixed(1)} GFLOP/s` : '';
    console.log(`  ${fn.padEnd(20)} ${e.ms.toFixed(3).padStart(7)} ms in ${e.calls} call${e.calls === 1 ? '' : 's'}${rate}`);
  }
  console.log(`step: median ${step.toFixed(2)} ms wall; in the addon ${inAddon.toFixed(2)} ms (${((100 * inAddon) / step).toFixed(1)}%); outside it (JavaScript, tfjs, the objective) ${(step - inAddon).toFixed(2)} ms`);
}
