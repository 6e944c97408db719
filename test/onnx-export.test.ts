/**
 * ONNX export (docs/serving.md) checked by a real runtime: every model type of configs/models/, with
 * weights drawn at random (biases, PReLU slopes and batch-norm moving statistics included, so each
 * part of the graph matters), is exported and run in onnxruntime-node on the eval split of the tiny
 * data; its probabilities and fused score equal resflow's own to 1e-5. List features with padding
 * (mean and sum pooling), batch norm, relu, residual variants and multiplicative fusion are covered.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadExperiment } from '../src/app/load-experiment.js';
import { buildBundle, disposeBundle, predict, type ModelBundle } from '../src/models/bundle.js';
import { BatchEncoder, openSplit } from '../src/data/encode.js';
import { readBatches } from '../src/data/reader.js';
import { fuseScores } from '../src/metrics/fusion.js';
import { buildOnnx } from '../src/export/onnx.js';
import { decodeModel } from '../src/export/onnx-proto.js';
import { Rng } from '../src/base/rng.js';
import { repoRoot } from './helpers/fixtures.js';
import { feedsFor, loadOrt, type Ort } from './helpers/ort.js';

let ort: Ort | null = null;
let skip: string | false = 'not loaded yet';

before(async () => {
  await initBackend('wasm');
  ({ ort, reason: skip } = await loadOrt());
});

/**
 * Trained-like weights: the kernels keep their Glorot initialisation; biases, PReLU slopes, batch-norm
 * statistics and embeddings are drawn away from their initial values, so each part of the graph matters.
 */
function randomize(bundle: ModelBundle, seed: number): void {
  const rng = new Rng(seed, 9);
  const u = (lo: number, hi: number) => lo + (hi - lo) * rng.next();
  for (const [name, v] of bundle.params.variables) {
    if (name.endsWith('kernel')) continue;
    const draw = name.endsWith('bn_moving_variance') ? () => u(0.3, 2) : name.endsWith('bn_gamma') ? () => u(0.5, 1.5) : name.endsWith('prelu_alpha') ? () => u(0, 0.5) : () => u(-0.2, 0.2);
    v.assign(tf.tensor(Float32Array.from({ length: v.size }, draw), v.shape));
  }
  for (const t of bundle.tables.tables) for (let i = 0; i < t.weights.length; i++) t.weights[i] = u(-0.3, 0.3);
}

interface Case {
  config: string;
  set?: string[];
}

async function checkEqual(c: Case): Promise<{ rows: number; padded: number; emptyLists: number; hasList: boolean }> {
  const { config } = loadExperiment(path.join(repoRoot, 'configs/models', c.config), { overrides: c.set ?? [] });
  const bundle = buildBundle(config);
  try {
    randomize(bundle, 7);
    const { model, features } = buildOnnx(bundle, 'model.onnx');
    const session = await ort!.InferenceSession.create(model);
    const opened = await openSplit(config, 'eval');
    const encoder = new BatchEncoder(config, bundle.plan);
    let rows = 0;
    let padded = 0;
    let emptyLists = 0;
    const listIndex = bundle.plan.sparse.findIndex((f) => f.kind === 'list');
    for (const t of opened.tables) {
      for await (const raw of readBatches(t, opened.needs, 4096)) {
        const batch = encoder.encode(raw, t.file);
        const ours = await predict(bundle, batch);
        const byTask = Object.fromEntries(bundle.taskNames.map((name, k) => [name, ours[k]!]));
        const fused = fuseScores(byTask, config.fusion.mode, config.fusion.weights);
        const out = await session.run(feedsFor(ort!, features, batch, raw));
        bundle.taskNames.forEach((name, k) => assertClose(out[`p_${name}`]!.data as Float32Array, ours[k]!, `${c.config} ${c.set ?? ''} p_${name}`, rows));
        assertClose(out.fused!.data as Float32Array, fused, `${c.config} ${c.set ?? ''} fused`, rows);
        if (listIndex >= 0) {
          const ids = batch.ids[listIndex]!;
          const w = bundle.plan.sparse[listIndex]!.width;
          for (let i = 0; i < batch.length; i++) {
            if (ids[i * w + w - 1] === -1) padded++;
            if (ids[i * w] === -1) emptyLists++;
          }
        }
        rows += batch.length;
      }
    }
    await session.release();
    return { rows, padded, emptyLists, hasList: listIndex >= 0 };
  } finally {
    disposeBundle(bundle);
  }
}

let worstSeen = 0;

function assertClose(got: Float32Array, want: Float32Array | Float64Array, what: string, offset: number): void {
  assert.equal(got.length, want.length, `${what}: rows`);
  let worst = 0;
  let at = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i]! - want[i]!);
    if (!(d <= worst)) (worst = d), (at = i);
  }
  worstSeen = Math.max(worstSeen, worst);
  assert.ok(worst <= 1e-5, `${what}: ONNX differs from resflow by ${worst} at eval row ${offset + at} (${got[at]} vs ${want[at]})`);
}

const CASES: Case[] = [
  { config: 'resflow.yaml' },
  { config: 'resflow.yaml', set: ['model.activation=relu', 'model.batch_norm=true', 'model.residual=feature', 'fusion.mode=multiplicative', 'fusion.weights.ctcvr=3'] },
  { config: 'resflow.yaml', set: ['model.residual=logit', 'features[7].pooling=sum', 'fusion.weights.ctr=0'] },
  { config: 'shared_bottom.yaml', set: ['model.batch_norm=true'] },
  { config: 'omoe.yaml' },
  { config: 'mmoe.yaml', set: ['model.activation=relu'] },
  { config: 'ple.yaml' },
  { config: 'ple.yaml', set: ['model.levels=1', 'model.batch_norm=true'] },
  { config: 'esmm.yaml' },
  { config: 'aitm.yaml' },
  { config: 'aitm.yaml', set: ['model.batch_norm=true'] },
  { config: 'two_tower.yaml' },
  // towers over interleaved features: several column runs per tower, concatenated in the graph
  {
    config: 'two_tower.yaml',
    set: ['model.user_tower.features=[user_id,query_category,item_brand,item_price]', 'model.item_tower.features=[user_segment,query_id,item_id,item_category,user_recent_categories,item_hist_ctr]', 'model.batch_norm=true', 'model.activation=relu', 'model.item_tower.hidden=[]'],
  },
  { config: 'cold.yaml' },
  { config: 'cold.yaml', set: ['model.features=[user_recent_categories,item_id,item_price]', 'model.batch_norm=true'] },
];

for (const c of CASES) {
  test(`ONNX export of ${c.config}${c.set ? ` (${c.set.join(', ')})` : ''} scores the eval split as resflow does, to 1e-5`, { skip: false }, async (t) => {
    if (skip) return t.skip(skip);
    const { rows, padded, emptyLists, hasList } = await checkEqual(c);
    assert.equal(rows, 9004, 'every eval row scored');
    t.diagnostic(`largest difference ${worstSeen.toExponential(2)}`);
    worstSeen = 0;
    if (hasList) assert.ok(padded > 0 && emptyLists > 0, `the eval split has padded lists (${padded}) and empty ones (${emptyLists})`);
  });
}

test('the exported file is an ONNX model of opset 17 whose inputs and outputs features.json names', async (t) => {
  const { config } = loadExperiment(path.join(repoRoot, 'configs/models/ple.yaml'));
  const bundle = buildBundle(config);
  try {
    const { model, features } = buildOnnx(bundle, 'model.onnx');
    const m = decodeModel(model) as { ir_version: number; producer_name: string; opset_import: { version: number }[]; graph: { input: { name: string }[]; output: { name: string }[]; initializer: { name: string; dims: number[] }[] } };
    assert.equal(m.ir_version, 8);
    assert.equal(m.producer_name, 'resflow');
    assert.deepEqual(m.opset_import.map((o) => o.version), [17]);
    assert.deepEqual(m.graph.input.map((i) => i.name), features.inputs.map((f) => f.name));
    assert.deepEqual(m.graph.output.map((o) => o.name), ['p_ctr', 'p_ctcvr', 'fused']);
    const item = m.graph.initializer.find((i) => i.name === 'embedding/item_id')!;
    assert.deepEqual(item.dims, [50001, 16], 'the item table is an initializer: buckets + null row, embedding_dim');
    const list = features.inputs.find((f) => f.name === 'user_recent_categories')!;
    assert.deepEqual([list.kind, list.max_len, list.pad, list.pooling, list.buckets, list.null_row], ['list', 8, -1, 'mean', 256, 256]);
    assert.equal(features.inputs.find((f) => f.name === 'item_price')!.transform, 'log1p');
    if (skip) return t.skip(skip);
    const session = await ort!.InferenceSession.create(model);
    await session.release();
  } finally {
    disposeBundle(bundle);
  }
});
