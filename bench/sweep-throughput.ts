/**
 * Sweep throughput (README.md, "Sweeps"): the local launcher's worker pool against running the same
 * runs one after another, on this machine, in runs per minute. Three ways, each from a fresh runs
 * folder (nothing skipped), interleaved over the repeats so that load drifts hit them alike:
 *
 * - `pool`: `resflow sweep SPEC` (the local launcher: cores / threads workers, one thread each by default);
 * - `parallel-1`: `resflow sweep SPEC --parallel 1` (one worker at a time, given every core's thread);
 * - `train-loop`: one `resflow train BASE --set ...` per run, one after another (a shell loop), with the
 *   config's own threads.
 *
 * The sweep's runs also evaluate the validation split (the selection reads it); the train loop's do not.
 *
 *   npm run bench:sweep-throughput [-- --spec configs/sweeps/quickstart.yaml --repeats 3 --modes pool,parallel-1,train-loop]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { expandSweep } from '../src/app/sweep/expand.js';
import { shareCores } from '../src/app/sweep/sweep.js';
import { loadSweepSpec } from '../src/config/sweep.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    spec: { type: 'string', default: path.join(root, 'configs/sweeps/quickstart.yaml') },
    repeats: { type: 'string', default: '3' },
    modes: { type: 'string', default: 'pool,parallel-1,train-loop' },
  },
});
const specFile = path.resolve(args.spec!);
const repeats = Number(args.repeats);
const modes = args.modes!.split(',');
const sweep = loadSweepSpec(specFile);
const { children, groups } = expandSweep(sweep);
const bin = path.join(root, 'bin/resflow.js');

function resflow(argv: string[]): void {
  const r = spawnSync(process.execPath, [bin, '-q', ...argv], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`resflow ${argv.join(' ')} exited ${r.status}:\n${r.stderr}`);
}

/** One timed pass of a mode over every run of the spec's search stage; seconds. */
function pass(mode: string): number {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'resflow-throughput-'));
  try {
    const t0 = performance.now();
    if (mode === 'pool') resflow(['sweep', specFile, '--runs-dir', dir]);
    else if (mode === 'parallel-1') resflow(['sweep', specFile, '--runs-dir', dir, '--parallel', '1']);
    else if (mode === 'train-loop') {
      for (const c of children) {
        const file = groups.find((g) => g.name === c.group)!.file;
        const sets = Object.entries({ ...sweep.spec.set, ...c.params }).flatMap(([k, v]) => ['--set', `${k}=${JSON.stringify(v)}`]);
        resflow(['train', file, '--runs-dir', dir, ...sets, '--set', `runtime.seed=${c.seed}`]);
      }
    } else throw new Error(`unknown mode ${mode} (pool, parallel-1, train-loop)`);
    return (performance.now() - t0) / 1000;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const load = () => os.loadavg()[0]!.toFixed(2);

const cores = os.availableParallelism();
const pool = shareCores(sweep.spec, undefined, cores);
console.log(`${path.relative(root, specFile)}: ${children.length} runs; ${cores} cores (${os.cpus()[0]?.model.trim()}); pool: ${pool.parallel} workers × ${pool.threads} thread(s); Node ${process.version}`);
const times = new Map<string, number[]>(modes.map((m) => [m, []]));
const loads: string[] = [];
for (let i = 0; i < repeats; i++) {
  for (const m of modes) {
    const before = load();
    const s = pass(m);
    times.get(m)!.push(s);
    loads.push(before, load());
    console.log(`repeat ${i + 1} ${m.padEnd(10)} ${s.toFixed(1)} s  (load ${before} → ${load()})`);
  }
}
const base = times.has('train-loop') ? median(times.get('train-loop')!) : median(times.get(modes[modes.length - 1]!)!);
console.log(`\n| way | runs | median wall s (of ${repeats}) | runs / min | vs one after another |\n|---|---:|---:|---:|---:|`);
for (const [m, ts] of times) {
  const med = median(ts);
  console.log(`| ${m} | ${children.length} | ${med.toFixed(1)} | ${((children.length / med) * 60).toFixed(1)} | ${(base / med).toFixed(2)}x |`);
}
const ls = loads.map(Number);
console.log(`\nload average (1 min) at the passes' starts and ends: median ${median(ls).toFixed(2)}, min ${Math.min(...ls).toFixed(2)}, max ${Math.max(...ls).toFixed(2)}`);
