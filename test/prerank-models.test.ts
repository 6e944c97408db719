/**
 * The pre-ranking baselines (README.md, "Models"): the two-tower model, whose logit is the dot product
 * of its towers' outputs (checked against towers computed by hand from the weights, each over its own
 * input columns), and the COLD-style light MLP with a feature budget (only its features are embedded,
 * read and exported; run.json records the cost). Config errors name the key. Shapes and gradients of
 * both are covered with every other model in models.test.ts.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadExperiment } from '../src/app/load-experiment.js';
import { buildBundle, disposeBundle, type ModelBundle } from '../src/models/bundle.js';
import { withDuckDB } from '../src/data/duckdb.js';
import { cli, tempDir, tinyConfigYaml, tinyDir, writeFile } from './helpers/fixtures.js';

before(async () => {
  await initBackend('wasm');
});

// tinyConfigYaml's features, in order: user_id, query_category, item_id, item_category (embeddings of
// 4 with embedding_dim 4), user_recent_categories (list, 4), item_hist_ctr (numeric, 1).
const TWO_TOWER = {
  type: 'two_tower',
  embedding_dim: 4,
  activation: 'prelu',
  user_tower: { features: ['user_id', 'user_recent_categories', 'query_category'], hidden: [6] },
  item_tower: { features: ['item_hist_ctr', 'item_id', 'item_category'], hidden: [5, 3] },
  output_dim: 4,
};
/** The columns of x each tower reads, worked out from the feature order above. */
const USER_COLUMNS = [0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19];
const ITEM_COLUMNS = [8, 9, 10, 11, 12, 13, 14, 15, 20];

function bundle(model: Record<string, unknown>): ModelBundle {
  const yaml = tinyConfigYaml().replace(/^model: .*$/m, `model: ${JSON.stringify(model)}`);
  return buildBundle(loadExperiment(writeFile(tempDir(), 'exp.yaml', yaml)).config);
}

const weight = (b: ModelBundle, name: string): { v: Float32Array; cols: number } => {
  const t = b.params.variables.get(name);
  assert.ok(t, `parameter ${name}`);
  return { v: t.dataSync() as Float32Array, cols: t.shape.length === 2 ? t.shape[1]! : t.shape[0]! };
};

/** rows x W + b in double precision, then PReLU with the layer's slopes when `alpha` is given. */
function dense(rows: number[][], b: ModelBundle, prefix: string, act: boolean): number[][] {
  const W = weight(b, `${prefix}/kernel`);
  const bias = weight(b, `${prefix}/bias`).v;
  const alpha = act ? weight(b, `${prefix}/prelu_alpha`).v : null;
  return rows.map((r) =>
    Array.from({ length: W.cols }, (_, j) => {
      let z = bias[j]!;
      r.forEach((x, i) => (z += x * W.v[i * W.cols + j]!));
      return alpha ? Math.max(z, 0) - alpha[j]! * Math.max(-z, 0) : z;
    }),
  );
}

test('two-tower: each tower reads only its features; the logit is u_t · v_t + b_t with u, v computed by hand', () => {
  const b = bundle(TWO_TOWER);
  assert.equal(b.tables.inputDim, 21);
  // random weights away from their initial values (biases and slopes are 0 and 0.25 at first)
  for (const [name, v] of b.params.variables) if (!name.endsWith('kernel')) v.assign(tf.randomUniform(v.shape, -0.5, 0.5, 'float32', name.length));
  const n = 7;
  const xs = tf.randomNormal([n, 21], 0, 1, 'float32', 11) as tf.Tensor2D;
  const x = Array.from({ length: n }, (_, i) => Array.from(xs.dataSync().subarray(i * 21, i * 21 + 21)));
  const out = b.model.forward(xs, { training: false, dropoutSeed: 0 });
  const user = dense(x.map((r) => USER_COLUMNS.map((c) => r[c]!)), b, 'user_tower/dense_0', true);
  let item = x.map((r) => ITEM_COLUMNS.map((c) => r[c]!));
  item = dense(dense(item, b, 'item_tower/dense_0', true), b, 'item_tower/dense_1', true);
  ['ctr', 'ctcvr'].forEach((t, k) => {
    const u = dense(user, b, `user_tower/out_${t}`, false);
    const v = dense(item, b, `item_tower/out_${t}`, false);
    const bias = weight(b, `score_${t}/bias`).v[0]!;
    const want = u.map((ui, i) => ui.reduce((s, a, j) => s + a * v[i]![j]!, 0) + bias);
    const got = Array.from(out.logits[k]!.dataSync());
    want.forEach((w, i) => assert.ok(Math.abs(got[i]! - w) < 1e-4, `${t} row ${i}: ${got[i]} vs ${w} by hand`));
    // the towers' outputs the model exposes are the ones computed by hand
    const gotU = Array.from(out.aux![`user_${t}`]!.dataSync());
    u.flat().forEach((w, i) => assert.ok(Math.abs(gotU[i]! - w) < 1e-4, `user vector ${t}[${i}]`));
  });
  // an item column changes item vectors only; a user column user vectors only
  const bump = (col: number) => tf.add(xs, tf.oneHot(tf.fill([n], col, 'int32'), 21).mul(3)) as tf.Tensor2D;
  const again = (xx: tf.Tensor2D) => b.model.forward(xx, { training: false, dropoutSeed: 0 }).aux!;
  const base = out.aux!;
  for (const [col, changed, same] of [[9, 'item_ctr', 'user_ctr'], [17, 'user_ctr', 'item_ctr']] as const) {
    const a = again(bump(col));
    assert.deepEqual(Array.from(a[same]!.dataSync()), Array.from(base[same]!.dataSync()), `column ${col} leaves ${same} alone`);
    assert.notDeepEqual(Array.from(a[changed]!.dataSync()), Array.from(base[changed]!.dataSync()), `column ${col} moves ${changed}`);
  }
  disposeBundle(b);
});

test('two-tower config: every feature in exactly one tower; unknown, doubled and missing names are errors naming the key', () => {
  const dir = tempDir();
  const bad = (towers: Record<string, unknown>) => {
    const yaml = tinyConfigYaml().replace(/^model: .*$/m, `model: ${JSON.stringify({ ...TWO_TOWER, ...towers })}`);
    const r = cli(['config', 'check', writeFile(dir, 'bad.yaml', yaml)]);
    assert.equal(r.code, 2, r.stderr);
    return r.stderr;
  };
  const user = TWO_TOWER.user_tower;
  assert.match(bad({ user_tower: { ...user, features: ['user_id', 'user_recent_categories', 'query_categry'] } }), /model\.user_tower\.features\[2\]: no feature named `query_categry` \(did you mean `query_category`\?\)/);
  assert.match(bad({ user_tower: { ...user, features: [...user.features, 'item_id'] } }), /model\.item_tower\.features\[1\]: feature `item_id` is in both towers/);
  assert.match(bad({ user_tower: { ...user, features: ['user_id', 'user_recent_categories'] } }), /model\.item_tower\.features: `query_category` is in neither tower/);
  assert.match(bad({ user_tower: { ...user, features: [...user.features, 'user_id'] } }), /model\.user_tower\.features\[3\]: feature `user_id` is listed twice/);
  assert.match(bad({ user_tower: { hidden: [4] } }), /model\.user_tower\.features: missing required key `features`/);
});

test('COLD: only the declared features are embedded and form the input; unknown names are an error naming the key', () => {
  const b = bundle({ type: 'cold', embedding_dim: 4, features: ['item_hist_ctr', 'query_category', 'item_id'], hidden: [5] });
  assert.deepEqual(b.plan.sparse.map((f) => f.name), ['query_category', 'item_id']);
  assert.deepEqual(b.plan.numeric.map((f) => f.name), ['item_hist_ctr']);
  assert.equal(b.tables.inputDim, 9);
  assert.deepEqual([...b.params.variables.keys()].filter((k) => k.endsWith('kernel')), ['mlp/dense_0/kernel', 'logit_ctr/kernel', 'logit_ctcvr/kernel']);
  assert.deepEqual(b.params.variables.get('mlp/dense_0/kernel')!.shape, [9, 5]);
  disposeBundle(b);
  const yaml = tinyConfigYaml().replace(/^model: .*$/m, 'model: { type: cold, features: [item_id, itm_category] }');
  const r = cli(['config', 'check', writeFile(tempDir(), 'bad.yaml', yaml)]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /model\.features\[1\]: no feature named `itm_category` \(did you mean `item_category`\?\)/);
});

test('CLI: two_tower and cold train, record their cost (features, input width) in run.json and export to ONNX', () => {
  const dir = tempDir();
  // quickstart's 10 features at embedding_dim 16: 8 embedded + 2 numeric
  for (const [type, features, width] of [['two_tower', 10, 8 * 16 + 2], ['cold', 7, 5 * 16 + 2]] as const) {
    const r = cli(['-q', 'train', `configs/models/${type}.yaml`, '--runs-dir', dir, '--set', 'train.epochs=1']);
    assert.equal(r.code, 0, r.stderr);
    const run = r.stdout.trim().split('\n').pop()!;
    const cost = (JSON.parse(readFileSync(path.join(run, 'run.json'), 'utf8')) as { cost: Record<string, number> }).cost;
    assert.equal(cost.features, features, `${type} features`);
    assert.equal(cost.input_width, width, `${type} input width`);
    assert.ok(cost.scoring_us_per_1000! > 0 && cost.dense_parameters! > 0);
    const out = path.join(dir, `${type}.onnx`);
    const e = cli(['-q', 'export', run, '--format', 'onnx', '--out', out]);
    assert.equal(e.code, 0, e.stderr);
    const described = JSON.parse(readFileSync(path.join(dir, 'features.json'), 'utf8')) as { inputs: { name: string }[] };
    assert.equal(described.inputs.length, features, `${type}: features.json lists the features the model reads`);
  }
});

test('CLI: COLD neither reads nor needs the columns of the features it leaves out', async () => {
  const dir = tempDir();
  // the tiny splits without two of the config's feature columns
  await withDuckDB(async (con) => {
    for (const split of ['train', 'valid', 'eval']) {
      await con.run(`COPY (SELECT * EXCLUDE (query_category, user_recent_categories) FROM '${tinyDir}/${split}.parquet') TO '${dir}/${split}.parquet' (FORMAT parquet)`);
    }
  });
  const yaml = tinyConfigYaml()
    .replaceAll(tinyDir, dir)
    .replace(/^model: .*$/m, 'model: { type: cold, embedding_dim: 4, features: [item_id, item_category, item_hist_ctr], hidden: [8] }');
  const r = cli(['-q', 'train', writeFile(dir, 'cold.yaml', yaml), '--runs-dir', dir]);
  assert.equal(r.code, 0, r.stderr);
  const run = r.stdout.trim().split('\n').pop()!;
  assert.equal(cli(['-q', 'eval', run]).code, 0);
  // another model on the same files names the missing column
  const other = cli(['-q', 'train', writeFile(dir, 'mlp.yaml', yaml.replace(/^model: .*$/m, 'model: { type: shared_bottom, embedding_dim: 4 }')), '--runs-dir', dir]);
  assert.equal(other.code, 2);
  assert.match(other.stderr, /train\.parquet: missing column `query_category` \(feature query_category\)/);
});
