/**
 * The `webgpu` backend (README.md, "Backends"). Without the optional packages or any WebGPU adapter
 * the training comparison skips and says why; the other tests run everywhere. With a software
 * adapter (lavapipe or Mesa's GL path, README.md says how) a few training steps and the scores
 * after them must match the `cpu` backend: every step's losses to 1e-5 (absolute), every score to
 * 1e-5 (absolute). float32 sums in another order differ in the last bits; a missing or wrong
 * kernel differs by orders of magnitude more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { adapterRecord, activateWebgpu, webgpuAdapter } from '../src/kernels/webgpu.js';
import { loadExperiment } from '../src/app/load-experiment.js';
import { buildBundle, disposeBundle, predict } from '../src/models/bundle.js';
import { BatchEncoder, encodedBatches, openSplit, type EncodedBatch } from '../src/data/encode.js';
import { Trainer } from '../src/train/trainer.js';
import { RunFolder } from '../src/runs/folder.js';
import { cli, tempDir, tinyConfigYaml, writeFile } from './helpers/fixtures.js';

const STEPS = 6;
const TOLERANCE = 1e-5;

const probe = await webgpuAdapter();
const skipTraining = probe.ok ? false : `webgpu cannot run here: ${probe.reason}`;

function fakeAdapter(info: Record<string, unknown>, features: string[] = ['core-features-and-limits']) {
  return { info, features: new Set(features), limits: {}, requestDevice: () => Promise.resolve(null) } as unknown as Parameters<typeof adapterRecord>[0];
}

test('adapter records: software adapters are recognised whether or not Dawn flags them as fallback', () => {
  const lavapipe = adapterRecord(fakeAdapter({ vendor: 'mesa', architecture: 'software', device: 'llvmpipe', description: 'llvmpipe: Mesa 25.0.7', isFallbackAdapter: true }), []);
  assert.equal(lavapipe.software, true);
  assert.equal(lavapipe.is_fallback_adapter, true);
  // Mesa's GL path: not flagged as a fallback adapter, but llvmpipe renders on the CPU
  const gl = adapterRecord(fakeAdapter({ vendor: '', architecture: '', device: 'llvmpipe-llvm-15-0-6-256-bits-', description: 'OpenGL version OpenGL ES 3.2 Mesa 22.3.6', isFallbackAdapter: false }, []), ['backend=opengles']);
  assert.deepEqual([gl.software, gl.is_fallback_adapter, gl.feature_level, gl.dawn_options], [true, false, 'compatibility', ['backend=opengles']]);
  const nvidia = adapterRecord(fakeAdapter({ vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H200', description: 'NVIDIA: 550.54', isFallbackAdapter: false }), []);
  assert.deepEqual([nvidia.software, nvidia.feature_level], [false, 'core']);
});

test('--backend webgpu without an adapter (or without the packages) exits 2 naming what is missing, before a run folder is made', () => {
  const dir = tempDir();
  const cfg = writeFile(dir, 'exp.yaml', tinyConfigYaml());
  // no Vulkan driver for the loader and no Dawn options: Dawn finds no adapter
  const env = { VK_ICD_FILENAMES: '/nonexistent/none.json', VK_DRIVER_FILES: '/nonexistent/none.json', RESFLOW_WEBGPU_OPTIONS: '' };
  const r = cli(['train', cfg, '--backend', 'webgpu', '--runs-dir', dir + '/runs'], { env });
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /backend 'webgpu' is not available: (the optional package '(webgpu|@tensorflow\/tfjs-backend-webgpu)' is not installed|Dawn found no WebGPU adapter)/);
  // (Dawn prints its own warnings, with the C++ source line, to stderr; no JavaScript stack trace)
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+:\d+/, 'no stack trace without --verbose');
  assert.equal(existsSync(path.join(dir, 'runs', 'test')), false, 'no run folder');
});

/** STEPS training steps on the current backend, then the scores of two more batches. */
async function shortRun(batches: EncodedBatch[]): Promise<{ losses: number[][]; scores: Float32Array[] }> {
  const cfg = loadExperiment(writeFile(tempDir(), 'exp.yaml', tinyConfigYaml()), { overrides: ['model.activation=prelu', 'train.optimizer.lr=0.01'] }).config;
  const bundle = buildBundle(cfg);
  const trainer = new Trainer(bundle, RunFolder.create(tempDir(), cfg));
  const losses: number[][] = [];
  for (const mb of batches.slice(0, STEPS)) {
    const l = await trainer.step(mb);
    losses.push([l.total, ...l.perTask]);
  }
  const scores: Float32Array[] = [];
  for (const mb of batches.slice(STEPS)) scores.push(...(await predict(bundle, mb)));
  disposeBundle(bundle);
  return { losses, scores };
}

test('webgpu trains and scores as cpu does: losses of 6 steps and the scores after them within 1e-5', { skip: skipTraining }, async (t) => {
  await initBackend('cpu');
  const cfg = loadExperiment(writeFile(tempDir(), 'exp.yaml', tinyConfigYaml()), {}).config;
  const batches: EncodedBatch[] = [];
  for await (const mb of encodedBatches(cfg, new BatchEncoder(cfg, buildBundle(cfg).plan), await openSplit(cfg, 'train'), 256)) if (batches.push(mb) >= STEPS + 2) break;

  const cpu = await shortRun(batches);
  const info = await initBackend('webgpu');
  assert.equal(tf.getBackend(), 'webgpu');
  assert.ok(info.adapter, 'the adapter is recorded');
  const gpu = await shortRun(batches);
  await initBackend('cpu');

  let worstLoss = 0;
  cpu.losses.forEach((row, s) => row.forEach((v, i) => (worstLoss = Math.max(worstLoss, Math.abs(v - gpu.losses[s]![i]!)))));
  let worstScore = 0;
  cpu.scores.forEach((p, k) => p.forEach((v, i) => (worstScore = Math.max(worstScore, Math.abs(v - gpu.scores[k]![i]!)))));
  t.diagnostic(`${info.detail}: largest loss difference ${worstLoss.toExponential(2)}, largest score difference ${worstScore.toExponential(2)}`);
  assert.ok(worstLoss <= TOLERANCE, `largest loss difference ${worstLoss}`);
  assert.ok(worstScore <= TOLERANCE, `largest score difference ${worstScore}`);
  // the run learned something (the comparison is not between two untrained models)
  assert.ok(cpu.losses[STEPS - 1]![0]! < cpu.losses[0]![0]!, 'the loss fell');
});

test('auto never takes a software adapter', { skip: skipTraining || (probe.ok && !probe.adapter.software ? 'the adapter here is a hardware one' : false) }, async () => {
  const r = await activateWebgpu(false);
  assert.equal(r.ok, false);
  assert.match(r.ok ? '' : r.reason, /software/);
});
