/**
 * The model benchmark (README.md, "Sweeps"; docs/benchmarks.md): runs the sweep spec
 * configs/sweeps/models.yaml through the project's own sweep use case (src/app/sweep, the local
 * launcher), then writes docs/benchmarks.md from the sweep folder (bench/models-doc.ts): each
 * group's best trial (picked on validation) on the eval split, mean ± std over seeds, paired tests
 * against ResFlow with the compare code's Holm correction and marks, the oracle beside every number,
 * the cost columns and the tuning budget.
 *
 * The sweep folder is kept (.bench/models-sweep/): running the benchmark again trains nothing that is
 * done, so adding a group to the spec trains only that group's runs.
 *
 *   npm run bench:models [-- --spec configs/sweeps/models.yaml --runs-dir .bench --parallel N --out docs/benchmarks.md --preset small]
 *   npm run bench:models -- --spec configs/sweeps/models-medium.yaml --preset medium --out docs/benchmarks-medium.md
 *   npm run bench:models -- --doc-only     # the document from the sweep folder as it is, no training
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runSweep } from '../src/app/sweep/sweep.js';
import { loadSweepSpec } from '../src/config/sweep.js';
import { consoleReporter } from '../src/cli/reporter.js';
import { benchmarksDoc, type Invocation } from './models-doc.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    spec: { type: 'string', default: path.join(root, 'configs/sweeps/models.yaml') },
    'runs-dir': { type: 'string', default: path.join(root, '.bench') },
    parallel: { type: 'string' },
    out: { type: 'string', default: path.join(root, 'docs/benchmarks.md') },
    'doc-only': { type: 'boolean', default: false },
    /** The synthetic preset the spec's configs read (made into datasets/<preset> when missing). */
    preset: { type: 'string', default: 'small' },
  },
});

const specFile = path.resolve(args.spec!);
const runsDir = path.resolve(args['runs-dir']!);
const sweepDir = path.join(runsDir, loadSweepSpec(specFile).spec.name);
/**
 * Every invocation that trained something: when, how many runs, the load (beside the sweep folder,
 * not in it). They describe that folder's runs: a list left beside a folder that was removed is
 * dropped, or the page would add the old runs' time to the new ones'.
 */
const invocationsFile = `${sweepDir}.invocations.json`;
let invocations: Invocation[] = [];
if (existsSync(invocationsFile)) {
  if (existsSync(sweepDir)) invocations = JSON.parse(readFileSync(invocationsFile, 'utf8')) as Invocation[];
  else console.log(`${path.relative(root, invocationsFile)}: its sweep folder is gone; starting a new list`);
}

const preset = args.preset!;
if (!args['doc-only']) {
  if (!existsSync(path.join(root, `datasets/${preset}/train.parquet`))) {
    console.log(`generating the ${preset} preset into datasets/${preset} ...`);
    const r = spawnSync(process.execPath, [path.join(root, 'bin/resflow.js'), '-q', 'data', 'synth', '--preset', preset, '--seed', '1', '--out', `datasets/${preset}`], { cwd: root, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('resflow data synth failed');
  }
  const started = new Date();
  const loadStart = os.loadavg();
  const result = await runSweep(
    specFile,
    {
      runsDir,
      launcher: 'local',
      dryRun: false,
      parallel: args.parallel === undefined ? undefined : Number(args.parallel),
      resflow: [process.execPath, path.join(root, 'bin/resflow.js')],
    },
    consoleReporter,
  );
  const ended = new Date();
  const failed = result.final?.rows.filter((r) => r.status === 'failed').length ?? 0;
  console.log(`sweep: ${result.ran} run(s) started, ${failed} failed, ${((ended.getTime() - started.getTime()) / 60000).toFixed(1)} min; ${result.dir}`);
  if (result.ran > 0) {
    const launch = JSON.parse(readFileSync(path.join(sweepDir, 'launch.json'), 'utf8')) as { parallel: number; threads: number };
    invocations.push({
      started: started.toISOString(),
      ended: ended.toISOString(),
      ran: result.ran,
      parallel: launch.parallel,
      threads: launch.threads,
      load_start: loadStart.map((x) => Number(x.toFixed(2))),
      load_end: os.loadavg().map((x) => Number(x.toFixed(2))),
    });
    mkdirSync(runsDir, { recursive: true });
    writeFileSync(invocationsFile, JSON.stringify(invocations, null, 2) + '\n');
  }
}

const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
const doc = benchmarksDoc({ sweepDir, specFile: path.relative(root, specFile), invocations, commit: git || 'unknown', preset: args.preset! });
mkdirSync(path.dirname(path.resolve(args.out!)), { recursive: true });
writeFileSync(path.resolve(args.out!), doc);
console.log(`wrote ${args.out}`);
