/**
 * Bad usage and bad configs (issue 12): each case exits 2 with one line naming the file, line and
 * key (README, exit codes), before any run folder exists; no config can write an object prototype;
 * checking stays linear in the size of the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import path from 'node:path';
import { ConfigError } from '../src/base/errors.js';
import { deepMerge, loadConfig } from '../src/config/load.js';
import { checkWork } from '../src/config/keys.js';
import { sizeChecks } from '../src/config/sizes.js';
import { check, record, num, type Path } from '../src/config/schema.js';
import { loadExperiment } from '../src/app/load-experiment.js';
import { main } from '../src/cli/main.js';
import { cli, repoRoot, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

const quickstart = path.join(repoRoot, 'configs/quickstart.yaml');

/**
 * Runs the command line in this process (cli/main.ts's `main`, as bin/resflow.js does), capturing
 * stderr and the exit code; a few cases below go through a real process too.
 */
async function runMain(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    await main(['node', 'resflow', ...args]);
  } finally {
    process.stderr.write = write;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = undefined;
  return { code, stderr };
}

function oneLine(args: string[], r: { code: number; stderr: string }, message: RegExp): string {
  assert.equal(r.code, 2, `${args.join(' ')}: expected exit 2, got ${r.code}: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 1, `${args.join(' ')}: expected one line, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^resflow: error: /);
  assert.match(lines[0]!, message);
  return lines[0]!;
}

/** Exit 2 and exactly one line on stderr, matching `message`. */
async function badUsage(args: string[], message: RegExp): Promise<string> {
  return oneLine(args, await runMain(args), message);
}

/** The same through a real process. */
function badUsageCli(args: string[], message: RegExp, opts: { cwd?: string } = {}): string {
  return oneLine(args, cli(args, opts), message);
}

function configError(load: () => unknown, message: RegExp): string {
  let text = '';
  assert.throws(load, (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    text = err.message;
    assert.match(err.message, message);
    return true;
  });
  return text;
}

// ---- 1. exit codes of bad usage ------------------------------------------------------------

test('commander parse errors exit 2 with one line naming the command; --help and --version exit 0', async () => {
  badUsageCli(['train', quickstart, '--epochs', '3'], /unknown option '--epochs' \(see `resflow train --help`\)/);
  await badUsage(['eval'], /missing required argument 'run'/);
  await badUsage(['compare'], /missing required argument 'runs'/);
  await badUsage(['config', 'check'], /missing required argument 'config'.*resflow config check --help/);
  await badUsage(['config', 'check', quickstart, '--sett', 'x=1'], /unknown option '--sett' \(Did you mean --set\?\)/);
  await badUsage(['data', 'synth'], /required option '--out <dir>' not specified/);
  await badUsage(['train', '--resume'], /option '--resume <run>' argument missing/);
  await badUsage(['nonsense'], /unknown command 'nonsense'/);
  for (const args of [['--help'], ['train', '--help'], ['-V']]) {
    const r = cli(args);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    assert.ok(r.stdout.length > 0);
  }
  // A group without its subcommand shows its help (on stderr) and is still bad usage.
  const group = cli(['config']);
  assert.equal(group.code, 2);
  assert.match(group.stderr, /Usage: resflow config/);
});

test('a config path that is a folder is exit 2 naming the path', async () => {
  const dir = tempDir();
  await badUsage(['config', 'check', dir], new RegExp(`${dir}: is a folder, not a config file`));
  // ... also when it is reached through extends
  const sub = path.join(dir, 'base.yaml');
  mkdirSync(sub);
  const child = writeFile(dir, 'child.yaml', 'extends: base.yaml\n');
  configError(() => loadExperiment(child), new RegExp(`${sub}: is a folder`));
});

test('an unreadable config is exit 2 naming the path', { skip: process.getuid?.() === 0 ? 'root reads any file' : false }, async () => {
  const file = writeFile(tempDir(), 'secret.yaml', tinyConfigYaml());
  chmodSync(file, 0o000);
  await badUsage(['config', 'check', file], new RegExp(`${file}: cannot be read \\(permission denied\\)`));
});

test('a YAML alias bomb is refused: exit 2 naming the file and line', async () => {
  const rows = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < 8; i++) {
    const prev = String.fromCharCode(96 + i);
    const name = String.fromCharCode(97 + i);
    rows.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`);
  }
  const file = writeFile(tempDir(), 'bomb.yaml', rows.join('\n') + '\n');
  await badUsage(['config', 'check', file], new RegExp(`${file}:2: invalid YAML: aliases expand too much`));
});

// ---- 2. absurd sizes, checked against the machine before any run folder exists -----------------

test('embedding tables too large for an array or for memory: exit 2 naming the key, no run folder', async () => {
  const dir = tempDir();
  const runs = path.join(dir, 'runs');
  const line = badUsageCli(['train', quickstart, '--set', 'features[2].buckets=1e12', '--runs-dir', runs], /--set: features\[2\]\.buckets: the embedding table of `query_id` \(1,000,000,000,001 rows × 16 dims\) would hold 16,000,000,000,016 values, more than the 4,294,967,296 one array can hold/);
  assert.doesNotMatch(line, /Invalid typed array length/);
  assert.ok(!existsSync(runs) || readdirSync(runs).length === 0, 'no run folder is left behind');

  // The embedding size is the absurd factor: named once, at model.embedding_dim.
  const file = writeFile(dir, 'wide.yaml', tinyConfigYaml().replace('embedding_dim: 8', 'embedding_dim: 1000000'));
  const msg = configError(() => loadExperiment(file), /wide\.yaml:\d+: model\.embedding_dim: the embedding table of `\w+` \([\d,]+ rows × 1,000,000 dims\)/);
  assert.doesNotMatch(msg, /problems/, 'reported once, not once per feature');
});

// A single table can pass the array limit (2^32 values) and still exceed memory (rows × 8 dims ×
// 4 bytes + 4 bytes of state index a row) only on machines under 16 GiB; sizeChecks' own test
// below covers the others with the machine's limits given.
const fitsArrayNotMemory = totalmem() < 2 ** 32 * 4;
test('an embedding table within the array limit but not in memory: GiB needed and GiB this machine has', { skip: fitsArrayNotMemory ? false : 'machine over 16 GiB' }, () => {
  const dir = tempDir();
  const rows = Math.floor(totalmem() / 36) + 1; // × (8 dims × 4 bytes + 4 bytes of index) > totalmem
  const gib = (totalmem() / 2 ** 30).toFixed(1);
  const big = writeFile(dir, 'big.yaml', tinyConfigYaml().replace('{ name: item_id, buckets: 5000 }', `{ name: item_id, buckets: ${rows} }`));
  configError(() => loadExperiment(big), new RegExp(`big\\.yaml:\\d+: features\\[2\\]\\.buckets: the embedding table of \`item_id\` .* would need [\\d.]+ GiB \\(rows × dim × 4 bytes \\+ a 4-byte state index per row; Adam state adds dim × 8 bytes per row training touches\\); this machine has ${gib} GiB`));
  // The Adam state is allocated as rows are touched, so it is not counted up front: a table of half the memory passes.
  const half = writeFile(dir, 'half.yaml', tinyConfigYaml().replace('{ name: item_id, buckets: 5000 }', `{ name: item_id, buckets: ${Math.floor(totalmem() / 72)} }`));
  assert.doesNotThrow(() => loadExperiment(half));
});

test('sizeChecks: tables that fit one by one but not together are named with the largest', () => {
  const { config } = loadExperiment(writeFile(tempDir(), 'ok.yaml', tinyConfigYaml()));
  const issues: { path: Path; message: string }[] = [];
  // item_id: 5001 rows × (8 dims × 4 bytes + 4 bytes of state index) = 180,036 bytes; the others together are smaller.
  sizeChecks(config, (p, message) => issues.push({ path: p, message }), { memory: 190_000, maxArrayLength: 2 ** 32 });
  assert.equal(issues.length, 1);
  assert.deepEqual(issues[0]!.path, ['features']);
  assert.match(issues[0]!.message, /the embedding tables together would need .* the largest is `item_id` \(features\[2\]/);
  issues.length = 0;
  // one table over the memory: named at its bucket count, with the bytes it needs (Adam state not counted: it comes with the rows training touches)
  sizeChecks(config, (p, message) => issues.push({ path: p, message }), { memory: 150_000, maxArrayLength: 2 ** 32 });
  assert.deepEqual(issues.map((i) => i.path), [['features', 2, 'buckets']]);
  assert.match(issues[0]!.message, /`item_id` \(5,001 rows × 8 dims\) would need 0\.0 GiB \(rows × dim × 4 bytes \+ a 4-byte state index per row; Adam state adds dim × 8 bytes per row training touches\)/);
  issues.length = 0;
  sizeChecks(config, (p, message) => issues.push({ path: p, message }), { memory: 2 ** 40, maxArrayLength: 40_000 });
  assert.deepEqual(issues.map((i) => i.path), [['features', 2, 'buckets']]);
});

// ---- 3. prototype paths ---------------------------------------------------------------------

test('--set and YAML keys naming a prototype are refused, and Object.prototype stays clean', async () => {
  const before = Object.getOwnPropertyNames(Object.prototype).sort();
  await badUsage(['config', 'check', quickstart, '--set', '__proto__.epochs=5'], /--set __proto__\.epochs=5: the key `__proto__` is not allowed/);
  await badUsage(['config', 'check', quickstart, '--set', 'constructor.prototype.lr=5'], /--set constructor\.prototype\.lr=5: the key `constructor` is not allowed/);

  const dir = tempDir();
  const yamlCases: [string, RegExp][] = [
    ['__proto__: { epochs: 5 }\n', /p0\.yaml:\d+: __proto__: the key `__proto__` is not allowed/],
    ['runtime: { seed: 1, constructor: { prototype: { lr: 5 } } }\n', /p1\.yaml:\d+: runtime\.constructor: the key `constructor` is not allowed/],
  ];
  yamlCases.forEach(([extra, message], i) => {
    const file = writeFile(dir, `p${i}.yaml`, tinyConfigYaml(extra));
    configError(() => loadExperiment(file), message);
  });
  for (const spec of ['__proto__.epochs=5', 'constructor.prototype.lr=5', 'train.prototype.x=1', 'tasks[0].__proto__.y=1']) {
    configError(() => loadExperiment(quickstart, { overrides: [spec] }), /is not allowed/);
  }
  // What gets past the key checks (a merge of parsed JSON, a record) is written as own data.
  const merged = deepMerge({ a: 1 }, JSON.parse('{"__proto__": {"polluted": 1}, "b": 2}')) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(merged), Object.prototype);
  assert.deepEqual(Object.keys(merged), ['a', '__proto__', 'b']);
  const issues: { path: Path; message: string }[] = [];
  const rec = check(record(num()), JSON.parse('{"__proto__": 3}'), [], issues) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(rec), Object.prototype);
  assert.ok(Object.hasOwn(rec, '__proto__'));

  assert.deepEqual(Object.getOwnPropertyNames(Object.prototype).sort(), before);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal(({} as Record<string, unknown>).epochs, undefined);
  assert.equal(({} as Record<string, unknown>).lr, undefined);
});

test('a model type or teacher named after a prototype property is an unknown name, not a crash', () => {
  configError(() => loadExperiment(quickstart, { overrides: ['model.type=toString'] }), /model\.type: expected one of .*found "toString"/);
  const file = writeFile(tempDir(), 't.yaml', tinyConfigYaml().replace('{ name: ctr, label: click }', '{ name: ctr, label: click, losses: [{ type: distill, teacher: toString }] }'));
  configError(() => loadExperiment(file), /tasks\[0\]\.losses\[0\]\.teacher: teacher `toString` is not under data\.columns\.teacher/);
});

// ---- 4. checking is linear in the size of the file ----------------------------------------------

test('many unknown keys: work grows linearly and the report is capped', () => {
  const dir = tempDir();
  const run = (n: number) => {
    const keys = Array.from({ length: n }, (_, i) => `k${i}: 1`).join('\n');
    const file = writeFile(dir, `keys${n}.yaml`, tinyConfigYaml(keys + '\n'));
    checkWork.comparisons = 0;
    checkWork.scanned = 0;
    const message = configError(() => loadConfig(file), /problems in the config/);
    return { work: checkWork.comparisons + checkWork.scanned, message };
  };
  const small = run(20_000);
  const large = run(80_000);
  // Four times the keys: about four times the work (one pass over the keys); quadratic work
  // (a line lookup or a did-you-mean per key against all keys) would be sixteen times.
  const ratio = large.work / small.work;
  assert.ok(ratio > 3 && ratio < 5, `work grew ${ratio.toFixed(1)}x for 4x the keys (${small.work} -> ${large.work})`);
  const lines = large.message.split('\n');
  assert.ok(lines.length <= 22, `the report is capped, got ${lines.length} lines`);
  assert.match(large.message, /keys80000\.yaml:\d+: k0: unknown key `k0`/);
  assert.match(large.message, /keys80000\.yaml:\d+: k10: 79,990 more unknown keys in this mapping, from `k10` on/);
});

test('many problems are capped at 20 lines with how many more; a huge file is refused unread', async () => {
  const dir = tempDir();
  const labels = Array.from({ length: 30 }, (_, i) => `x${i}: [1]`).join(', ');
  const file = writeFile(dir, 'many.yaml', tinyConfigYaml().replace('labels: {', `labels: { ${labels},`));
  const msg = configError(() => loadConfig(file), /30 problems in the config/);
  assert.match(msg, /many\.yaml:\d+: data\.columns\.labels\.x0: expected a string, found a list/);
  assert.match(msg, /\.\.\. and 10 more$/);
  assert.equal(msg.split('\n').length, 22);

  const huge = writeFile(dir, 'huge.yaml', tinyConfigYaml(`# ${'x'.repeat(5 * 2 ** 20)}\n`));
  await badUsage(['config', 'check', huge], /huge\.yaml: the config file is 5\.0 MiB; a config is at most 4 MiB/);
});

test('duplicate keys are refused naming both lines', () => {
  const file = writeFile(tempDir(), 'dup.yaml', tinyConfigYaml('runtime: { seed: 1 }\nruntime: { seed: 2 }\n'));
  const line = tinyConfigYaml('runtime: { seed: 1 }\n').split('\n').length;
  configError(() => loadConfig(file), new RegExp(`dup\\.yaml:${line}: runtime: duplicate key \`runtime\` \\(first at line ${line - 1}\\)`));
});

// ---- 5. null slots and non-finite numbers ---------------------------------------------------------

test('--set past the end of a list is refused naming the list and its length; the next index adds a checked entry', async () => {
  await badUsage(['config', 'check', quickstart, '--set', 'tasks[3].name=x'], /--set tasks\[3\]\.name=x: tasks\[3\]: index 3 is out of range: tasks has 2 entries/);
  configError(() => loadExperiment(quickstart, { overrides: ['tasks[2].name=x'] }), /^--set: tasks\[2\]\.label: missing required key `label`/);
  const { config } = loadExperiment(quickstart, { overrides: ['tasks[2].name=x', 'tasks[2].label=all_click'] });
  assert.equal(config.tasks.length, 3);
  configError(() => loadExperiment(quickstart, { overrides: ['tasks.name=x'] }), /tasks is a list: name an entry by its index/);
  configError(() => loadExperiment(quickstart, { overrides: ['train[0]=x'] }), /train is not a list/);
});

test('numbers must be finite: .inf, -.inf and .nan are refused naming the file, line and key', async () => {
  const dir = tempDir();
  for (const [i, v] of ['.inf', '-.inf', '.nan'].entries()) {
    const text = tinyConfigYaml(`fusion: { weights: { ctr: ${v} } }\n`);
    const file = writeFile(dir, `n${i}.yaml`, text);
    const lineNo = text.split('\n').findIndex((l) => l.includes(v)) + 1;
    configError(() => loadExperiment(file), new RegExp(`n${i}\\.yaml:${lineNo}: fusion\\.weights\\.ctr: expected a (finite )?number, found (Infinity|-Infinity|number NaN)`));
  }
  const lr = writeFile(dir, 'lr.yaml', tinyConfigYaml().replace('train: { epochs: 1, batch_size: 256 }', 'train: { epochs: 1, batch_size: 256, optimizer: { lr: .inf } }'));
  await badUsage(['config', 'check', lr], /lr\.yaml:\d+: train\.optimizer\.lr: expected a finite number, found Infinity/);
});

// ---- 6. errors point at the file and line that defined the entry --------------------------------

test('extends: an entry of a list the child replaced is located in the child', async () => {
  const dir = tempDir();
  writeFile(dir, 'base.yaml', tinyConfigYaml());
  const child = writeFile(dir, 'child.yaml', 'extends: base.yaml\ntasks:\n  - { name: ctr, label: click }\n  - { name: cvr }\n');
  await badUsage(['config', 'check', child], new RegExp(`${child}:4: tasks\\[1\\]\\.label: missing required key \`label\``));
  // A mapping merges key by key: a key only the base defines is still found in the base.
  const child2 = writeFile(dir, 'child2.yaml', 'extends: base.yaml\ntrain: { epochs: 2 }\n');
  const base = path.join(dir, 'base.yaml');
  const baseLine = tinyConfigYaml().split('\n').findIndex((l) => l.startsWith('train:')) + 1;
  configError(() => loadExperiment(child2, { overrides: ['train.batch_size=0'] }), /^--set: train\.batch_size/);
  writeFileSync(base, tinyConfigYaml().replace('batch_size: 256', 'batch_size: 0'));
  configError(() => loadExperiment(child2), new RegExp(`${base}:${baseLine}: train\\.batch_size: expected a value >= 1`));
});

test('relative vocab paths resolve from the folder of the file that defines the feature, with or without a data section', () => {
  const dir = tempDir();
  const sub = path.join(dir, 'sub');
  mkdirSync(sub);
  writeFile(dir, 'base.yaml', tinyConfigYaml());
  writeFile(sub, 'child.yaml', 'extends: ../base.yaml\nfeatures:\n  - { name: user_id, vocab: ids.txt }\n  - { name: item_hist_ctr, type: numeric }\n');
  const r = cli(['config', 'print', '--json', path.join('sub', 'child.yaml')], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const printed = JSON.parse(r.stdout) as { features: { vocab?: string }[] };
  assert.equal(printed.features[0]!.vocab, path.join(sub, 'ids.txt'));
});

test('a reader that closes the pipe early ends the output quietly: exit 0, no stack trace', () => {
  // `true` exits without reading, long before Node has started: the help text's write gets EPIPE.
  const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" bin/resflow.js sweep --help | true`], { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.stderr, '', 'nothing on stderr');
  assert.equal(r.status, 0);
});
