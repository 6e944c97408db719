/**
 * The training loop: epochs over streamed, seeded-shuffled minibatches; dense weights by a tfjs
 * optimizer, embedding rows by the sparse optimizer; per-epoch validation through the metric
 * registry; checkpoints for --resume. What reacts to training (progress, history.csv, the model
 * folder, interrupts, periodic checkpoints, early stopping) plugs in as callbacks (./callbacks.ts).
 * Same config, seed and backend: same numbers, whether or not the run was checkpointed and resumed.
 */
import * as tf from '@tensorflow/tfjs';
import { STAGES, type ExperimentConfig } from '../config/experiment.js';
import { BatchEncoder, openSplit, planFeatures, type EncodedBatch } from '../data/encode.js';
import { labelledBatches } from '../data/rank-labels.js';
import { DataError, RuntimeFailure } from '../base/errors.js';
import { Rng } from '../base/rng.js';
import { throttledYield } from '../base/yield.js';
import { readAhead } from '../base/read-ahead.js';
import { readTensors } from '../kernels/read-back.js';
import { float32Values } from '../kernels/wasm-heap.js';
import type { MetricRecord } from '../metrics/registry.js';
import type { RunFolder } from '../runs/folder.js';
import { checkpointDir, hasCheckpoint, readCheckpointState, writeCheckpoint, type CheckpointState } from '../runs/checkpoint.js';
import { loadModel, modelFiles } from '../runs/model-io.js';
import { epochBatches, type BatchPlan } from '../data/batches.js';
import { validate, validationColumns, validationMetrics } from '../eval/validation.js';
import { decayWeights, learningRateOf, makeDenseOptimizer, setLearningRate } from './dense-optimizer.js';
import type { ModelBundle } from '../models/bundle.js';
import { programForward } from '../models/dense-program-train.js';
import { needsWholeRequests, singlePointwiseTasks, taskLoss as lossOf, weightedObjective, type LossInputs } from './losses.js';
import { TaskTargets, membership } from './task-targets.js';
import { programStep } from './program-step.js';
import { CallbackList, type EpochSums, type HistoryRow, type TrainerCallback } from './callbacks.js';
import type { EarlyStoppingState } from './early-stopping.js';
import { LossBalancer, checkedBalancing, taskGradientNorms } from './loss-balancing.js';

export type { HistoryRow } from './callbacks.js';

const ADAM_BETA1 = '__adam_acc_beta1';
const ADAM_BETA2 = '__adam_acc_beta2';
/** What a checkpoint's state.json holds (runs/checkpoint.ts owns its format). */
type TrainState = CheckpointState;

const emptySums = (tasks: number): EpochSums => ({ samples: 0, steps: 0, loss: 0, tasks: new Array<number>(tasks).fill(0), extra: 0, seconds: 0 });

export interface StepLosses {
  total: number;
  perTask: number[];
  extra: number;
}

/** A step's forward and backward pass: what the updates need and what the step must free. */
export interface ForwardBackward {
  losses: StepLosses;
  /** Gradient of the model input [B * inputDim]; on wasm a view of the heap, no copy: read it where used (after any allocation). */
  readonly gradX: Float32Array;
  /** Gradients of params.trainable, in order. */
  denseGrads: tf.Tensor[];
  /** Gradients of the loss balancer's variables (uncertainty weighting's s_t), in order; empty otherwise. */
  balancingGrads: tf.Tensor[];
  /** Model state updates (e.g. batch-norm statistics) to assign after the step. */
  updates: [tf.Variable, tf.Tensor][];
  release: tf.Tensor[];
}

export interface FitOptions {
  /** Carry on from the run's checkpoint. */
  resume?: boolean;
  /** Called in order; see runCallbacks for the run folder's own. */
  callbacks?: readonly TrainerCallback[];
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

export class Trainer {
  private readonly optimizer: tf.Optimizer;
  private readonly plan: BatchPlan;
  private readonly needsTeacher: boolean;
  private state: TrainState;
  /** train.loss_balancing; `fixed` keeps the loop's own weighting. */
  readonly balancer: LossBalancer;

  constructor(
    readonly bundle: ModelBundle,
    readonly run: RunFolder,
  ) {
    this.optimizer = makeDenseOptimizer(bundle.config.train.optimizer);
    this.state = { epoch: 0, stepInEpoch: 0, globalStep: 0, history: [], best: null, bestEpoch: null, badEpochs: 0, epochSums: emptySums(bundle.config.tasks.length) };
    this.plan = batchPlan(bundle.config);
    this.needsTeacher = bundle.config.tasks.some((t) => t.losses.some((l) => l.type === 'distill'));
    this.balancer = new LossBalancer(bundle.config);
  }

  private get config(): ExperimentConfig {
    return this.bundle.config;
  }

  /** The finished epochs' rows (the schedule replays plateau decays from them). */
  get history(): readonly HistoryRow[] {
    return this.state.history;
  }

  /** The dense optimizer's current learning rate. */
  get learningRate(): number {
    return learningRateOf(this.optimizer);
  }

  /** Sets the dense and the embedding optimizer's learning rates to their configured lr times `factor` (train/lr-schedule.ts). */
  setLearningRateFactor(factor: number): void {
    const train = this.config.train;
    setLearningRate(this.optimizer, train.optimizer.lr * factor);
    this.bundle.tables.learningRate = (train.embedding_optimizer ?? train.optimizer).lr * factor;
  }

  /** Early stopping's best value and epoch, part of the checkpointed state. */
  get earlyStoppingState(): EarlyStoppingState {
    return this.state;
  }

  /** One optimisation step: the parts below in order; returns the total and per-task losses. */
  async step(mb: EncodedBatch): Promise<StepLosses> {
    const x = this.embed(mb);
    const pass = await this.forwardBackward(mb, x);
    const dense = await this.denseUpdate(pass);
    this.sparseUpdate(mb, pass);
    this.finishStep(pass, dense);
    return pass.losses;
  }

  /** Embedding lookup: the batch's model input [B, inputDim] (on wasm written into the heap, no copy). */
  embed(mb: EncodedBatch): tf.Tensor2D {
    return this.bundle.tables.lookupTensor(mb);
  }

  /**
   * Forward and backward pass: the losses (read back, checked finite) and the gradients of the
   * model input and of every trainable dense weight. Takes ownership of `x`.
   */
  async forwardBackward(mb: EncodedBatch, x: tf.Tensor2D): Promise<ForwardBackward> {
    const { params, model } = this.bundle;
    const config = this.config;
    const B = mb.length;
    const perTaskLoss: tf.Tensor[] = []; // a scalar per task, or one [T] tensor (the stacked objective)
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
    const targets = new TaskTargets(config, mb, keepAlive);

    const trainable = params.trainable;
    /** Task k's loss terms, unweighted. */
    const lossTerms = (logits: tf.Tensor1D, k: number): tf.Scalar[] => {
      const t = config.tasks[k]!;
      const inputs: LossInputs = { logits, ...targets.task(k), posWeight: t.pos_weight, ...shared };
      return t.losses.map((l) => lossOf(inputs, l, keepAlive));
    };
    const taskLossOf = (z: tf.Tensor1D, k: number): tf.Scalar => lossTerms(z, k).reduce((sum: tf.Scalar, term, l) => tf.add(sum, tf.mul(term, config.tasks[k]!.losses[l]!.weight)), tf.scalar(0));
    const balanced = this.balancer.mode !== 'fixed';
    // Fixed weights, one pointwise loss per task, a training program: the pass without the tape (program-step.ts).
    const direct = !balanced && singlePointwiseTasks(config.tasks) ? programStep(model, x, () => targets.stacked(), config.tasks, trainable) : null;
    if (direct !== null) perTaskLoss.push(direct.perTask);
    const { value, grads } = direct ?? tf.engine().gradients(
      () => {
        const out = programForward(model, x) ?? model.forward(x, { training: true, dropoutSeed });
        updates = out.updates;
        let total: tf.Scalar;
        if (balanced) {
          for (let k = 0; k < config.tasks.length; k++) perTaskLoss.push(tf.keep(taskLossOf(out.logits[k]!, k)));
          total = this.balancer.combine(perTaskLoss as tf.Scalar[]);
        } else {
          const objective = weightedObjective(config.tasks.map((_, k) => lossTerms(out.logits[k]!, k)), config.tasks);
          perTaskLoss.push(...objective.perTask);
          total = objective.total;
        }
        // Model-specific terms (e.g. AITM's calibration), already weighted by the model.
        if (out.extraLoss) {
          extraLoss = tf.keep(out.extraLoss);
          total = tf.add(total, out.extraLoss);
        }
        return total;
      },
      [x, ...trainable, ...this.balancer.variables],
      undefined,
      true,
    );

    await readTensors([value, ...perTaskLoss, extraLoss, grads[0]]);
    const total = value.dataSync()[0]!;
    const perTask = perTaskLoss.flatMap((l) => Array.from(l.dataSync()));
    const extra = extraLoss ? extraLoss.dataSync()[0]! : 0;
    if (extraLoss) keepAlive.push(extraLoss);
    if (!Number.isFinite(total)) {
      tf.dispose([value, ...grads, ...perTaskLoss, ...keepAlive]);
      throw new RuntimeFailure(
        `the loss became ${total} at step ${this.state.globalStep + 1} (epoch ${this.state.epoch + 1}; per task: ${config.tasks.map((t, k) => `${t.name} ${perTask[k]}`).join(', ')}${extraLoss ? `, model term ${extra}` : ''}); lower train.optimizer.lr or set train.grad_clip`,
      );
    }
    if (this.balancer.mode === 'gradnorm') this.balancer.updateWeights(perTask, await taskGradientNorms(model, x, dropoutSeed, config.tasks.length, taskLossOf));
    const nDense = trainable.length;
    return {
      losses: { total, perTask, extra },
      get gradX() { return float32Values(grads[0]!); },
      denseGrads: grads.slice(1, 1 + nDense),
      balancingGrads: grads.slice(1 + nDense),
      updates,
      release: [value, ...grads, ...perTaskLoss, ...keepAlive],
    };
  }

  /** Dense update: optional global-norm clipping, then the dense optimizer. Returns the clipped gradients. */
  async denseUpdate(pass: ForwardBackward): Promise<tf.Tensor[]> {
    let dense = pass.denseGrads;
    const clip = this.config.train.grad_clip;
    if (clip !== null) {
      const normT = tf.tidy(() => tf.sqrt(tf.addN(dense.filter(Boolean).map((g) => tf.sum(tf.square(g))))));
      await readTensors([normT]);
      const norm = normT.dataSync()[0]!;
      normT.dispose();
      const scale = norm > clip ? clip / norm : 1;
      dense = tf.tidy(() => dense.map((g) => (g ? tf.mul(g, scale) : g)));
    }
    const decay = this.config.train.optimizer.weight_decay;
    if (decay > 0) decayWeights(this.bundle.params.trainable, dense, 1 - this.learningRate * decay);
    const balancing = this.balancer.variables.map((v, i) => ({ name: v.name, tensor: pass.balancingGrads[i]! }));
    this.optimizer.applyGradients([...this.bundle.params.trainable.map((v, i) => ({ name: v.name, tensor: dense[i]! })).filter((g) => g.tensor), ...balancing]);
    return dense;
  }

  /** Sparse update: the embedding rows of the batch, from the input gradient. */
  sparseUpdate(mb: EncodedBatch, pass: ForwardBackward): void {
    this.bundle.tables.applyGradients(mb, pass.gradX);
  }

  /** Applies the model's state updates (batch-norm statistics), frees the step's tensors and counts the step. */
  finishStep(pass: ForwardBackward, dense: tf.Tensor[]): void {
    for (const [v, t] of pass.updates) v.assign(t);
    tf.dispose([...pass.release, ...dense, ...pass.updates.map((u) => u[1])]);
    this.state.globalStep++;
  }

  /** Rows read from the training files in the current epoch (drives the progress bar). */
  private rowsRead = 0;

  /** Turns the event loop now and then, so a signal handler can ask for a stop (base/yield.ts). */
  private readonly letEventsIn = throttledYield();

  /** `between` runs after each read batch: a safe point (no step in progress; the read-ahead below it may overlap one). */
  private async *trainBatches(epoch: number, between: () => Promise<void>): AsyncGenerator<EncodedBatch> {
    const opened = await openSplit(this.config, 'train', undefined, { truth: false, features: planFeatures(this.bundle.plan) });
    const encoder = new BatchEncoder(this.config, this.bundle.plan);
    const rng = new Rng(this.config.runtime.seed, 1000 + epoch);
    this.rowsRead = 0;
    const counted = async function* (this: Trainer, source: AsyncIterable<EncodedBatch>) {
      for await (const b of source) {
        this.rowsRead += b.length;
        await between();
        yield b;
      }
    }.call(this, readAhead(labelledBatches(this.config, encoder, opened)));
    yield* epochBatches(counted, this.plan, rng);
  }

  checkpointDir(): string {
    return checkpointDir(this.run.dir);
  }

  /** Saves weights, optimizer slots and the loop state into the checkpoint folder. */
  async saveCheckpoint(): Promise<void> {
    // tfjs optimizers match their slots to gradients by position, so names need no mapping.
    const optState = this.state.globalStep > 0 ? await this.optimizer.getWeights() : [];
    // Adam's setWeights recomputes its beta powers as pow(beta, t) while training multiplies them
    // step by step; saving the running values keeps a resumed run bit-identical.
    const adam = this.optimizer as unknown as { accBeta1?: tf.Variable; accBeta2?: tf.Variable };
    if (adam.accBeta1 && adam.accBeta2) optState.push({ name: ADAM_BETA1, tensor: adam.accBeta1 }, { name: ADAM_BETA2, tensor: adam.accBeta2 });
    await readTensors([...this.bundle.params.variables.values(), ...optState.map((w) => w.tensor), ...this.balancer.variables]);
    const balancing = this.balancer.state();
    writeCheckpoint(this.run.dir, modelFiles(this.bundle.model.type, this.bundle.params, this.bundle.tables, optState), balancing ? { ...this.state, balancing } : this.state);
  }

  /** Loads the checkpoint of an interrupted run. */
  async restore(): Promise<void> {
    const dir = this.checkpointDir();
    if (!hasCheckpoint(this.run.dir)) throw new RuntimeFailure(`${this.run.dir}: no checkpoint to resume from (checkpoint/state.json missing)`);
    const saved = loadModel(dir, this.bundle.params, this.bundle.tables);
    if (saved?.length) {
      const betas = saved.filter((w) => w.name === ADAM_BETA1 || w.name === ADAM_BETA2);
      const slots = saved.filter((w) => !betas.includes(w));
      // a checkpoint from before the first step (an interrupt while reading ahead) has no slots yet
      if (slots.length) await this.optimizer.setWeights(slots);
      const adam = this.optimizer as unknown as { accBeta1?: tf.Variable; accBeta2?: tf.Variable };
      for (const b of betas) (b.name === ADAM_BETA1 ? adam.accBeta1 : adam.accBeta2)?.assign(b.tensor);
    }
    this.state = readCheckpointState(this.run.dir);
    this.balancer.restore(checkedBalancing(this.state, this.balancer.mode, this.config.tasks.length, `${dir}/state.json`));
    delete this.state.balancing;
  }

  async fit(opts: FitOptions = {}): Promise<HistoryRow[]> {
    const config = this.config;
    const callbacks = new CallbackList(opts.callbacks ?? []);
    if (opts.resume) await this.restore();
    const metrics = validationMetrics(config);
    const trainRows = (await openSplit(config, 'train', undefined, { truth: false, features: planFeatures(this.bundle.plan) })).tables.reduce((s, t) => s + t.rows, 0);
    const epochs = config.train.epochs;
    const safePoint = async (phase: 'reading' | 'validation') => {
      await this.letEventsIn();
      await callbacks.safePoint({ epoch: this.state.epoch, stepInEpoch: this.state.stepInEpoch, globalStep: this.state.globalStep, phase });
    };
    try {
      await callbacks.trainBegin({ epochs, trainRows, startEpoch: this.state.epoch, startStep: this.state.globalStep });
      // `finished`: a checkpoint written after training, during the final evaluation
      for (let epoch = this.state.epoch; epoch < epochs && !this.state.finished; epoch++) {
        const started = Date.now();
        await callbacks.epochBegin({ epoch, epochs, trainRows });
        const sums = this.state.epochSums;
        const secondsBefore = sums.seconds;
        let stepIndex = 0;
        for await (const mb of this.trainBatches(epoch, () => safePoint('reading'))) {
          if (stepIndex++ < this.state.stepInEpoch) continue; // resuming: replay the epoch's order up to where it stopped
          const loss = await this.step(mb);
          this.state.stepInEpoch++;
          sums.samples += mb.length;
          sums.steps++;
          sums.loss += loss.total;
          loss.perTask.forEach((l, k) => (sums.tasks[k]! += l));
          sums.extra += loss.extra;
          sums.seconds = secondsBefore + (Date.now() - started) / 1000;
          await this.letEventsIn();
          await callbacks.batchEnd({ epoch, stepInEpoch: this.state.stepInEpoch, globalStep: this.state.globalStep, rowsRead: this.rowsRead, loss, sums });
        }
        const { samples, steps } = sums;
        if (steps === 0) {
          // Rows were read but none is in any task's sample space (or sampling kept none).
          throw new DataError(`data.train: no training rows in the tasks' sample spaces (${config.tasks.map((t) => `${t.name}: ${t.sample_space.join(', ')}`).join('; ')}) in epoch ${epoch + 1}; check data.columns.stage and data.stage_values`);
        }
        const seconds = secondsBefore + (Date.now() - started) / 1000;
        const row: HistoryRow = { epoch: epoch + 1, steps: this.state.globalStep, samples, seconds: Number(seconds.toFixed(3)), train_loss: sums.loss / Math.max(steps, 1) };
        config.tasks.forEach((t, k) => (row[`train_${t.name}_loss`] = sums.tasks[k]! / Math.max(steps, 1)));
        if (sums.extra !== 0) row.train_model_term = sums.extra / Math.max(steps, 1);
        await readTensors(this.balancer.variables);
        if (this.balancer.mode !== 'fixed') Object.assign(row, this.balancer.historyColumns());
        let validation: MetricRecord[] = [];
        if (config.data.validation) {
          validation = await validate(this.bundle, metrics, () => safePoint('validation'));
          Object.assign(row, validationColumns(config, validation));
        }
        this.state.history.push(row);
        this.state.epoch = epoch + 1;
        this.state.stepInEpoch = 0;
        this.state.epochSums = emptySums(config.tasks.length);
        await callbacks.epochEnd({ epoch, epochs, sums, seconds, row, history: this.state.history, validation, improved: true });
        if (callbacks.control.stop) break;
      }
      this.state.finished = true;
      await callbacks.trainEnd({ history: this.state.history, epoch: this.state.epoch });
    } catch (err) {
      callbacks.trainAbort(err);
      throw err;
    }
    return this.state.history;
  }

  /** Where the loop stands, for run.json. */
  progressInfo() {
    return { epoch: this.state.epoch, step_in_epoch: this.state.stepInEpoch, global_step: this.state.globalStep };
  }
}
