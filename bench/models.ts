/**
 * The model benchmark suite (issue: baselines against ResFlow): every config in configs/bench/ on
 * the small synthetic preset with 3 seeds, then `resflow compare` (mean ± std, paired t-test against
 * ResFlow) and the cost columns, written to docs/benchmarks.md.
 *
 *   npm run bench:models [-- --seeds 1,2,3 --runs-dir .bench/models-runs]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/load.js';
import { setVerbosity } from '../src/base/log.js';
import { trainRun, type ModelCost } from '../src/app/train-run.js';
import { silentReporter } from '../src/app/reporter.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1,2,3' },
    'runs-dir': { type: 'string', default: path.join(root, '.bench/models-runs') },
    out: { type: 'string', default: path.join(root, 'docs/benchmarks.md') },
  },
});
const resflow = (cliArgs: string[]) => {
  const r = spawnSync(process.execPath, [path.join(root, 'bin/resflow.js'), ...cliArgs], { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0 && r.status !== 1) throw new Error(`resflow ${cliArgs.join(' ')} failed:\n${r.stderr}`);
  return r;
};

const runsDir = path.resolve(args['runs-dir']!);
const seeds = args.seeds!.split(',').map(Number);
const configs = readdirSync(path.join(root, 'configs/bench')).filter((f) => f.endsWith('.yaml')).sort((a, b) => (a === 'resflow.yaml' ? -1 : b === 'resflow.yaml' ? 1 : a.localeCompare(b)));

if (!existsSync(path.join(root, 'datasets/small/train.parquet'))) {
  console.log('generating the small preset into datasets/small ...');
  resflow(['-q', 'data', 'synth', '--preset', 'small', '--seed', '1', '--out', 'datasets/small']);
}
rmSync(runsDir, { recursive: true, force: true });
setVerbosity('quiet');
const started = Date.now();
/** Per model type: its serving cost, one entry per seed. */
const costs = new Map<string, ModelCost[]>();
for (const cfg of configs) {
  for (const seed of seeds) {
    const t0 = Date.now();
    const config = loadConfig(path.join(root, 'configs/bench', cfg), { overrides: [`runtime.seed=${seed}`] }).config;
    const { run, cost } = await trainRun({ config, runsDir }, {}, silentReporter);
    costs.set(config.model.type, [...(costs.get(config.model.type) ?? []), cost]);
    console.log(`${cfg.replace('.yaml', '').padEnd(14)} seed ${seed}: ${((Date.now() - t0) / 1000).toFixed(0)}s  ${run.dir}`);
  }
}
const expDir = path.join(runsDir, 'bench-models');
const metrics = 'auc,gauc,logloss,wrecall@16,ash@32,online@32';
const table = resflow(['compare', expDir, '--format', 'md', '--metrics', metrics, '--reference', 'model.type=resflow', '--no-plots']).stdout;

// Cost columns: parameters and dense scoring time per model (median over seeds).
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const costRows = [...costs.entries()].map(([type, c]) => `| ${type} | ${c[0]!.dense_parameters.toLocaleString('en-US')} | ${median(c.map((x) => x.scoring_us_per_1000)).toLocaleString('en-US')} |`);

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const doc = `# Model benchmarks

Made by \`npm run bench:models\` (bench/models.ts) on ${new Date().toISOString().slice(0, 10)}: every config in
\`configs/bench/\` trained on the \`small\` synthetic preset (\`resflow data synth --preset small --seed 1\`,
~800k training rows, ~80k exposures) with seeds ${seeds.join(', ')}, CTR and CTCVR tasks over exposures, up to 4
epochs with early stopping on the validation CTCVR AUC, then evaluated on the eval split's whole candidate
pools. Machine: ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version},
tfjs wasm backend; the machine is shared, so the timing column is noisy. Total time ${((Date.now() - started) / 60000).toFixed(1)} min.

Metrics: AUC, gAUC and LogLoss per task over exposures; WR@16 (purchase-weighted recall of the fused
ranking), ASH@32 (all-scenario purchase hit rate) and online@32 (simulated expected purchases per request)
over whole pools. Cells are mean ± sample std over seeds; p-values are paired t-tests against ResFlow by seed.

${table.trim()}

## Cost

Dense parameters (embedding tables are the same for every model: 16-dim tables over the same features)
and the time to score 1,000 candidates with the dense network on the wasm backend (median over seeds of
the median of 20 batches; embedding lookup excluded).

| model | dense parameters | µs per 1,000 candidates |
|---|---:|---:|
${costRows.join('\n')}
`;
mkdirSync(path.dirname(path.resolve(args.out!)), { recursive: true });
writeFileSync(path.resolve(args.out!), doc);
console.log(`wrote ${args.out}`);
