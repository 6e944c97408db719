/**
 * Damaged run folders (issue 12, "loading what was written"): every file of a trained run is
 * damaged in turn, on a copy of one run trained once; `eval` (and `train --resume` where the
 * checkpoint is damaged) must exit 2 naming the file and what differs, and leave the folder exactly
 * as it found it. The README promises: nothing damaged is loaded silently.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../src/config/load.js';
import { DataError, Interrupted } from '../src/base/errors.js';
import { trainRun } from '../src/app/train-run.js';
import { silentReporter } from '../src/app/reporter.js';
import { readCheckpointState, removeCheckpoint, verifyCheckpoint, writeCheckpointState, type CheckpointState } from '../src/runs/checkpoint.js';
import { RunFolder } from '../src/runs/folder.js';
import { fileRecord, writeRecorded } from '../src/runs/integrity.js';
import { readRunInfo } from '../src/runs/run-info.js';
import { repoRoot, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

/** The CLI, run asynchronously so that the cases can run side by side. */
function cliAsync(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bin/resflow.js'), ...args], { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stderr }));
  });
}

/** Every file under `dir` by relative path, with the SHA-256 of its bytes. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(dir, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
    }
  };
  walk(dir);
  return out;
}

const bytes = (n: number) => `${n.toLocaleString('en-US')} bytes`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Trains two epochs of the tiny config and stops in the second: model/ (epoch 1) and checkpoint/ both exist. */
async function trainedRun(): Promise<string> {
  const dir = tempDir('resflow-faults-');
  const config = loadConfig(writeFile(dir, 'exp.yaml', tinyConfigYaml()), { overrides: ['train.epochs=2'] }).config;
  let steps = 0;
  let run: RunFolder | undefined;
  await assert.rejects(
    trainRun({ config, runsDir: dir }, { backend: 'wasm', stopRequested: () => ++steps >= 50, onRunStarted: (r) => (run = r) }, silentReporter),
    Interrupted,
  );
  return run!.dir;
}

interface Case {
  name: string;
  /** Damages the copy; returns what the message must match beyond the file's name. */
  damage: (run: string) => RegExp;
  /** The file the message must name, relative to the run folder. */
  file: string;
  command: 'eval' | 'resume';
  /** Strip run.json's `files`: a run written before sizes and hashes were recorded (shape checks only). */
  legacy?: boolean;
  /**
   * Only run.json may change: without records, a checkpoint's shapes are checked when it is loaded,
   * after `--resume` has marked the run running (it ends `failed`); model/ and checkpoint/ stay.
   */
  runJsonMayChange?: boolean;
}

function recorded(run: string, file: string): { size: number; sha256: string } {
  return (JSON.parse(readFileSync(path.join(run, 'run.json'), 'utf8')) as { files: Record<string, { size: number; sha256: string }> }).files[file]!;
}

/** Expects the size message of integrity.ts: found vs recorded. */
function sizeChange(file: string, change: (f: string, size: number) => number): (run: string) => RegExp {
  return (run) => {
    const f = path.join(run, file);
    const size = statSync(f).size;
    const now = change(f, size);
    return new RegExp(`: ${bytes(now)}, .*run\\.json records ${bytes(size)} \\(truncated or extended`);
  };
}

const truncateBy = (cut: (size: number) => number) => (f: string, size: number) => (truncateSync(f, cut(size)), cut(size));

const cases: Case[] = [
  { name: 'embeddings.bin truncated', file: 'model/embeddings.bin', command: 'eval', damage: sizeChange('model/embeddings.bin', truncateBy((s) => s - 100)) },
  {
    name: 'bytes appended to embeddings.bin',
    file: 'model/embeddings.bin',
    command: 'eval',
    damage: sizeChange('model/embeddings.bin', (f, s) => (appendFileSync(f, Buffer.alloc(8)), s + 8)),
  },
  { name: 'weights.bin truncated', file: 'model/weights.bin', command: 'eval', damage: sizeChange('model/weights.bin', truncateBy((s) => s >> 1)) },
  { name: 'weights.bin empty', file: 'model/weights.bin', command: 'eval', damage: sizeChange('model/weights.bin', truncateBy(() => 0)) },
  { name: 'model.json cut', file: 'model/model.json', command: 'eval', damage: sizeChange('model/model.json', truncateBy((s) => s >> 1)) },
  {
    name: 'a byte of weights.bin flipped, size kept',
    file: 'model/weights.bin',
    command: 'eval',
    damage: (run) => {
      const f = path.join(run, 'model/weights.bin');
      const b = readFileSync(f);
      b[100] = b[100]! ^ 0xff;
      writeFileSync(f, b);
      return new RegExp(`SHA-256 [0-9a-f]{12}… differs from ${recorded(run, 'model/weights.bin').sha256.slice(0, 12)}… recorded in .*run\\.json`);
    },
  },
  {
    name: 'unknown key added to config.yaml',
    file: 'config.yaml:3',
    command: 'eval',
    damage: (run) => (writeFileSync(path.join(run, 'config.yaml'), readFileSync(path.join(run, 'config.yaml'), 'utf8').replace(/^name: (.*)$/m, 'name: $1\nlearning_rate: 0.1')), /unknown key `learning_rate`/),
  },
  {
    name: 'misspelt key in config.yaml (did you mean)',
    file: 'config.yaml:',
    command: 'eval',
    damage: (run) => (writeFileSync(path.join(run, 'config.yaml'), readFileSync(path.join(run, 'config.yaml'), 'utf8').replace('  batch_size:', '  bach_size:')), /train\.bach_size: unknown key `bach_size` \(did you mean `batch_size`\?\)/),
  },
  {
    name: 'wrong type in config.yaml',
    file: 'config.yaml:',
    command: 'eval',
    damage: (run) => (writeFileSync(path.join(run, 'config.yaml'), readFileSync(path.join(run, 'config.yaml'), 'utf8').replace(/  epochs: \d+/, '  epochs: many')), /train\.epochs: expected an integer, found the string "many"/),
  },
  { name: 'config.yaml not valid YAML', file: 'config.yaml:', command: 'eval', damage: (run) => (appendFileSync(path.join(run, 'config.yaml'), 'tasks: [oops\n'), /invalid YAML/) },
  { name: 'run.json null', file: 'run.json', command: 'eval', damage: (run) => (writeFileSync(path.join(run, 'run.json'), 'null\n'), /expected an object with experiment, version, status/) },
  { name: 'run.json missing', file: 'run.json', command: 'eval', damage: (run) => (rmSync(path.join(run, 'run.json')), /not a run folder/) },
  {
    name: 'run.json without its status',
    file: 'run.json',
    command: 'eval',
    damage: (run) => {
      const info = JSON.parse(readFileSync(path.join(run, 'run.json'), 'utf8')) as Record<string, unknown>;
      delete info['status'];
      writeFileSync(path.join(run, 'run.json'), JSON.stringify(info));
      return /`status` should be one of running, completed, failed, interrupted, found nothing/;
    },
  },
  { name: 'checkpoint state.json cut', file: 'checkpoint/state.json', command: 'resume', damage: sizeChange('checkpoint/state.json', truncateBy((s) => s >> 1)) },
  { name: 'checkpoint embeddings.bin truncated', file: 'checkpoint/embeddings.bin', command: 'resume', damage: sizeChange('checkpoint/embeddings.bin', truncateBy((s) => s - 4)) },
  { name: 'checkpoint optimizer.bin truncated', file: 'checkpoint/optimizer.bin', command: 'resume', damage: sizeChange('checkpoint/optimizer.bin', truncateBy((s) => s >> 1)) },
  {
    name: 'a byte of checkpoint optimizer.bin flipped',
    file: 'checkpoint/optimizer.bin',
    command: 'resume',
    damage: (run) => {
      const f = path.join(run, 'checkpoint/optimizer.bin');
      const b = readFileSync(f);
      b[b.length - 1] = b[b.length - 1]! ^ 0x01;
      writeFileSync(f, b);
      return /SHA-256 [0-9a-f]{12}… differs from [0-9a-f]{12}… recorded in .*run\.json \(same size/;
    },
  },
  // Runs written before sizes and hashes were recorded: the loader's shape checks still catch damage.
  {
    name: 'old run: embeddings.bin truncated',
    file: 'model/embeddings.bin',
    command: 'eval',
    legacy: true,
    damage: (run) => {
      const f = path.join(run, 'model/embeddings.bin');
      const values = statSync(f).size / 4;
      truncateSync(f, (values - 25) * 4);
      return new RegExp(`holds ${(values - 25).toLocaleString('en-US')} float32 values, model\\.json's embedding tables \\(rows x dims x slots\\) need ${values.toLocaleString('en-US')}`);
    },
  },
  {
    name: 'old run: model.json shape differs from the model built from the config',
    file: 'model/model.json',
    command: 'eval',
    legacy: true,
    damage: (run) => {
      const f = path.join(run, 'model/model.json');
      writeFileSync(f, readFileSync(f, 'utf8').replace(/("name": "tower_ctr\/dense_0\/bias",\s*"shape": \[\s*)16/, '$117'));
      return /weight tower_ctr\/dense_0\/bias has shape \[17\], the model built from the config has \[16\]/;
    },
  },
  { name: 'old run: weights.bin empty', file: 'model/weights.bin', command: 'eval', legacy: true, damage: (run) => (truncateSync(path.join(run, 'model/weights.bin'), 0), /holds 0 float32 values, model\.json's dense weights need/) },
  {
    name: 'old run: checkpoint optimizer slot shape differs from its weight',
    file: 'checkpoint/model.json',
    command: 'resume',
    legacy: true,
    runJsonMayChange: true,
    damage: (run) => {
      const f = path.join(run, 'checkpoint/model.json');
      const text = readFileSync(f, 'utf8');
      const changed = text.replace(/("name": "[^"]*tower_ctr\/dense_0\/bias\/m",\s*"shape": \[\s*)16/, '$117');
      assert.notEqual(changed, text);
      writeFileSync(f, changed);
      return /optimizer slot [^ ]*tower_ctr\/dense_0\/bias\/m has shape \[17\], weight tower_ctr\/dense_0\/bias has \[16\]/;
    },
  },
  {
    name: 'old run: checkpoint state.json cut',
    file: 'checkpoint/state.json',
    command: 'resume',
    legacy: true,
    damage: (run) => (truncateSync(path.join(run, 'checkpoint/state.json'), 40), /unreadable/),
  },
];

test('damaged run-folder files: exit 2 naming the file and what differs; the folder is left as it was', async () => {
  const trained = await trainedRun();
  const base = tempDir('resflow-faults-copies-');
  const run = async (c: Case, i: number): Promise<string[]> => {
    const dir = path.join(base, `case-${i}`);
    cpSync(trained, dir, { recursive: true });
    if (c.legacy) {
      const info = JSON.parse(readFileSync(path.join(dir, 'run.json'), 'utf8')) as Record<string, unknown>;
      delete info['files'];
      writeFileSync(path.join(dir, 'run.json'), JSON.stringify(info));
    }
    const what = c.damage(dir);
    const before = snapshot(dir);
    const args = c.command === 'eval' ? ['-q', 'eval', dir] : ['-q', 'train', '--resume', dir];
    const r = await cliAsync(args);
    const problems: string[] = [];
    const named = path.join(dir, c.file);
    if (r.code !== 2) problems.push(`exit ${r.code}, expected 2`);
    if (!r.stderr.includes(named)) problems.push(`message does not name ${named}`);
    if (!what.test(r.stderr)) problems.push(`message does not match ${what}`);
    if (r.stderr.split('\n').filter(Boolean).length !== 1) problems.push('more than one line on stderr');
    const after = snapshot(dir);
    if (c.runJsonMayChange) {
      delete after['run.json'];
      delete before['run.json'];
    }
    try {
      assert.deepEqual(after, before);
    } catch {
      problems.push('the folder was modified');
    }
    return problems.length ? [`${c.name} (${c.command}): ${problems.join('; ')}\n    stderr: ${r.stderr.trim()}`] : [];
  };
  // a few at a time: each is a separate process
  const failures: string[] = [];
  for (let i = 0; i < cases.length; i += 4) {
    const batch = await Promise.all(cases.slice(i, i + 4).map((c, j) => run(c, i + j)));
    failures.push(...batch.flat());
  }
  assert.deepEqual(failures, []);

  // the undamaged copy still loads: eval exits 0 (the records match a copied folder)
  const intact = path.join(base, 'intact');
  cpSync(trained, intact, { recursive: true });
  const ok = await cliAsync(['-q', 'eval', intact]);
  assert.equal(ok.code, 0, ok.stderr);
});

test('a save killed before its files are in place leaves files that still verify; run.json updates keep the records', () => {
  const dir = tempDir('resflow-faults-');
  const config = loadConfig(writeFile(dir, 'exp.yaml', tinyConfigYaml())).config;
  const run = RunFolder.create(dir, config);
  const state = (epoch: number): CheckpointState => ({
    epoch,
    stepInEpoch: 3,
    globalStep: 13,
    history: [],
    best: null,
    bestEpoch: null,
    badEpochs: 0,
    epochSums: { samples: 30, steps: 3, loss: 1.5, tasks: [1, 0.5], extra: 0, seconds: 0.2 },
  });
  mkdirSync(path.join(run.dir, 'checkpoint'));
  writeCheckpointState(run.dir, state(1));
  run.update({ status: 'interrupted' }); // a RunFolder rewriting run.json keeps what the writers recorded
  const file = path.join(run.dir, 'checkpoint/state.json');
  const infoFile = path.join(run.dir, 'run.json');
  assert.deepEqual(Object.keys(readRunInfo(run.dir).files!), ['checkpoint/state.json', 'config.yaml']);
  assert.equal(readRunInfo(run.dir).files!['checkpoint/state.json']!.size, statSync(file).size);
  // a process killed after run.json took the new record, before the new file was renamed into place
  const next = JSON.stringify(state(2), null, 2);
  const killed = spawnSync(process.execPath, [
    '--input-type=module',
    '-e',
    `import { writeRecorded, fileRecord } from ${JSON.stringify(pathToFileURL(path.join(repoRoot, 'dist/src/runs/integrity.js')).href)};
     writeRecorded(${JSON.stringify(path.join(run.dir, 'checkpoint'))}, { 'state.json': fileRecord(${JSON.stringify(next)}) }, false, () => process.kill(process.pid, 'SIGKILL'));`,
  ]);
  assert.equal(killed.signal, 'SIGKILL', killed.stderr?.toString());
  assert.ok(readFileSync(infoFile, 'utf8').includes('"previous"'));
  assert.equal(readCheckpointState(run.dir).epoch, 1, 'the previous file verifies against `previous`');
  verifyCheckpoint(run.dir);
  // a write that fails (not a kill) puts the old record back
  const recordBefore = readRunInfo(run.dir).files!['checkpoint/state.json'];
  assert.throws(() => writeRecorded(path.join(run.dir, 'checkpoint'), { 'state.json': fileRecord(next) }, false, () => {
    throw new Error('ENOSPC');
  }), /ENOSPC/);
  assert.deepEqual(readRunInfo(run.dir).files!['checkpoint/state.json'], { size: recordBefore!.previous!.size, sha256: recordBefore!.previous!.sha256 });
  // the next save completes and drops `previous`; then a damaged file is refused
  writeCheckpointState(run.dir, state(2));
  assert.ok(!readFileSync(infoFile, 'utf8').includes('"previous"'));
  assert.equal(readCheckpointState(run.dir).epoch, 2);
  writeFileSync(file, JSON.stringify(state(1), null, 2));
  assert.throws(() => readCheckpointState(run.dir), (err: unknown) => err instanceof DataError && err.message.startsWith(`${file}: `) && /recorded in .*run\.json|records/.test(err.message));
  assert.throws(() => verifyCheckpoint(run.dir), DataError);
  // the checkpoint's records go with it (config.yaml's stays)
  removeCheckpoint(run.dir);
  assert.deepEqual(Object.keys(readRunInfo(run.dir).files!), ['config.yaml']);
});
