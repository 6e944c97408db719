/**
 * Sweeps through a real Slurm cluster (README.md, "Sweeps on Slurm"; start one with
 * scripts/slurm-local.sh): a sweep with a final stage submitted with `--launcher slurm` ends with the
 * same trials.csv and leaderboard as the local launcher's, and a trial sent SIGTERM mid-training
 * (what a preemption or the time-limit warning does) checkpoints, is requeued, resumes and ends with
 * the same metrics, model and history as an uninterrupted trial. Without a cluster these skip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { cli, repoRoot, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';
import { clusterSkip } from './helpers/slurm.js';

const needCluster = { skip: clusterSkip() };
const dir = tempDir('resflow-slurm-sweep-');
writeFile(dir, 'exp.yaml', tinyConfigYaml());

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs: number, everyMs = 200): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Runs the CLI in the background (the local reference sweep runs while Slurm's jobs do). */
function cliAsync(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/resflow.js'), ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

/** Submits a sweep with --launcher slurm; returns the first job array's id. */
function submit(spec: string, runsDir: string): string {
  const r = cli(['sweep', spec, '--launcher', 'slurm', '--runs-dir', runsDir]);
  assert.equal(r.code, 0, r.stderr);
  const m = /submitted job array (\d+)/.exec(r.stderr);
  assert.ok(m, `no job array in: ${r.stderr}`);
  return m[1]!;
}

/** Waits until no job of the sweep (resflow-NAME, resflow-NAME-finalize) is queued or running. */
function sweepJobsGone(name: string, timeoutMs: number): Promise<true> {
  return waitFor(`the jobs of sweep ${name} to end`, () => {
    const q = spawnSync('squeue', ['-h', '-o', '%j'], { encoding: 'utf8' });
    return q.status === 0 && !q.stdout.split('\n').some((j) => j === `resflow-${name}` || j === `resflow-${name}-finalize`);
  }, timeoutMs, 500);
}

const runFolders = (sweepDir: string) => readdirSync(sweepDir).filter((n) => existsSync(path.join(sweepDir, n, 'run.json'))).sort();
const runStatus = (run: string) => (JSON.parse(readFileSync(path.join(run, 'run.json'), 'utf8')) as { status: string }).status;

test('a sweep through sbatch: every run, trials.csv and the leaderboard as with the local launcher', needCluster, async () => {
  const spec = writeFile(dir, 'e2e.yaml', `name: slurm-e2e
configs: [exp.yaml]
set: { train.epochs: 1 }
space:
  train.optimizer.lr: { grid: [0.001, 0.003] }
seeds: [1, 2]
select: { metric: auc, task: ctcvr, split: validation }
final: { seeds: [3] }
resources: { threads: 1, memory: 1G, time: 10 }
parallel: 2
`);
  const slurmDir = path.join(dir, 'runs-slurm', 'slurm-e2e');
  submit(spec, path.join(dir, 'runs-slurm'));
  // the reference: the same spec on this machine
  const local = cliAsync(['sweep', spec, '--runs-dir', path.join(dir, 'runs-local')]);
  await sweepJobsGone('slurm-e2e', 150_000);
  const done = await local;
  assert.equal(done.code, 0, done.stderr);
  const localDir = path.join(dir, 'runs-local', 'slurm-e2e');

  const runs = runFolders(slurmDir);
  assert.equal(runs.length, 5, `2 trials × 2 seeds and the best trial's final seed: ${runs.join(', ')}`);
  assert.deepEqual(runs, runFolders(localDir));
  for (const r of runs) assert.equal(runStatus(path.join(slurmDir, r)), 'completed', r);
  const csv = readFileSync(path.join(slurmDir, 'trials.csv'), 'utf8');
  const rows = csv.trim().split('\n').slice(1);
  assert.equal(rows.length, 5);
  assert.equal(rows.filter((l) => l.includes(',final,')).length, 1);
  assert.ok(rows.every((l) => l.includes(',completed,')), csv);
  assert.equal(csv, readFileSync(path.join(localDir, 'trials.csv'), 'utf8'));
  assert.equal(readFileSync(path.join(slurmDir, 'leaderboard.md'), 'utf8'), readFileSync(path.join(localDir, 'leaderboard.md'), 'utf8'));
  // one log per run index; the first finalize job launched the final stage through Slurm
  assert.deepEqual(readdirSync(path.join(slurmDir, 'slurm/logs')).sort(), ['finalize.log', 'trial-0.log', 'trial-1.log', 'trial-2.log', 'trial-3.log', 'trial-4.log']);
  assert.match(readFileSync(path.join(slurmDir, 'slurm/logs/finalize.log'), 'utf8'), /launching the final stage: 1 run\(s\) through slurm[\s\S]*submitted job array/);
});

test('preemption: SIGTERM to a running array task, requeued, resumes to the uninterrupted result', needCluster, async () => {
  const spec = writeFile(dir, 'preempt.yaml', `name: slurm-preempt
configs: [exp.yaml]
set: { train.epochs: 1, train.batch_size: 64, train.checkpoint_every: 20 }
space:
  train.optimizer.lr: { grid: [0.002] }
seeds: [1]
resources: { threads: 1, time: 10 }
`);
  const sweepDir = path.join(dir, 'runs-preempt', 'slurm-preempt');
  const arrayId = submit(spec, path.join(dir, 'runs-preempt'));
  const run = await waitFor('the run folder', () => runFolders(sweepDir).map((n) => path.join(sweepDir, n))[0], 60_000);
  // mid-training: a periodic checkpoint is written and the run goes on
  await waitFor('a periodic checkpoint', () => {
    try {
      return (JSON.parse(readFileSync(path.join(run, 'checkpoint/state.json'), 'utf8')) as { globalStep: number }).globalStep >= 20;
    } catch {
      return false;
    }
  }, 60_000, 20);
  assert.equal(spawnSync('scancel', ['--signal=TERM', `${arrayId}_0`]).status, 0);
  const local = cliAsync(['sweep', spec, '--runs-dir', path.join(dir, 'runs-preempt-local')]);
  await sweepJobsGone('slurm-preempt', 120_000);
  const log = readFileSync(path.join(sweepDir, 'slurm/logs/trial-0.log'), 'utf8');
  assert.match(log, /interrupted \(exit 143\): requeueing/);
  assert.match(log, /run 2,[\s\S]*resumed: /);
  assert.equal(runStatus(run), 'completed');

  const done = await local;
  assert.equal(done.code, 0, done.stderr);
  const reference = path.join(dir, 'runs-preempt-local', 'slurm-preempt', path.basename(run));
  for (const f of ['metrics.json', 'model/weights.bin', 'model/embeddings.bin', 'model/model.json']) {
    assert.ok(readFileSync(path.join(run, f)).equals(readFileSync(path.join(reference, f))), `${f} differs from the uninterrupted run`);
  }
  const strip = (csv: string) => csv.split('\n').map((l) => l.split(',').filter((_, i) => i !== 3).join(',')).join('\n'); // drop seconds
  assert.equal(strip(readFileSync(path.join(run, 'history.csv'), 'utf8')), strip(readFileSync(path.join(reference, 'history.csv'), 'utf8')));
});
