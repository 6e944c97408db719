/**
 * How fast a training step of the reference model (bench/reference-model.ts) could be with no
 * JavaScript at all between its native calls: the ceiling of running a whole step inside the addon
 * (issue 17; docs/performance-log.md, the entry of 2026-12-04 21:47 UTC).
 *
 * Each round trains `--steps` real steps and records the addon calls of the last 8 (function and
 * arguments), then replays those calls back to back for `--steps` steps, on copies of the buffers
 * they read and write (the step's own buffers are freed wasm heap by then; a view shared by two calls
 * stays shared in the copies). The replay does the same kernel work on the same shapes and the same
 * embedding rows; what it leaves out is everything between the calls: tfjs, the objective, the
 * trainer's JavaScript and the V8 work they bring. Prints wall and process CPU per step for both
 * (medians over the rounds), the main thread's CPU, and the share on other threads (V8's compiler
 * and collector; during the replay some of it is the copies' garbage, so the main thread's figure
 * is the cleaner one there).
 *
 *   npm run bench:step-replay [-- --threads 1 --warmup 300 --rounds 10 --steps 40]
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { loadAddon } from '../src/kernels/addon.js';
import { wrapNativeStepFunctions } from './native-calls.js';
import { copiedCalls, type RecordedCall } from './call-replay.js';
import { referenceTrainer } from './reference-model.js';
import { othersShare, threadCpu } from './thread-cpu.js';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    warmup: { type: 'string', default: '300' },
    rounds: { type: 'string', default: '10' },
    steps: { type: 'string', default: '40' },
    backend: { type: 'string', default: 'wasm' },
  },
});
const STEPS = Number(args.steps);
const RECORDED = 8;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function main() {
  const native = loadAddon();
  if (native === null) {
    console.log('step-replay: the native addon is not loaded; nothing to replay');
    return;
  }
  // Wrapped before the trainer is built: the backend's set-up keeps references to these functions.
  let recording: RecordedCall[] | null = null;
  wrapNativeStepFunctions(native, (_, fn) => (...a) => {
    recording?.push([fn, a]);
    return fn.apply(native, a);
  });
  const { backend, trainer, batches } = await referenceTrainer(1024, args.backend!, args.threads);
  console.log(`backend: ${backend}; batch 1024; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  for (let s = 0; s < Number(args.warmup); s++) await trainer.step(batches[s % batches.length]!);
  const perStep = () => ({ wall: [] as number[], cpu: [] as number[], main: [] as number[], others: [] as number[] });
  const real = perStep();
  const replay = perStep();
  const measure = async (into: typeof real, run: () => Promise<void> | void) => {
    const th = threadCpu();
    const t = performance.now();
    const c = cpuMs();
    await run();
    into.cpu.push((cpuMs() - c) / STEPS);
    into.wall.push((performance.now() - t) / STEPS);
    const after = threadCpu();
    const share = othersShare(th, after);
    if (share !== null) into.others.push(share);
    if (th !== null && after !== null) into.main.push((after.main - th.main) / 1e6 / STEPS);
  };
  for (let r = 0; r < Number(args.rounds); r++) {
    const recorded: RecordedCall[][] = [];
    await measure(real, async () => {
      for (let s = 0; s < STEPS; s++) {
        recording = s >= STEPS - RECORDED ? [] : null;
        await trainer.step(batches[s % batches.length]!);
        if (recording !== null) recorded.push(recording);
        recording = null;
      }
    });
    const calls = copiedCalls(recorded);
    await measure(replay, () => {
      for (let s = 0; s < STEPS; s++) for (const [fn, a] of calls[s % calls.length]!) fn.apply(native, a);
    });
  }
  const line = (label: string, m: typeof real) =>
    console.log(`${label.padEnd(34)} ${median(m.wall).toFixed(2).padStart(6)} ms wall, ${median(m.cpu).toFixed(2).padStart(6)} ms CPU a step (samples per CPU-second ${Math.round(1024 / (median(m.cpu) / 1000)).toLocaleString('en-US')})${m.main.length ? `; main thread ${median(m.main).toFixed(2)} ms, other threads ${(100 * median(m.others)).toFixed(1)}% of the CPU` : ''}`);
  console.log(`${args.rounds} rounds of ${STEPS} steps after ${args.warmup}, medians:`);
  line('real steps', real);
  line("the addon's calls alone, replayed", replay);
  const less = (a: number[], b: number[]) => `${(median(a) - median(b)).toFixed(2)} ms (${((100 * (median(a) - median(b))) / median(a)).toFixed(1)}%)`;
  console.log(`left out by the replay, a step: ${less(real.cpu, replay.cpu)} of process CPU${real.main.length ? `, ${less(real.main, replay.main)} of the main thread's` : ''}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main();
