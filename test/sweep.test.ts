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
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../src/base/errors.js';
import { loadSweepSpec, memoryMb, timeMinutes } from '../src/config/sweep.js';
import { bestTrials } from '../src/app/sweep/finalize.js';
import { expandSweep, spacePoints } from '../src/app/sweep/expand.js';
import { sweepJsonSchema } from '../src/app/sweep/sweep.js';
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
  // the final stage: the chosen trial again with the final seeds it has not run with, appended
  const fin = loadSweepSpec(spec('final', `space:\n  train.optimizer.lr: { grid: [0.001, 0.003] }\nseeds: [1, 2]\nfinal: { seeds: [2, 3, 4] }\n`));
  const search = expandSweep(fin);
  const withFinal = expandSweep(fin, [{ group: 'tiny', trial: 1 }]);
  assert.deepEqual(withFinal.children.slice(0, search.children.length).map((c) => c.name), search.children.map((c) => c.name));
  assert.deepEqual(withFinal.children.slice(search.children.length).map((c) => [c.index, c.trial, c.seed, c.stage]), [[4, 1, 3, 'final'], [5, 1, 4, 'final']]);
  assert.throws(() => expandSweep(loadSweepSpec(spec('bad-model-key', 'space:\n  model.num_experts: { grid: [2] }\n'))), ConfigError);
});

test('selection: each group\'s best trial by the mean over seeds, in the metric\'s direction; resources parse', () => {
  const row = (trial: number, group: string, seed: number, selection: number | null) =>
    ({ index: 0, trial, stage: 'search' as const, group, parameters: {}, seed, status: 'completed', attempts: 1, run: '', selection, eval: null });
  const rows = [row(0, 'a', 1, 0.6), row(0, 'a', 2, 0.7), row(1, 'a', 1, 0.66), row(1, 'a', 2, 0.66), row(2, 'b', 1, 0.5), row(3, 'b', 1, null)];
  const auc = loadSweepSpec(goodSpec);
  assert.deepEqual(bestTrials(auc, rows), [{ group: 'a', trial: 1 }, { group: 'b', trial: 2 }]);
  const logloss = { ...auc, spec: { ...auc.spec, select: { ...auc.spec.select, metric: 'logloss' as const } } };
  assert.deepEqual(bestTrials(logloss, rows), [{ group: 'a', trial: 0 }, { group: 'b', trial: 2 }]);
  assert.equal(memoryMb('4G'), 4096);
  assert.equal(memoryMb(512), 512);
  assert.equal(timeMinutes('2h'), 120);
  assert.equal(timeMinutes('1:30:00'), 90);
  assert.equal(timeMinutes('1-00:00:00'), 1440);
  assert.match(specProblem(spec('badtime', 'space:\n  train.optimizer.lr: { grid: [0.001] }\nresources: { time: soon }\n')), /resources\.time: expected minutes or a duration/);
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

test('run-trial: the array index from the environment; a failed run is retried up to `retries`, then refused', () => {
  const names = readdirSync(refSweep).filter((n) => n.startsWith('tiny-'));
  const trials = JSON.parse(readFileSync(path.join(refSweep, 'trials.json'), 'utf8')) as { index: number; run: string }[];
  const one = trials[1]!;
  const runJson = path.join(refSweep, one.run, 'run.json');
  const metrics = readFileSync(path.join(refSweep, one.run, 'metrics.json'), 'utf8');
  const env = { SLURM_ARRAY_TASK_ID: '1', SLURM_CPUS_PER_TASK: '1' };
  const skip = cli(['sweep', 'run-trial', refSweep], { env });
  assert.equal(skip.code, 0, skip.stderr);
  assert.equal(skip.stdout.trim(), path.join(refSweep, one.run));
  assert.match(skip.stderr, /skipped: /);
  assert.equal(cli(['sweep', 'run-trial', refSweep, '--index', '9']).code, 2);

  const fail = () => writeFileSync(runJson, readFileSync(runJson, 'utf8').replace('"status": "completed"', '"status": "failed"'));
  fail();
  const retry = cli(['sweep', 'run-trial', refSweep], { env });
  assert.equal(retry.code, 0, retry.stderr);
  assert.match(retry.stderr, /trained: /);
  assert.equal(readFileSync(path.join(refSweep, one.run, 'metrics.json'), 'utf8'), metrics, 'the retried run gives the same metrics');
  fail();
  const refused = cli(['sweep', 'run-trial', refSweep], { env });
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /failed 2 time\(s\), the sweep's limit \(retries: 1\)/);
  const status = cli(['sweep', 'status', refSweep]);
  assert.match(status.stdout, /4 runs: (completed 3, failed 1|failed 1, completed 3)/);
  // put the reference back for the next test
  writeFileSync(runJson, readFileSync(runJson, 'utf8').replace('"status": "failed"', '"status": "completed"'));
  assert.equal(names.length, 4);
});

test('schema/sweep.schema.json is current', () => {
  const committed = JSON.parse(readFileSync(path.join(repoRoot, 'schema/sweep.schema.json'), 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(sweepJsonSchema())), 'run `resflow sweep schema --out schema/sweep.schema.json`');
});

/** Waits for a child of the sweep to write a checkpoint after `since` (ms); returns its name. */
async function checkpointAfter(sweepDir: string, since: number): Promise<string> {
  for (;;) {
    const names = existsSync(sweepDir) ? readdirSync(sweepDir).filter((n) => n.startsWith('tiny-')) : [];
    const hit = names.find((n) => {
      const state = path.join(sweepDir, n, 'checkpoint', 'state.json');
      return existsSync(state) && statSync(state).mtimeMs >= since;
    });
    if (hit) return hit;
    if (Date.now() - since > 90_000) throw new Error('no checkpoint appeared');
    await new Promise((r) => setTimeout(r, 20));
  }
}

function startSweep(runs: string): { child: ReturnType<typeof spawn>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/resflow.js'), 'sweep', goodSpec, '--runs-dir', runs], { stdio: 'ignore' });
  return { child, exit: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
}

test('SIGINT, then kill -9 of the sweep mid-way: a re-run completes it with every run\'s metrics identical', async () => {
  const runs = path.join(dir, 'runs-kill');
  const sweepDir = path.join(runs, 'good');
  // Ctrl-C: the workers checkpoint, the sweep exits 130, the runs are `interrupted`
  let t = Date.now();
  const first = startSweep(runs);
  await checkpointAfter(sweepDir, t);
  first.child.kill('SIGINT');
  assert.equal(await first.exit, 130);
  let status = cli(['sweep', 'status', sweepDir]);
  assert.match(status.stdout, /interrupted [12]/);
  assert.doesNotMatch(status.stdout, /running|stale/);

  // kill -9 of the sweep and of the worker training a run: that run is left `running` by a dead process
  t = Date.now();
  const second = startSweep(runs);
  const name = await checkpointAfter(sweepDir, t);
  const info = JSON.parse(readFileSync(path.join(sweepDir, name, 'run.json'), 'utf8')) as { pid: number; status: string };
  second.child.kill('SIGKILL');
  if (info.status === 'running') process.kill(info.pid, 'SIGKILL');
  await second.exit;
  // The other workers see their pipe close and checkpoint on their own: wait until every process that
  // trained a run of the sweep is gone (the killed one may also have checkpointed first: a race).
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (const started = Date.now(); ; await new Promise((r) => setTimeout(r, 100))) {
    const pids = readdirSync(sweepDir)
      .filter((n) => n.startsWith('tiny-') && existsSync(path.join(sweepDir, n, 'run.json')))
      .map((n) => (JSON.parse(readFileSync(path.join(sweepDir, n, 'run.json'), 'utf8')) as { pid?: number }).pid)
      .filter((pid): pid is number => pid !== undefined && alive(pid));
    if (pids.length === 0) break;
    assert.ok(Date.now() - started < 60_000, `workers still alive: ${pids.join(', ')}`);
  }
  status = cli(['sweep', 'status', sweepDir, '--runs']);
  assert.equal(status.code, 0, status.stderr);
  assert.doesNotMatch(status.stdout, /completed 4/, 'killed before the end');
  assert.doesNotMatch(status.stdout, / running /, 'no run whose process is gone shows as running');
  if (info.status === 'running') assert.match(status.stdout, new RegExp(`(stale|interrupted) +${name}`), 'the killed run is stale (or checkpointed first)');

  const r = cli(['sweep', goodSpec, '--runs-dir', runs]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /4 of 4 runs completed\./);
  assert.deepEqual(childMetrics(sweepDir), childMetrics(refSweep), 'every run ends with the uninterrupted sweep\'s metrics');
  assert.equal(readFileSync(path.join(sweepDir, 'leaderboard.md'), 'utf8'), readFileSync(path.join(refSweep, 'leaderboard.md'), 'utf8'));
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
