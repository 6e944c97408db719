/**
 * The training loop: epochs over streamed, seeded-shuffled minibatches; dense weights by a tfjs
 * optimizer, embedding rows by the sparse optimizer; per-epoch validation into history.csv; early
 * stopping; checkpoints for Ctrl-C and --resume. Same config, seed and backend: same numbers.
 */
import path from 'node:path';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { STAGES, type ExperimentConfig } from '../config/experiment.js';
import { BatchEncoder, encodedBatches, openSplit, type EncodedBatch } from '../data/encode.js';
import { Interrupted, RuntimeFailure } from '../base/errors.js';
import { log } from '../base/log.js';
import { auc, logloss } from '../metrics/classification.js';
import { startProgress } from '../report/progress.js';
import { Rng } from '../base/rng.js';
import { RunFolder, toCsv, writeAtomic } from '../runs/folder.js';
import { loadModel, saveModel } from '../runs/model-io.js';
import { epochBatches, type BatchPlan } from './batches.js';
import { makeDenseOptimizer } from './dense-optimizer.js';
import type { ModelBundle } from '../models/bundle.js';
import { lossRegistry, needsWholeRequests, type LossInputs } from './losses.js';
import { sampleSpaceMask } from './evaluate.js';
import { scoreSplit } from './score.js';

const ADAM_BETA1 = '__adam_acc_beta1';
const ADAM_BETA2 = '__adam_acc_beta2';

export type HistoryRow = Record<string, number | string>;

interface TrainState {
  epoch: number; // epochs fully done
  stepInEpoch: number; // minibatches done in the current epoch
  globalStep: number;
  history: HistoryRow[];
  best: number | null;
  bestEpoch: number | null;
  badEpochs: number;
  /** Running sums of the current epoch, kept in checkpoints so a resumed epoch reports whole. */
  epochSums: { samples: number; steps: number; loss: number; tasks: number[]; extra: number; seconds: number };
}

const emptySums = (tasks: number) => ({ samples: 0, steps: 0, loss: 0, tasks: new Array<number>(tasks).fill(0), extra: 0, seconds: 0 });

export interface TrainOptions {
  /** Set to true (e.g. by SIGINT) to stop after the current step with a checkpoint. */
  stopRequested: () => boolean;
  resume?: boolean;
}

export function batchPlan(config: ExperimentConfig): BatchPlan {
  const keep = STAGES.map((s) => config.tasks.some((t) => t.sample_space.includes(s))) as [boolean, boolean, boolean];
  const sampling = config.sampling.ranking_candidates !== null || config.sampling.prerank_candidates !== null;
  return {
    keepStage: keep,
    wholeRequests: sampling || config.tasks.some((t) => t.losses.some(needsWholeRequests)),
    sampleCounts: [null, config.sampling.ranking_candidates, config.sampling.prerank_candidates],
    batchSize: config.train.batch_size,
    shuffle: config.train.shuffle,
    bufferRows: config.train.shuffle_buffer,
  };
}

/** One-hot request membership [Q, B] for per-request losses. */
function membership(request: Int32Array): { matrix: Float32Array; q: number } {
  const index = new Map<number, number>();
  for (const r of request) if (!index.has(r)) index.set(r, index.size);
  const q = index.size;
  const b = request.length;
  const matrix = new Float32Array(q * b);
  for (let i = 0; i < b; i++) matrix[index.get(request[i]!)! * b + i] = 1;
  return { matrix, q };
}

export class Trainer {
  private readonly optimizer: tf.Optimizer;
  private readonly plan: BatchPlan;
  private readonly needsTeacher: boolean;
  private state: TrainState;

  constructor(
    private readonly bundle: ModelBundle,
    private readonly run: RunFolder,
  ) {
    this.optimizer = makeDenseOptimizer(bundle.config.train.optimizer);
    this.state = { epoch: 0, stepInEpoch: 0, globalStep: 0, history: [], best: null, bestEpoch: null, badEpochs: 0, epochSums: emptySums(bundle.config.tasks.length) };
    this.plan = batchPlan(bundle.config);
    this.needsTeacher = bundle.config.tasks.some((t) => t.losses.some((l) => l.type === 'distill'));
  }

  private get config(): ExperimentConfig {
    return this.bundle.config;
  }

  /** One optimisation step; returns the total and per-task losses. */
  step(mb: EncodedBatch): { total: number; perTask: number[]; extra: number } {
    const { tables, params, model } = this.bundle;
    const config = this.config;
    const B = mb.length;
    const x = tf.tensor2d(tables.lookup(mb), [B, tables.inputDim]);
    const perTaskLoss: tf.Scalar[] = [];
    let extraLoss: tf.Scalar | undefined;
    const keepAlive: tf.Tensor[] = [x];
    let updates: [tf.Variable, tf.Tensor][] = [];
    const dropoutSeed = (config.runtime.seed * 1000003 + this.state.globalStep * 7919) % 2147483647;

    const shared: Omit<LossInputs, 'logits' | 'labels' | 'mask' | 'posWeight'> = {};
    if (this.plan.wholeRequests && mb.request) {
      const { matrix, q } = membership(mb.request);
      shared.requests = tf.tensor2d(matrix, [q, B]);
      shared.exposure = tf.tensor1d(Float32Array.from(mb.labels.get('exposure')!));
      keepAlive.push(shared.requests, shared.exposure);
    }
    if (this.needsTeacher) {
      shared.teacher = new Map([...mb.teacher.entries()].map(([k, v]) => [k, tf.tensor1d(v)]));
      keepAlive.push(...shared.teacher.values());
    }
    const taskTensors = config.tasks.map((t, k) => {
      const labels = tf.tensor1d(Float32Array.from(mb.labels.get(t.label)!));
      const mask = tf.tensor1d(Float32Array.from(sampleSpaceMask(config, mb, k)));
      keepAlive.push(labels, mask);
      return { labels, mask };
    });

    const trainable = params.trainable;
    const { value, grads } = tf.engine().gradients(
      () => {
        const out = model.forward(x, { training: true, dropoutSeed });
        updates = out.updates;
        let total = tf.scalar(0);
        config.tasks.forEach((t, k) => {
          let taskLoss = tf.scalar(0);
          for (const l of t.losses) {
            const inputs: LossInputs = { logits: out.logits[k]!, ...taskTensors[k]!, posWeight: t.pos_weight, ...shared };
            taskLoss = tf.add(taskLoss, tf.mul(lossRegistry[l.type](inputs, l), l.weight));
          }
          perTaskLoss.push(tf.keep(taskLoss));
          total = tf.add(total, tf.mul(taskLoss, t.weight));
        });
        // Model-specific terms (e.g. AITM's calibration), already weighted by the model.
        if (out.extraLoss) {
          extraLoss = tf.keep(out.extraLoss);
          total = tf.add(total, out.extraLoss);
        }
        return total;
      },
      [x, ...trainable],
      undefined,
      true,
    );

    const total = value.dataSync()[0]!;
    const perTask = perTaskLoss.map((l) => l.dataSync()[0]!);
    const extra = extraLoss ? extraLoss.dataSync()[0]! : 0;
    if (extraLoss) keepAlive.push(extraLoss);
    if (!Number.isFinite(total)) {
      tf.dispose([value, ...grads, ...perTaskLoss, ...keepAlive]);
      throw new RuntimeFailure(
        `the loss became ${total} at step ${this.state.globalStep + 1} (epoch ${this.state.epoch + 1}; per task: ${config.tasks.map((t, k) => `${t.name} ${perTask[k]}`).join(', ')}${extraLoss ? `, model term ${extra}` : ''}); lower train.optimizer.lr or set train.grad_clip`,
      );
    }
    const gradX = grads[0]!.dataSync() as Float32Array;
    let dense = grads.slice(1);
    const clip = config.train.grad_clip;
    if (clip !== null) {
      dense = tf.tidy(() => {
        const norm = tf.sqrt(tf.addN(dense.filter(Boolean).map((g) => tf.sum(tf.square(g))))).dataSync()[0]!;
        const scale = norm > clip ? clip / norm : 1;
        return dense.map((g) => (g ? tf.mul(g, scale) : g));
      });
    }
    this.optimizer.applyGradients(trainable.map((v, i) => ({ name: v.name, tensor: dense[i]! })).filter((g) => g.tensor));
    tables.applyGradients(mb, gradX);
    for (const [v, t] of updates) v.assign(t);
    tf.dispose([value, ...grads, ...dense, ...perTaskLoss, ...keepAlive, ...updates.map((u) => u[1])]);
    this.state.globalStep++;
    return { total, perTask, extra };
  }

  /** Rows read from the training files in the current epoch (drives the progress bar). */
  private rowsRead = 0;

  private async *trainBatches(epoch: number): AsyncGenerator<EncodedBatch> {
    const opened = await openSplit(this.config, 'train', undefined, { truth: false });
    const encoder = new BatchEncoder(this.config, this.bundle.plan);
    const rng = new Rng(this.config.runtime.seed, 1000 + epoch);
    this.rowsRead = 0;
    const counted = async function* (this: Trainer, source: AsyncIterable<EncodedBatch>) {
      for await (const b of source) {
        this.rowsRead += b.length;
        yield b;
      }
    }.call(this, encodedBatches(this.config, encoder, opened));
    yield* epochBatches(counted, this.plan, rng);
  }

  private async validate(): Promise<HistoryRow> {
    const scored = await scoreSplit(this.bundle, 'validation');
    const row: HistoryRow = {};
    this.config.tasks.forEach((t, k) => {
      const mask = sampleSpaceMask(this.config, scored.rows, k);
      const labels = scored.rows.labels.get(t.label)!;
      row[`val_${t.name}_auc`] = auc(scored.probs[t.name]!, labels, mask);
      row[`val_${t.name}_logloss`] = logloss(scored.probs[t.name]!, labels, mask);
    });
    return row;
  }

  private checkpointDir(): string {
    return this.run.path('checkpoint');
  }

  private async saveCheckpoint(): Promise<void> {
    // tfjs optimizers match their slots to gradients by position, so names need no mapping.
    const optState = this.state.globalStep > 0 ? await this.optimizer.getWeights() : [];
    // Adam's setWeights recomputes its beta powers as pow(beta, t) while training multiplies them
    // step by step; saving the running values keeps a resumed run bit-identical.
    const adam = this.optimizer as unknown as { accBeta1?: tf.Variable; accBeta2?: tf.Variable };
    if (adam.accBeta1 && adam.accBeta2) optState.push({ name: ADAM_BETA1, tensor: adam.accBeta1 }, { name: ADAM_BETA2, tensor: adam.accBeta2 });
    saveModel(this.checkpointDir(), this.bundle.model.type, this.bundle.params, this.bundle.tables, optState);
    writeAtomic(path.join(this.checkpointDir(), 'state.json'), JSON.stringify(this.state, null, 2));
  }

  /** Loads the checkpoint of an interrupted run. */
  async restore(): Promise<void> {
    const dir = this.checkpointDir();
    const stateFile = path.join(dir, 'state.json');
    if (!existsSync(stateFile)) throw new RuntimeFailure(`${this.run.dir}: no checkpoint to resume from (checkpoint/state.json missing)`);
    const saved = loadModel(dir, this.bundle.params, this.bundle.tables);
    if (saved?.length) {
      const betas = saved.filter((w) => w.name === ADAM_BETA1 || w.name === ADAM_BETA2);
      await this.optimizer.setWeights(saved.filter((w) => !betas.includes(w)));
      const adam = this.optimizer as unknown as { accBeta1?: tf.Variable; accBeta2?: tf.Variable };
      for (const b of betas) (b.name === ADAM_BETA1 ? adam.accBeta1 : adam.accBeta2)?.assign(b.tensor);
    }
    this.state = JSON.parse(readFileSync(stateFile, 'utf8')) as TrainState;
  }

  async fit(opts: TrainOptions): Promise<HistoryRow[]> {
    const config = this.config;
    if (opts.resume) await this.restore();
    const es = config.train.early_stopping;
    const watched = es ? `val_${es.task ?? config.tasks[0]!.name}_${es.metric}` : null;
    const trainRows = (await openSplit(config, 'train', undefined, { truth: false })).tables.reduce((s, t) => s + t.rows, 0);

    for (let epoch = this.state.epoch; epoch < config.train.epochs; epoch++) {
      const started = Date.now();
      const progress = startProgress({ label: `epoch ${epoch + 1}/${config.train.epochs}`, total: trainRows, unit: 'rows' });
      const sums = this.state.epochSums;
      const secondsBefore = sums.seconds;
      let stepIndex = 0;
      for await (const mb of this.trainBatches(epoch)) {
        if (stepIndex++ < this.state.stepInEpoch) continue; // resuming: replay the epoch's order up to where it stopped
        const { total, perTask, extra } = this.step(mb);
        this.state.stepInEpoch++;
        sums.samples += mb.length;
        sums.steps++;
        sums.loss += total;
        perTask.forEach((l, k) => (sums.tasks[k]! += l));
        sums.extra += extra;
        sums.seconds = secondsBefore + (Date.now() - started) / 1000;
        const fields: Record<string, string> = { loss: (sums.loss / sums.steps).toFixed(4) };
        config.tasks.forEach((t, k) => (fields[t.name] = (sums.tasks[k]! / sums.steps).toFixed(4)));
        fields['samples/s'] = Math.round(sums.samples / Math.max(sums.seconds, 1e-3)).toLocaleString('en-US');
        progress.update(this.rowsRead, fields);
        if (opts.stopRequested()) {
          progress.stop();
          await this.saveCheckpoint();
          this.run.update({ status: 'interrupted', progress: this.progressInfo() });
          throw new Interrupted(`interrupted at epoch ${epoch + 1}, step ${this.state.stepInEpoch}; checkpoint saved. Resume with: resflow train --resume ${this.run.dir}`);
        }
      }
      const { samples, steps } = sums;
      const lossSum = sums.loss;
      const taskSums = sums.tasks;
      const seconds = secondsBefore + (Date.now() - started) / 1000;
      progress.stop(`epoch ${epoch + 1}/${config.train.epochs}: ${samples.toLocaleString('en-US')} samples in ${seconds.toFixed(1)}s (${Math.round(samples / Math.max(seconds, 1e-3)).toLocaleString('en-US')} samples/s), loss ${(lossSum / Math.max(steps, 1)).toFixed(4)}`);
      const row: HistoryRow = { epoch: epoch + 1, steps: this.state.globalStep, samples, seconds: Number(seconds.toFixed(3)), train_loss: lossSum / Math.max(steps, 1) };
      config.tasks.forEach((t, k) => (row[`train_${t.name}_loss`] = taskSums[k]! / Math.max(steps, 1)));
      if (sums.extra !== 0) row.train_model_term = sums.extra / Math.max(steps, 1);
      if (config.data.validation) {
        const val = await this.validate();
        Object.assign(row, val);
        log.info(`  validation: ${Object.entries(val).map(([k, v]) => `${k.replace(/^val_/, '')} ${Number(v).toFixed(4)}`).join(', ')}`);
      }
      this.state.history.push(row);
      this.state.epoch = epoch + 1;
      this.state.stepInEpoch = 0;
      this.state.epochSums = emptySums(config.tasks.length);
      this.run.writeText('history.csv', toCsv(this.state.history));

      let improved = true;
      if (watched) {
        const value = Number(row[watched]);
        const better = es!.metric === 'auc' ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
        improved = this.state.best === null || better(value, this.state.best);
        if (improved) {
          this.state.best = value;
          this.state.bestEpoch = epoch + 1;
          this.state.badEpochs = 0;
        } else this.state.badEpochs++;
      }
      // The model folder always holds the best (or latest) finished epoch.
      if (improved) saveModel(this.run.path('model'), this.bundle.model.type, this.bundle.params, this.bundle.tables);
      this.run.update({ progress: this.progressInfo() });
      if (watched && this.state.badEpochs >= es!.patience) {
        log.info(`early stopping: ${watched} has not improved for ${es!.patience} epoch(s); keeping epoch ${this.state.bestEpoch}`);
        break;
      }
    }
    if (watched && this.state.bestEpoch !== this.state.epoch) loadModel(this.run.path('model'), this.bundle.params, this.bundle.tables);
    // A finished run's mid-epoch checkpoint is stale; the model folder holds the result.
    rmSync(this.checkpointDir(), { recursive: true, force: true });
    return this.state.history;
  }

  private progressInfo() {
    return { epoch: this.state.epoch, step_in_epoch: this.state.stepInEpoch, global_step: this.state.globalStep };
  }
}
