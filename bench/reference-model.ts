/**
 * The reference model shared by the speed benchmarks: 20 categorical fields,
 * vocabulary 10,000, dimension 16, ResFlow towers 256 -> 128, 2 tasks, Adam; random batches.
 */
import { validate, type SchemaIssue } from '../src/config/schema.js';
import { experimentSchema, type ExperimentConfig } from '../src/config/experiment.js';
import type { EncodedBatch } from '../src/data/encode.js';
import { Rng as RngClass, type Rng } from '../src/base/rng.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setupBackend } from '../src/app/backend.js';
import { silentReporter } from '../src/app/reporter.js';
import { buildBundle, type ModelBundle } from '../src/models/bundle.js';
import { Trainer } from '../src/train/trainer.js';
import { RunFolder } from '../src/runs/folder.js';

export const FIELDS = 20;
export const VOCAB = 10_000;

export function benchConfig(batch: number): ExperimentConfig {
  const raw = {
    name: 'bench',
    data: { train: 'unused', columns: { labels: { click: 'click', purchase: 'purchase' } } },
    features: Array.from({ length: FIELDS }, (_, i) => ({ name: `f${i}`, buckets: VOCAB })),
    tasks: [
      { name: 'ctr', label: 'click' },
      { name: 'ctcvr', label: 'purchase' },
    ],
    model: { type: 'resflow', embedding_dim: 16, hidden: [256, 128], activation: 'relu' },
    train: { batch_size: batch, optimizer: { type: 'adam', lr: 1e-3 } },
    eval: { metrics: ['auc'] },
  };
  const issues: SchemaIssue[] = [];
  const config = validate(experimentSchema, raw, [], issues) as ExperimentConfig;
  if (issues.length) throw new Error(JSON.stringify(issues));
  return config;
}

/** n rows of uniform random ids; click ~ Bernoulli(0.1), purchase = click and Bernoulli(0.2). */
export function randomBatch(rng: Rng, n: number): EncodedBatch {
  const click = Uint8Array.from({ length: n }, () => (rng.next() < 0.1 ? 1 : 0));
  const purchase = Uint8Array.from(click, (c) => (c && rng.next() < 0.2 ? 1 : 0));
  return {
    length: n,
    ids: Array.from({ length: FIELDS }, () => Int32Array.from({ length: n }, () => rng.int(VOCAB))),
    numeric: new Float32Array(0),
    labels: new Map([
      ['click', click],
      ['purchase', purchase],
      ['exposure', new Uint8Array(n).fill(1)],
    ]),
    stage: new Uint8Array(n),
    request: null,
    user: null,
    teacher: new Map(),
    truth: new Map(),
  };
}

/**
 * Dense FLOPs per sample of a model bundle, counted from its weight shapes: every `…/kernel`
 * [in, out] costs 2·in·out in the forward pass; a training step adds the weight and input gradients
 * (2·in·out each) and the bias gradient (2·out per `…/bias`, a column sum). For the reference model
 * these are the 0.459 and 1.379 MFLOP the performance notes use (PyTorch's reference counts the same
 * from its Linear layers, bench/torch_ref.py).
 */
export function denseFlopsPerSample(variables: Map<string, { shape: number[] }>): { score: number; train: number } {
  let fwd = 0;
  let bias = 0;
  for (const [name, v] of variables) {
    if (name.endsWith('/kernel') && v.shape.length === 2) fwd += 2 * v.shape[0]! * v.shape[1]!;
    else if (name.endsWith('/bias')) bias += 2 * v.shape.reduce((a, b) => a * b, 1);
  }
  return { score: fwd, train: 3 * fwd + bias };
}

/** The reference model ready to train: its backend set up, a trainer over a scratch run folder, and 8 seeded random batches. */
export async function referenceTrainer(batch: number, backendName: string, threads?: string): Promise<{ config: ExperimentConfig; backend: string; bundle: ModelBundle; trainer: Trainer; batches: EncodedBatch[] }> {
  const config = benchConfig(batch);
  if (threads !== undefined) config.runtime.threads = Number(threads);
  const backend = await setupBackend(config, silentReporter, backendName);
  const bundle = buildBundle(config);
  const trainer = new Trainer(bundle, RunFolder.create(mkdtempSync(path.join(tmpdir(), 'resflow-bench-')), config));
  const rng = new RngClass(1);
  return { config, backend, bundle, trainer, batches: Array.from({ length: 8 }, () => randomBatch(rng, batch)) };
}
