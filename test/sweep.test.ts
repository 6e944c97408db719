/**
 * `resflow sweep` (README.md, "Sweeps"): spec errors exit 2 naming the key before anything runs;
 * expansion and child names are deterministic; a real local sweep on the tiny data writes its
 * tables and leaderboard; running it again trains nothing and prints the same leaderboard; a sweep
 * killed with kill -9 mid-way completes on a re-run with every run's metrics identical; and
 * runtime.threads bounds the native embedding kernels.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../src/base/errors.js';
import { loadSweepSpec } from '../src/config/sweep.js';
import { expandSweep, spacePoints } from '../src/app/sweep/expand.js';
import { initBackend } from '../src/kernels/backend.js';
import { createSparseKernels, describeSparseKernels, nativeEmbeddingsUnavailableReason, setSparseThreads } from '../src/kernels/sparse-kernels.js';
import { cli, repoRoot, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

const dir = tempDir('resflow-sweep-');
const base = writeFile(dir, 'tiny.yaml', tinyConfigYaml());

/** A spec over the tiny config; `body` replaces the space and anything after it. */
function spec(name: string, body: string): string {
  return writeFile(dir, `${name}.yaml`, `name: ${name}\nconfigs: [tiny.yaml]\n${body}`);
}

const GOOD = `set:
  train.checkpoint_every: 5
  train.batch_size: 512
space:
  train.optimizer.lr: { grid: [0.001, 0.003] }
seeds: [1, 2]
select: { metric: auc, task: ctcvr }
resources: { threads: 1 }
parallel: 2
`;
const goodSpec = spec('good', GOOD);

function specError(file: string): string {
  const r = cli(['sweep', file, '--runs-dir', path.join(dir, 'runs-bad')]);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(existsSync(path.join(dir, 'runs-bad')), false, 'nothing is written before the spec is valid');
  return r.stderr;
}

/** The ConfigError a spec gives in-process (the same path the CLI takes; two cases below go through the CLI for the exit code). */
function specProblem(file: string): string {
  try {
    expandSweep(loadSweepSpec(file));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.message;
  }
  assert.fail(`${file}: no error`);
}

test('a bad spec exits 2 naming the file, line and key, before anything runs', () => {
  let err = specError(spec('typo', `space:\n  train.optimizer.lr: { grid: [0.001] }\nseeds: [1]\nselct: { metric: auc }\n`));
  assert.match(err, /typo\.yaml:6: selct: unknown key `selct` \(did you mean `select`\?\)/);
  err = specProblem(spec('empty', 'space: {}\n'));
  assert.match(err, /empty\.yaml:3: space: the search space is empty/);
  err = specProblem(spec('nopath', 'space:\n  train.optimiser.lr: { grid: [0.001] }\n'));
  assert.match(err, /nopath\.yaml:4: space\.train\.optimiser\.lr: `train\.optimiser\.lr` is not a key of the experiment config \(no `optimiser` there; did you mean `optimizer`\?\)/);
  err = specError(spec('badvalue', 'space:\n  train.optimizer.lr: { grid: [0.001, -1] }\n'));
  assert.match(err, /badvalue\.yaml:4: space\.train\.optimizer\.lr: value -1 is not a valid config for group `tiny`.*expected a value > 0, found -1/);
  err = specProblem(spec('evalsplit', 'space:\n  train.optimizer.lr: { grid: [0.001] }\nselect: { split: eval }\n'));
  assert.match(err, /evalsplit\.yaml:5: select\.split: the leaderboard reports the eval split/);
  err = specProblem(spec('badtask', 'space:\n  train.optimizer.lr: { grid: [0.001] }\nselect: { task: cvr }\n'));
  assert.match(err, /select\.task: group `tiny` has no task `cvr`/);
  err = specProblem(spec('twokinds', 'space:\n  model.embedding_dim: { grid: [8], int: [4, 8] }\n'));
  assert.match(err, /space\.model\.embedding_dim: expected one of `grid`, `int`, not several/);
});

test('expansion is deterministic: the same children, names and random draws every time', () => {
  const s = spec('random', `space:\n  train.optimizer.lr: { loguniform: [0.0001, 0.01] }\n  model.embedding_dim: { grid: [4, 8] }\n  train.batch_size: { int: [100, 300] }\nrandom: { n: 3, seed: 7 }\nseeds: [1, 2]\n`);
  const a = expandSweep(loadSweepSpec(s));
  const b = expandSweep(loadSweepSpec(s));
  assert.equal(a.children.length, 2 * 3 * 2);
  assert.deepEqual(a.children.map((c) => c.name), b.children.map((c) => c.name));
  assert.equal(new Set(a.children.map((c) => c.name)).size, a.children.length, 'every child has its own folder');
  for (const c of a.children) {
    assert.match(c.name, /^tiny-s[12]-[0-9a-f]{8}$/);
    assert.equal(c.config.runtime.seed, c.seed);
    assert.equal(c.config.train.optimizer.lr, c.params['train.optimizer.lr']);
    const lr = c.params['train.optimizer.lr'] as number;
    const bs = c.params['train.batch_size'] as number;
    assert.ok(lr >= 0.0001 && lr <= 0.01 && Number.isInteger(bs) && bs >= 100 && bs <= 300, JSON.stringify(c.params));
  }
  // another random seed draws other points
  const other = spacePoints(loadSweepSpec(writeFile(dir, 'random2.yaml', readFileSync(s, 'utf8').replace('seed: 7', 'seed: 8'))));
  assert.notDeepEqual(other, spacePoints(loadSweepSpec(s)));
  assert.throws(() => expandSweep(loadSweepSpec(spec('bad-model-key', 'space:\n  model.num_experts: { grid: [2] }\n'))), ConfigError);
});

/** metrics.json of every child of a sweep folder, by child name. */
function childMetrics(sweepDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of readdirSync(sweepDir)) {
    const m = path.join(sweepDir, n, 'metrics.json');
    if (existsSync(m)) out[n] = readFileSync(m, 'utf8');
  }
  return out;
}

const refRuns = path.join(dir, 'runs-ref');
const refSweep = path.join(refRuns, 'good');

test('a local sweep: 2 trials × 2 seeds in parallel, trials.csv and a leaderboard; a re-run trains nothing', () => {
  const r = cli(['sweep', goodSpec, '--runs-dir', refRuns]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /# Sweep `good`/);
  assert.match(r.stdout, /\| 1 \| tiny \| [01] \| train\.optimizer\.lr=0\.00[13] \|/);
  assert.match(r.stdout, /4 of 4 runs completed\./);
  const csv = readFileSync(path.join(refSweep, 'trials.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 5);
  assert.match(csv[0]!, /^index,trial,stage,group,parameters,seed,status,attempts,run,selection,eval$/);
  for (const line of csv.slice(1)) assert.match(line, /,completed,1,tiny-s[12]-[0-9a-f]{8},0\.\d+,0\.\d+$/);
  const metrics = childMetrics(refSweep);
  assert.equal(Object.keys(metrics).length, 4);
  for (const [name, text] of Object.entries(metrics)) {
    const splits = new Set((JSON.parse(text) as { split: string }[]).map((m) => m.split));
    assert.ok(splits.has('validation') && splits.has('eval'), `${name}: selection and report splits`);
    const info = JSON.parse(readFileSync(path.join(refSweep, name, 'run.json'), 'utf8')) as { backend: string };
    assert.match(info.backend, /embeddings: (js|native, 1 thread)$/, 'the trial\'s thread share bounds the embedding kernels');
  }
  assert.ok(existsSync(path.join(refSweep, 'sweep.yaml')) && existsSync(path.join(refSweep, 'trials.json')));

  const mtimes = Object.keys(metrics).map((n) => statSync(path.join(refSweep, n, 'run.json')).mtimeMs);
  const again = cli(['sweep', goodSpec, '--runs-dir', refRuns]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(again.stdout, r.stdout, 'the same leaderboard');
  assert.match(again.stderr, /nothing to run/);
  assert.deepEqual(Object.keys(metrics).map((n) => statSync(path.join(refSweep, n, 'run.json')).mtimeMs), mtimes, 'no run was touched');

  const status = cli(['sweep', 'status', refSweep]);
  assert.equal(status.code, 0, status.stderr);
  assert.match(status.stdout, /4 runs: completed 4/);
  const compare = cli(['compare', refSweep, '--format', 'csv']);
  assert.equal(compare.code, 0, compare.stderr);
  assert.match(compare.stdout, /train\.optimizer\.lr/);
});

test('kill -9 of the sweep mid-way, then a re-run completes it with every run\'s metrics identical', async () => {
  const runs = path.join(dir, 'runs-kill');
  const sweepDir = path.join(runs, 'good');
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/resflow.js'), 'sweep', goodSpec, '--runs-dir', runs], { stdio: 'ignore' });
  // wait until some run has a checkpoint (mid-training), then kill the sweep process only
  const t0 = Date.now();
  for (;;) {
    const names = existsSync(sweepDir) ? readdirSync(sweepDir).filter((n) => n.startsWith('tiny-')) : [];
    if (names.some((n) => existsSync(path.join(sweepDir, n, 'checkpoint', 'state.json')))) break;
    if (Date.now() - t0 > 60_000) throw new Error('no checkpoint appeared');
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  await new Promise((r) => child.on('close', r));
  const status = cli(['sweep', 'status', sweepDir]);
  assert.equal(status.code, 0, status.stderr);
  assert.doesNotMatch(status.stdout, /completed 4/, 'killed before the end');

  const r = cli(['sweep', goodSpec, '--runs-dir', runs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 of 4 runs completed\./);
  assert.deepEqual(childMetrics(sweepDir), childMetrics(refSweep), 'every run ends with the uninterrupted sweep\'s metrics');
  assert.equal(
    readFileSync(path.join(sweepDir, 'leaderboard.md'), 'utf8'),
    readFileSync(path.join(refSweep, 'leaderboard.md'), 'utf8'),
  );
});

test('runtime.threads bounds the native embedding kernels (not the addon\'s default)', { skip: createSparseKernels().name === 'js' ? `native embedding kernels not available: ${nativeEmbeddingsUnavailableReason()}` : false }, async () => {
  try {
    await initBackend('cpu', { threads: 1 });
    assert.equal(describeSparseKernels(), 'native, 1 thread');
    assert.equal((createSparseKernels() as unknown as { threads: number }).threads, 1);
    await initBackend('cpu', { threads: 3 });
    assert.equal(describeSparseKernels(), 'native, 3 threads');
    assert.equal((createSparseKernels() as unknown as { threads: number }).threads, 3);
  } finally {
    setSparseThreads(null);
  }
});
