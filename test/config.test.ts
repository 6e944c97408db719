import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig, parseOverride, deepMerge } from '../src/config/load.js';
import { ConfigError } from '../src/base/errors.js';
import { configJsonSchema, loadExperiment } from '../src/app/load-experiment.js';
import { MODELS, modelRegistry, resolveModelConfig } from '../src/models/registry.js';
import { COMMON_MODEL_KEYS } from '../src/config/experiment.js';
import { appliesToValidation, direction, METRICS, VALIDATION_METRICS } from '../src/config/metrics.js';
import { arr, check, int, nullable, obj, oneOf, record, str, tagged, union, type Infer, type SchemaIssue } from '../src/config/schema.js';
import { tempDir, tinyConfigYaml, writeFile, cli, repoRoot } from './helpers/fixtures.js';

function loadText(text: string, overrides: string[] = []) {
  const dir = tempDir();
  const file = writeFile(dir, 'exp.yaml', text);
  return { file, load: () => loadExperiment(file, { overrides }) };
}

test('a valid config loads with defaults filled in', () => {
  const { load } = loadText(tinyConfigYaml());
  const { config } = load();
  assert.equal(config.train.optimizer.type, 'adam');
  assert.equal(config.train.optimizer.lr, 1e-3);
  assert.deepEqual(config.tasks[0]!.sample_space, ['exposure']);
  assert.deepEqual(config.tasks[0]!.losses, [{ type: 'pointwise', weight: 1 }]);
  assert.equal(config.model.residual, 'both');
  assert.equal(config.runtime.seed, 42);
  assert.equal(config.features[4]!.pooling, 'mean');
});

// Each broken config must fail with a message naming the line (when it has one), the key path,
// what was expected and what was found.
const broken: { name: string; edit: (t: string) => string; overrides?: string[]; message: RegExp }[] = [
  { name: 'unknown key with suggestion', edit: (t) => t.replace('batch_size: 256', 'batchsize: 256'), message: /exp\.yaml:\d+: train\.batchsize: unknown key `batchsize` \(did you mean `batch_size`\?\)/ },
  { name: 'unknown top-level section', edit: (t) => t + 'modle: {}\n', message: /exp\.yaml:\d+: modle: unknown key `modle` \(did you mean `model`\?\)/ },
  { name: 'wrong type', edit: (t) => t.replace('epochs: 1', 'epochs: three'), message: /train\.epochs: expected an integer, found the string "three"/ },
  { name: 'out of range', edit: (t) => t.replace('epochs: 1', 'epochs: 0'), message: /train\.epochs: expected a value >= 1, found 0/ },
  { name: 'bad enum with suggestion', edit: (t) => t.replace('type: resflow', 'type: resflw'), message: /model\.type: expected one of .*found "resflw" \(did you mean `resflow`\?\)/ },
  { name: 'model param of another model', edit: (t) => t.replace('hidden: [16, 8]', 'hidden: [16, 8], bottom: [4]'), message: /model\.bottom: unknown key `bottom`/ },
  { name: 'missing required section', edit: (t) => t.replace(/tasks:\n.*\n.*\n/, ''), message: /tasks: missing required key `tasks`/ },
  { name: 'label without column', edit: (t) => t.replace('label: purchase', 'label: all_purchase').replace(', all_purchase: all_purchase }', ' }'), message: /tasks\[1\]\.label: label `all_purchase` has no column/ },
  { name: 'categorical without buckets or vocab', edit: (t) => t.replace('{ name: user_id, buckets: 1000 }', '{ name: user_id }'), message: /features\[0\]: categorical feature `user_id` needs exactly one of `buckets`/ },
  { name: 'fusion weight for unknown task', edit: (t) => t + 'fusion: { weights: { ctrr: 1 } }\n', message: /fusion\.weights\.ctrr: no task named `ctrr` \(did you mean `ctr`\?\)/ },
  { name: 'duplicate task names', edit: (t) => t.replace('name: ctcvr', 'name: ctr'), message: /tasks\[1\]\.name: duplicate name `ctr`/ },
  { name: 'distill teacher missing', edit: (t) => t.replace('{ name: ctr, label: click }', '{ name: ctr, label: click, losses: [{ type: distill, teacher: rank }] }'), message: /tasks\[0\]\.losses\[0\]\.teacher: teacher `rank` is not under data\.columns\.teacher/ },
  { name: 'invalid YAML', edit: (t) => t.replace('train: { epochs: 1, batch_size: 256 }', 'train: { epochs: 1, batch_size: 256'), message: /exp\.yaml:\d+: invalid YAML/ },
  { name: 'bad --set value', edit: (t) => t, overrides: ['train.optimizer.lr=-1'], message: /--set: train\.optimizer\.lr: expected a value > 0, found -1/ },
  { name: 'early stopping without validation', edit: (t) => t.replace(/  validation: .*\n/, '').replace('batch_size: 256', 'batch_size: 256, early_stopping: { patience: 1 }'), message: /train\.early_stopping: early stopping needs data\.validation/ },
];

for (const c of broken) {
  test(`broken config: ${c.name}`, () => {
    const { load, file } = loadText(c.edit(tinyConfigYaml()), c.overrides);
    assert.throws(load, (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
      assert.match(err.message, c.message);
      if (!c.overrides) assert.ok(err.message.includes(file), `message should name the file: ${err.message}`);
      return true;
    });
  });
}

test('the reported line is the line of the offending key', () => {
  const text = tinyConfigYaml().replace('batch_size: 256', 'batchsize: 256');
  const { load } = loadText(text);
  const line = text.split('\n').findIndex((l) => l.includes('batchsize')) + 1;
  assert.throws(load, new RegExp(`exp\\.yaml:${line}: train\\.batchsize`));
});

test('extends deep-merges, lists are replaced, paths resolve from each file', () => {
  const dir = tempDir();
  writeFile(dir, 'base.yaml', tinyConfigYaml('runtime: { seed: 7 }\n'));
  const child = writeFile(dir, 'child.yaml', 'extends: base.yaml\nname: child\nmodel: { hidden: [32] }\ntrain: { epochs: 2 }\n');
  const { config, chain } = loadExperiment(child);
  assert.equal(config.name, 'child');
  assert.deepEqual(config.model.hidden, [32]);
  assert.equal(config.model.embedding_dim, 8); // kept from base
  assert.equal(config.train.epochs, 2);
  assert.equal(config.train.batch_size, 256);
  assert.equal(config.runtime.seed, 7);
  assert.equal(chain.length, 2);
  assert.ok(path.isAbsolute(config.data.train as string));
});

test('extends cycles are reported', () => {
  const dir = tempDir();
  writeFile(dir, 'a.yaml', 'extends: b.yaml\n');
  const b = writeFile(dir, 'b.yaml', 'extends: a.yaml\n');
  assert.throws(() => loadConfig(b), /forms a cycle/);
});

test('--set parses paths with indices and YAML values', () => {
  assert.deepEqual(parseOverride('tasks[1].pos_weight=500'), { path: ['tasks', 1, 'pos_weight'], value: 500 });
  assert.deepEqual(parseOverride('model.hidden=[64, 32]'), { path: ['model', 'hidden'], value: [64, 32] });
  assert.deepEqual(parseOverride('data.validation=null'), { path: ['data', 'validation'], value: null });
  assert.throws(() => parseOverride('train.epochs'), /expected path=value/);
  const { load } = loadText(tinyConfigYaml(), ['tasks[1].pos_weight=500', 'model.residual=none']);
  const { config } = load();
  assert.equal(config.tasks[1]!.pos_weight, 500);
  assert.equal(config.model.residual, 'none');
});

test('deepMerge merges mappings and replaces lists', () => {
  assert.deepEqual(deepMerge({ a: { b: 1, c: [1, 2] } }, { a: { c: [3] } }), { a: { b: 1, c: [3] } });
});

test('every model descriptor has a builder under its name and the common parameters first', () => {
  assert.deepEqual(Object.keys(modelRegistry), MODELS.map((m) => m.name));
  for (const m of MODELS) assert.deepEqual(Object.keys(m.schema.fields).slice(0, COMMON_MODEL_KEYS.length), [...COMMON_MODEL_KEYS], m.name);
});

test('the config layer alone leaves model parameters to the model step', () => {
  const text = tinyConfigYaml().replace('hidden: [16, 8]', 'hiden: [16, 8]');
  const { file } = loadText(text);
  const { config } = loadConfig(file); // config layer: type and common parameters only
  assert.deepEqual(config.model.hiden, [16, 8]);
  assert.throws(() => loadExperiment(file), /exp\.yaml:\d+: model\.hiden: unknown key `hiden` \(did you mean `hidden`\?\)/);
});

test('resolveModelConfig fills defaults, keeps the key order, and names bad keys', () => {
  const issues: SchemaIssue[] = [];
  const m = resolveModelConfig({ type: 'mmoe', embedding_dim: 8, activation: 'relu', batch_norm: false, dropout: 0, experts: 2 }, issues);
  assert.deepEqual(issues, []);
  assert.deepEqual(Object.keys(m), ['type', 'embedding_dim', 'activation', 'batch_norm', 'dropout', 'experts', 'expert_hidden', 'hidden']);
  assert.deepEqual(m.expert_hidden, [128]);
  resolveModelConfig({ type: 'mmoe', embedding_dim: 8, activation: 'relu', batch_norm: false, dropout: 0, experts: 0 }, issues);
  assert.deepEqual(issues, [{ path: ['model', 'experts'], message: 'expected a value >= 1, found 0' }]);
});

test('metric declarations: direction, validation, and the early-stopping metric', () => {
  assert.equal(direction('logloss'), 'lower');
  assert.equal(direction('auc'), 'higher');
  assert.equal(appliesToValidation('gauc'), true);
  assert.equal(appliesToValidation('ash'), true);
  assert.equal(appliesToValidation('online'), false);
  assert.deepEqual(VALIDATION_METRICS, METRICS.filter(appliesToValidation));
  const es = (spec: string) => loadText(tinyConfigYaml().replace('batch_size: 256', `batch_size: 256, early_stopping: ${spec}`)).load;
  assert.equal(es('{ metric: logloss }')().config.train.early_stopping?.metric, 'logloss');
  assert.equal(es('{}')().config.train.early_stopping?.metric, 'auc');
  assert.equal(es('{ metric: recall, k: 10 }')().config.train.early_stopping?.k, 10);
  assert.throws(es('{ metric: recall }'), /train\.early_stopping\.k: `recall` is reported per K/);
  assert.throws(es('{ metric: auc, k: 5 }'), /train\.early_stopping\.k: `auc` takes no k/);
  assert.equal(es('{ metric: ash, k: 10 }')().config.train.early_stopping?.metric, 'ash');
  assert.throws(es('{ metric: ash, k: 10, task: ctr }'), /train\.early_stopping\.task: `ash` is a metric of the fused ranking and has no task/);
  assert.throws(es('{ metric: online, k: 10 }'), /train\.early_stopping\.metric: expected one of `auc`, `gauc`, `logloss`, `recall`, `wrecall`, `ash`, found "online"/);
});

test('the JSON Schema describes every section and the committed copy is current', async () => {
  const schema = configJsonSchema() as { properties: Record<string, unknown> };
  for (const k of ['data', 'features', 'tasks', 'model', 'sampling', 'train', 'fusion', 'eval', 'runtime']) assert.ok(k in schema.properties, k);
  const { readFileSync } = await import('node:fs');
  const committed = JSON.parse(readFileSync(path.join(repoRoot, 'schema/config.schema.json'), 'utf8'));
  assert.deepEqual(committed, JSON.parse(JSON.stringify(schema)), 'schema/config.schema.json is stale: run `resflow config schema --out schema/config.schema.json`');
});

test('CLI: config check passes on the quickstart and exits 2 naming an unknown key and the file', () => {
  const ok = cli(['config', 'check', 'configs/quickstart.yaml']);
  assert.equal(ok.code, 0, ok.stderr);
  const dir = tempDir();
  const bad = writeFile(dir, 'bad.yaml', tinyConfigYaml('runtime: { seed: 1, sed: 2 }\n'));
  const r = cli(['config', 'check', bad]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.yaml:\d+: runtime\.sed: unknown key `sed` \(did you mean `seed`\?\)/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/, 'no stack trace without --verbose');
});

test('CLI: usage errors exit 2, help lists every command with examples', () => {
  assert.equal(cli(['nonsense']).code, 2);
  assert.equal(cli(['train']).code, 2);
  const help = cli(['--help']);
  assert.equal(help.code, 0);
  for (const c of ['data', 'config', 'train', 'eval', 'compare']) assert.match(help.stdout, new RegExp(`\\b${c}\\b`));
  assert.match(help.stdout, /Examples:/);
});

test('Infer: types follow the schema (required, defaulted, optional, enums, nullable, unions, tagged)', () => {
  const schema = obj(
    {
      name: str(),
      mode: oneOf(['a', 'b'] as const, { default: 'a' }),
      size: int({ min: 1 }),
      tags: arr(str(), { default: [] }),
      limit: nullable(int(), { default: null }),
      file: union([str(), arr(str())]),
      weights: record(int(), { default: {} }),
      loss: tagged('type', { p: obj({ w: int({ default: 1 }) }), d: obj({ t: str() }, { required: ['t'] }) }, { defaultTag: 'p' }),
    },
    { required: ['name'] },
  );
  type Expected = {
    name: string;
    mode: 'a' | 'b';
    size?: number;
    tags: string[];
    limit: number | null;
    file?: string | string[];
    weights: Record<string, number>;
    loss: { type: 'p'; w: number } | { type: 'd'; t: string };
  };
  type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
  const same: Same<Infer<typeof schema>, Expected> = true;
  assert.equal(same, true);
  const issues: SchemaIssue[] = [];
  const v = check(schema, { name: 'x', loss: { type: 'd', t: 'z' } }, [], issues);
  assert.deepEqual(issues, []);
  assert.deepEqual(v, { name: 'x', mode: 'a', tags: [], limit: null, weights: {}, loss: { type: 'd', t: 'z' } });
});
