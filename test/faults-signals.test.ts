/**
 * Fault injection for training (issue 12, faults): kill -9 with periodic checkpoints then --resume,
 * SIGTERM in the last epoch, a double SIGINT, stale runs (compare and --resume), leftovers of killed
 * writes, and a full disk (a simulated ENOSPC, RESFLOW_TEST_WRITE_FAULT in runs/atomic.ts). Every
 * resumed run must end byte-identical to an uninterrupted one (README.md, "Reliability").
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { RunFolder } from '../src/runs/folder.js';
import { cleanLeftovers } from '../src/runs/leftovers.js';
import { effectiveStatus, runState, STALE_AFTER_MS } from '../src/runs/status.js';
import { loadConfig } from '../src/config/load.js';
import { cli, repoRoot, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

const dir = tempDir('resflow-faults-');
const cfgFile = writeFile(dir, 'exp.yaml', tinyConfigYaml());
/** Two epochs of 42 steps each on the tiny funnel. */
const BASE = ['--set', 'train.epochs=2'];

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Starts `resflow train` in the background. */
function startTrain(args: string[], env: Record<string, string> = {}): { child: ChildProcess; exit: Promise<Exit>; stderr: () => string } {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/resflow.js'), 'train', ...args], { cwd: repoRoot, env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const exit = new Promise<Exit>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr })));
  return { child, exit, stderr: () => stderr };
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The one run folder under runsDir/test. */
function runDirIn(runsDir: string): string | undefined {
  const exp = path.join(runsDir, 'test');
  if (!existsSync(exp)) return undefined;
  const runs = readdirSync(exp).filter((n) => /^\d{8}-\d{6}-/.test(n));
  return runs.length === 1 ? path.join(exp, runs[0]!) : undefined;
}

/** The checkpoint's global step, or -1 (none, or being replaced). */
function checkpointStep(run: string): number {
  try {
    return (JSON.parse(readFileSync(path.join(run, 'checkpoint/state.json'), 'utf8')) as { globalStep: number }).globalStep;
  } catch {
    return -1;
  }
}

const status = (run: string) => (JSON.parse(readFileSync(path.join(run, 'run.json'), 'utf8')) as { status: string }).status;

/** Every `*.tmp-PID` / `*.old-PID` entry under a folder. */
function leftovers(root: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(root, { withFileTypes: true })) {
    const full = path.join(root, e.name);
    if (/\.(tmp|old)-\d+$/.test(e.name)) out.push(full);
    if (e.isDirectory()) out.push(...leftovers(full));
  }
  return out;
}

function assertSameResult(run: string, reference: string): void {
  for (const f of ['metrics.json', 'model/weights.bin', 'model/embeddings.bin', 'model/model.json']) {
    assert.ok(readFileSync(path.join(run, f)).equals(readFileSync(path.join(reference, f))), `${f} differs from the uninterrupted run`);
  }
  const strip = (csv: string) => csv.split('\n').map((l) => l.split(',').filter((_, i) => i !== 3).join(',')).join('\n'); // drop seconds
  assert.equal(strip(readFileSync(path.join(run, 'history.csv'), 'utf8')), strip(readFileSync(path.join(reference, 'history.csv'), 'utf8')));
}

function resumeToEnd(run: string): void {
  const r = cli(['-q', 'train', '--resume', run]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(status(run), 'completed');
  assert.ok(!existsSync(path.join(run, 'checkpoint')), 'the checkpoint is removed once the run completes');
  assert.deepEqual(leftovers(run), []);
}

/** A pid that no process has any more. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

let reference: string;
test('reference: an uninterrupted run without periodic checkpoints', () => {
  const r = cli(['-q', 'train', cfgFile, '--runs-dir', path.join(dir, 'ref'), ...BASE, '--set', 'train.checkpoint_every=null']);
  assert.equal(r.code, 0, r.stderr);
  reference = r.stdout.trim().split('\n').pop()!;
});

test('kill -9 twice (epoch 1, then epoch 2 of the resumed run) with checkpoint_every=5: compare shows stale; --resume ends byte-identical', async () => {
  const runsDir = path.join(dir, 'kill9');
  const first = startTrain([cfgFile, '--runs-dir', runsDir, ...BASE, '--set', 'train.checkpoint_every=5']);
  const run = await waitFor('a first periodic checkpoint', () => {
    const r = runDirIn(runsDir);
    return r && checkpointStep(r) >= 10 && r;
  });
  first.child.kill('SIGKILL');
  assert.equal((await first.exit).signal, 'SIGKILL');
  assert.equal(status(run), 'running', 'a killed process cannot record anything');
  assert.equal(checkpointStep(run) % 5, 0);

  const cmp = cli(['compare', run, '--format', 'json', '--out', path.join(dir, 'cmp')]);
  assert.equal(cmp.code, 0, cmp.stderr);
  assert.equal((JSON.parse(cmp.stdout) as { rows: { status: string }[] }).rows[0]!.status, 'stale');
  assert.equal(runState(run).resumable, true);

  const second = startTrain(['--resume', run]);
  await waitFor('a checkpoint in epoch 2', () => checkpointStep(run) >= 50);
  second.child.kill('SIGKILL');
  assert.equal((await second.exit).signal, 'SIGKILL');
  assert.match(second.stderr(), /resuming a stale run: its process \(pid \d+ on .+\) is gone/);

  // what a writer killed mid-save leaves behind is cleaned up by the next resume
  const dead = deadPid();
  mkdirSync(path.join(run, `checkpoint.tmp-${dead}`));
  writeFileSync(path.join(run, `checkpoint.tmp-${dead}`, 'weights.bin'), 'partial');
  writeFileSync(path.join(run, `run.json.tmp-${dead}`), '{"stat');
  resumeToEnd(run);
  assertSameResult(run, reference);
});

test('SIGTERM in the last epoch: exit 143, interrupted with a checkpoint; --resume ends byte-identical', async () => {
  const runsDir = path.join(dir, 'term');
  const t = startTrain([cfgFile, '--runs-dir', runsDir, ...BASE, '--set', 'train.checkpoint_every=5']);
  const run = await waitFor('a checkpoint in epoch 2', () => {
    const r = runDirIn(runsDir);
    return r && checkpointStep(r) >= 45 && r;
  });
  t.child.kill('SIGTERM');
  const exit = await t.exit;
  assert.equal(exit.code, 143, exit.stderr);
  assert.match(exit.stderr, /resflow: SIGTERM: interrupted at epoch 2, step \d+.*; checkpoint saved\. Resume with: resflow train --resume /);
  assert.doesNotMatch(exit.stderr, /\n\s+at /);
  assert.equal(status(run), 'interrupted');
  const state = JSON.parse(readFileSync(path.join(run, 'checkpoint/state.json'), 'utf8')) as { epoch: number; globalStep: number };
  assert.equal(state.epoch, 1, 'stopped inside the second (last) epoch');
  const info = JSON.parse(readFileSync(path.join(run, 'run.json'), 'utf8')) as { progress: { global_step: number } };
  assert.equal(info.progress.global_step, state.globalStep, 'the checkpoint is the one written on SIGTERM');
  resumeToEnd(run);
  assertSameResult(run, reference);
});

test('two SIGINTs: the checkpoint is still written, exit 130; --resume ends byte-identical', async () => {
  const runsDir = path.join(dir, 'int2');
  const t = startTrain([cfgFile, '--runs-dir', runsDir, ...BASE, '--set', 'train.checkpoint_every=1000']);
  await waitFor('the run folder', () => /run folder: /.test(t.stderr()));
  await new Promise((r) => setTimeout(r, 300));
  t.child.kill('SIGINT');
  // The second as soon as the first is acknowledged: on the tiny model the step, the checkpoint and
  // the exit take only a few milliseconds, so it lands while they run, after the process is gone, or,
  // rarely, as Node exits with its default handlers back, ending the process by that SIGINT.
  await waitFor('the first SIGINT acknowledged', () => /SIGINT: finishing the current step/.test(t.stderr()));
  t.child.kill('SIGINT');
  const exit = await t.exit;
  assert.match(exit.stderr, /resflow: SIGINT: interrupted .*checkpoint saved/);
  // whatever the second SIGINT met, the exit says SIGINT: 130, or death by SIGINT once all is saved
  assert.ok(exit.code === 130 || exit.signal === 'SIGINT', `exit code ${exit.code}, signal ${exit.signal}\n${exit.stderr}`);
  const run = runDirIn(runsDir)!;
  assert.equal(status(run), 'interrupted');
  assert.ok(checkpointStep(run) >= 0, 'checkpoint/state.json written');
  resumeToEnd(run);
  assertSameResult(run, reference);
});

test('StopSignals with real signals: the first asks for a checkpoint, the second waits for it, the third exits at once with the first one\'s code', () => {
  // The path the training test above cannot time on a fast machine: signals sent to a process that is
  // only waiting, so each one is handled before the next is sent.
  const script = `
    const { StopSignals } = await import(${JSON.stringify(path.join(repoRoot, 'dist/src/cli/run.js'))});
    const signals = new StopSignals();
    const tick = () => new Promise((r) => setTimeout(r, 50));
    process.kill(process.pid, 'SIGINT'); await tick();
    process.stdout.write('after 1: ' + signals.first + '\\n');
    process.kill(process.pid, 'SIGTERM'); await tick();
    process.stdout.write('after 2: still running\\n');
    process.kill(process.pid, 'SIGTERM'); await tick();
    process.stdout.write('after 3: still running\\n');
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 130, `the first signal's code (SIGINT), not the third's: ${r.stderr}`);
  assert.equal(r.stdout, 'after 1: SIGINT\nafter 2: still running\n');
  assert.match(r.stderr, /SIGINT: finishing the current step and saving a checkpoint/);
  assert.match(r.stderr, /SIGTERM: still saving the checkpoint; one more stops at once without it/);
  assert.match(r.stderr, /resflow: SIGTERM three times: stopped at once; no run folder was made/);
});

test('--resume: a stale run without a checkpoint is exit 2 and stays as it was; a live run is refused', () => {
  const config = loadConfig(cfgFile).config;
  const run = RunFolder.create(path.join(dir, 'stale'), config);
  run.update({ pid: deadPid() });
  assert.equal(effectiveStatus(run.info), 'stale');
  const before = readFileSync(path.join(run.dir, 'run.json'), 'utf8');
  const r = cli(['train', '--resume', run.dir]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, new RegExp(`${run.dir}: the run is stale and has no checkpoint to resume from .*train it again`));
  assert.equal(readFileSync(path.join(run.dir, 'run.json'), 'utf8'), before, 'run.json unchanged (not flipped to failed)');

  run.update({ pid: process.pid }); // this test's own process: alive
  const live = cli(['train', '--resume', run.dir]);
  assert.equal(live.code, 2, live.stderr);
  assert.match(live.stderr, /is still running \(pid \d+ on .+\); stop it before resuming/);

  // another host: judged by the heartbeat alone
  const other = { ...run.info, host: 'elsewhere', pid: 1 };
  assert.equal(effectiveStatus(other), 'running');
  assert.equal(effectiveStatus(other, { now: Date.parse(other.heartbeat!) + STALE_AFTER_MS + 1000 }), 'stale');
  assert.equal(effectiveStatus({ ...other, status: 'interrupted' }, { host: hostname(), alive: () => false }), 'interrupted');
});

test('leftovers: a model folder moved away by an unfinished swap is put back; temporary entries of dead writers go', () => {
  const run = tempDir();
  const dead = deadPid();
  mkdirSync(path.join(run, `model.old-${dead}`));
  writeFileSync(path.join(run, `model.old-${dead}`, 'weights.bin'), 'old');
  mkdirSync(path.join(run, `model.tmp-${dead}`));
  mkdirSync(path.join(run, `checkpoint.tmp-${dead}.tmp-${dead}`));
  mkdirSync(path.join(run, `checkpoint.tmp-${dead}.old-${dead}`));
  writeFileSync(path.join(run, `history.csv.tmp-${process.pid}`), 'mine'); // this process's own: kept
  cleanLeftovers(run);
  assert.deepEqual(readdirSync(run).sort(), [`history.csv.tmp-${process.pid}`, 'model']);
  assert.equal(readFileSync(path.join(run, 'model/weights.bin'), 'utf8'), 'old');
});

test('disk full (simulated ENOSPC): exit 1 naming the file; no temp entries; no half-made run folder; files written before kept', () => {
  // while making the run folder: nothing of it is left
  const made = path.join(dir, 'full1');
  const a = cli(['train', cfgFile, '--runs-dir', made], { env: { RESFLOW_TEST_WRITE_FAULT: 'ENOSPC:config.yaml' } });
  assert.equal(a.code, 1, a.stderr);
  assert.match(a.stderr, /resflow: error: \S+\/test\/\d{8}-\d{6}-\w+\/config\.yaml: cannot write: no space left on the device \(the disk is full\) \(ENOSPC\)/);
  assert.deepEqual(existsSync(path.join(made, 'test')) ? readdirSync(path.join(made, 'test')) : [], []);

  // the second model save (epoch 2): the run fails, epoch 1's model and history stay whole
  const runs = path.join(dir, 'full2');
  const b = cli(['train', cfgFile, '--runs-dir', runs, ...BASE, '--set', 'train.checkpoint_every=null'], { env: { RESFLOW_TEST_WRITE_FAULT: 'ENOSPC:weights.bin:2' } });
  assert.equal(b.code, 1, b.stderr);
  const run = runDirIn(runs)!;
  assert.match(b.stderr, new RegExp(`resflow: error: ${run}/model/weights.bin: cannot write: no space left on the device \\(the disk is full\\)`));
  assert.doesNotMatch(b.stderr, /\n\s+at /);
  assert.deepEqual(leftovers(run), []);
  const info = JSON.parse(readFileSync(path.join(run, 'run.json'), 'utf8')) as { status: string; error: string };
  assert.equal(info.status, 'failed');
  assert.match(info.error, /model\/weights\.bin: cannot write: no space left/);
  assert.equal(readFileSync(path.join(run, 'history.csv'), 'utf8').trim().split('\n').length, 3, 'both epochs in history.csv (written before the model)');
  assert.equal(statSync(path.join(run, 'model/weights.bin')).size, statSync(path.join(reference, 'model/weights.bin')).size, "epoch 1's model intact");

  // a periodic checkpoint (a model folder inside the checkpoint folder): same, and no checkpoint half-made
  const runs3 = path.join(dir, 'full3');
  const c = cli(['train', cfgFile, '--runs-dir', runs3, ...BASE, '--set', 'train.checkpoint_every=5'], { env: { RESFLOW_TEST_WRITE_FAULT: 'EDQUOT:checkpoint' } });
  assert.equal(c.code, 1, c.stderr);
  const run3 = runDirIn(runs3)!;
  assert.match(c.stderr, new RegExp(`${run3}/checkpoint/weights.bin: cannot write: the disk quota is exceeded`));
  assert.deepEqual(leftovers(run3), []);
  assert.ok(!existsSync(path.join(run3, 'checkpoint')));
  assert.equal(status(run3), 'failed');
});

test('a stop during the evaluation after training: interrupted with a finished checkpoint; --resume only evaluates, same metrics', async () => {
  const { trainRun } = await import('../src/app/train-run.js');
  const { silentReporter } = await import('../src/app/reporter.js');
  const { Interrupted } = await import('../src/base/errors.js');
  const config = loadConfig(cfgFile, { overrides: ['train.epochs=2', 'train.checkpoint_every=null'] }).config;
  let stop = false;
  let started: RunFolder | undefined;
  const reporter = { ...silentReporter, progress: (o: { label: string }) => ((stop ||= o.label.startsWith('scoring eval')), silentReporter.progress(o as never)) };
  await assert.rejects(
    trainRun({ config, runsDir: path.join(dir, 'evalstop') }, { backend: 'wasm', stopRequested: () => stop, onRunStarted: (r) => (started = r) }, reporter),
    (err: unknown) => err instanceof Interrupted && /interrupted during the evaluation after training/.test(err.message),
  );
  const run = started!.dir;
  assert.equal(status(run), 'interrupted');
  assert.ok(!existsSync(path.join(run, 'metrics.json')));
  assert.equal((JSON.parse(readFileSync(path.join(run, 'checkpoint/state.json'), 'utf8')) as { finished?: boolean }).finished, true);
  resumeToEnd(run);
  assertSameResult(run, reference);
});

test('train.checkpoint_every: a value that is neither steps nor a duration is exit 2 naming the key, before a run folder exists', () => {
  const runs = path.join(dir, 'badevery');
  const r = cli(['train', cfgFile, '--runs-dir', runs, '--set', 'train.checkpoint_every=10x']);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /train\.checkpoint_every: expected a number of steps, a duration such as 90s, 10m or 1h, or null; found "10x"/);
  assert.ok(!existsSync(runs));
});
