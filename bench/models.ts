/**
 * The model benchmark suite (issue: baselines against ResFlow): every config in configs/bench/ on
 * the small synthetic preset with 3 seeds, then `resflow compare` (mean ± std, paired t-test against
 * ResFlow) and the cost columns, written to docs/benchmarks.md.
 *
 *   npm run bench:models [-- --seeds 1,2,3 --runs-dir .bench/models-runs]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

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
const started = Date.now();
for (const cfg of configs) {
  for (const seed of seeds) {
    const t0 = Date.now();
    const r = resflow(['-q', 'train', `configs/bench/${cfg}`, '--set', `runtime.seed=${seed}`, '--runs-dir', runsDir]);
    if (r.status !== 0) throw new Error(`training ${cfg} seed ${seed} failed:\n${r.stderr}`);
    console.log(`${cfg.replace('.yaml', '').padEnd(14)} seed ${seed}: ${((Date.now() - t0) / 1000).toFixed(0)}s  ${r.stdout.trim().split('\n').pop()}`);
  }
}
const expDir = path.join(runsDir, 'bench-models');
const metrics = 'auc,gauc,logloss,wrecall@16,ash@32,online@32';
const table = resflow(['compare', expDir, '--format', 'md', '--metrics', metrics, '--reference', 'model.type=resflow', '--no-plots']).stdout;

// Cost columns: parameters and dense scoring time per model (median over seeds).
const cost = new Map<string, { params: number; us: number[] }>();
for (const version of readdirSync(expDir)) {
  const info = path.join(expDir, version, 'run.json');
  if (!existsSync(info)) continue;
  const run = JSON.parse(readFileSync(info, "utf8")) as { cost: { dense_parameters: number; scoring_us_per_1000: number } };
  const type = /type: (\w+)/.exec(readFileSync(path.join(expDir, version, 'config.yaml'), 'utf8').split('\nmodel:\n')[1] ?? '')?.[1] ?? '?';
  const entry = cost.get(type) ?? { params: Number(run.cost.dense_parameters), us: [] as number[] };
  entry.us.push(run.cost.scoring_us_per_1000);
  cost.set(type, entry);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const costRows = [...cost.entries()].map(([type, c]) => `| ${type} | ${c.params.toLocaleString('en-US')} | ${median(c.us).toLocaleString('en-US')} |`);

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
