/**
 * The callbacks that keep a run folder up to date while training: history.csv after each epoch,
 * the model folder holding the best (or latest) finished epoch, a checkpoint and an Interrupted
 * error when a stop is requested (after a step, while reading ahead or validating), periodic
 * checkpoints (`train.checkpoint_every`), the learning-rate schedule and early stopping when configured, and removal of the
 * stale mid-epoch checkpoint once training finishes (README.md, "Reliability").
 */
import { ConfigError, Interrupted } from '../base/errors.js';
import { writeHistory } from '../runs/history.js';
import { readTensors } from '../kernels/read-back.js';
import { removeCheckpoint } from '../runs/checkpoint.js';
import { loadModel, saveModel } from '../runs/model-io.js';
import type { TrainerCallback } from './callbacks.js';
import { EarlyStopping, monitorFor } from './early-stopping.js';
import { LrScheduleCallback } from './lr-schedule.js';
import type { Trainer } from './trainer.js';

export interface RunCallbackOptions {
  /** Polled after every step and at every safe point; true (e.g. after SIGINT) stops with a checkpoint. */
  stopRequested: () => boolean;
  /** Overrides train.checkpoint_every. */
  checkpointEvery?: CheckpointEvery;
  /** Where early stopping's message goes. */
  log?: (line: string) => void;
}

/** Writes the whole history to history.csv after each epoch. */
export function historyWriter(trainer: Trainer): TrainerCallback {
  return { onEpochEnd: (logs) => writeHistory(trainer.run.dir, [...logs.history]) };
}

/** Saves the model of each epoch early stopping keeps (every epoch without it) and records progress in run.json. */
export function bestModelSaver(trainer: Trainer): TrainerCallback {
  return {
    async onEpochEnd(logs) {
      if (logs.improved) await readTensors(trainer.bundle.params.variables.values());
      if (logs.improved) saveModel(trainer.run.modelDir(), trainer.bundle.model.type, trainer.bundle.params, trainer.bundle.tables);
      trainer.run.update({ progress: trainer.progressInfo() });
    },
  };
}

/** When a periodic checkpoint is due: every so many steps or milliseconds; null: never. */
export type CheckpointEvery = { steps: number } | { ms: number } | null;

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, min: 60_000, h: 3_600_000 };

/**
 * Reads train.checkpoint_every: a number of steps, a duration (`90s`, `10m`, `1h`), or null / 0 for
 * none. A config from before the key existed (undefined) gets the default, 10 minutes.
 */
export function parseCheckpointEvery(value: number | string | null | undefined): CheckpointEvery {
  if (value === undefined) return { ms: 10 * UNIT_MS['m']! };
  if (value === null || value === 0) return null;
  if (typeof value === 'number') return { steps: value };
  const m = /^\s*(\d+(?:\.\d+)?)\s*(s|min|m|h)\s*$/.exec(value);
  if (!m) throw new ConfigError(`train.checkpoint_every: expected a number of steps, a duration such as 90s, 10m or 1h, or null; found ${JSON.stringify(value)}`);
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms > 0 ? { ms } : null;
}

/**
 * Checkpoints, marks the run interrupted and returns the Interrupted error to throw: what every
 * requested stop does, wherever the loop (or the evaluation after it) stands.
 */
export async function interruptRun(trainer: Trainer, where: string): Promise<Interrupted> {
  await trainer.saveCheckpoint();
  trainer.run.update({ status: 'interrupted', progress: trainer.progressInfo() });
  return new Interrupted(`interrupted ${where}; checkpoint saved. Resume with: resflow train --resume ${trainer.run.dir}`);
}

/** On a requested stop (checked after every step and at every safe point): interruptRun. */
export function checkpointOnStop(trainer: Trainer, stopRequested: () => boolean): TrainerCallback {
  return {
    async onBatchEnd(logs) {
      if (stopRequested()) throw await interruptRun(trainer, `at epoch ${logs.epoch + 1}, step ${logs.stepInEpoch}`);
    },
    async onSafePoint(logs) {
      if (stopRequested()) throw await interruptRun(trainer, `at epoch ${logs.epoch + 1}, step ${logs.stepInEpoch} (${logs.phase === 'reading' ? 'reading training rows' : 'validating'})`);
    },
  };
}

/** Saves a checkpoint when one is due (so a kill loses at most that much work) and records progress and heartbeat in run.json. */
export function periodicCheckpoint(trainer: Trainer, every: CheckpointEvery): TrainerCallback {
  let last = Date.now();
  return {
    onTrainBegin: () => void (last = Date.now()),
    async onBatchEnd(logs) {
      if (!every) return;
      if ('steps' in every ? logs.globalStep % every.steps !== 0 : Date.now() - last < every.ms) return;
      await trainer.saveCheckpoint();
      trainer.run.update({ progress: trainer.progressInfo() });
      last = Date.now();
    },
  };
}

/** A finished run's mid-epoch checkpoint is stale; the model folder holds the result. */
export function checkpointCleanup(trainer: Trainer): TrainerCallback {
  return { onTrainEnd: () => removeCheckpoint(trainer.run.dir) };
}

/** Records in run.json the regularisation, schedule and loss balancing the run trains with, when any is on. */
export function trainingSettingsRecorder(trainer: Trainer): TrainerCallback {
  const t = trainer.bundle.config.train;
  const on = t.embedding_l2 > 0 || t.optimizer.weight_decay > 0 || t.lr_schedule !== null || t.loss_balancing !== 'fixed';
  const training = {
    embedding_l2: t.embedding_l2,
    weight_decay: t.optimizer.weight_decay,
    lr_schedule: t.lr_schedule,
    loss_balancing: t.loss_balancing,
    ...(t.loss_balancing === 'gradnorm' ? { gradnorm_alpha: t.gradnorm_alpha, balancing_lr: t.balancing_lr ?? t.optimizer.lr } : {}),
  };
  return on ? { onTrainBegin: () => trainer.run.update({ training }) } : {};
}

/** The run-folder callbacks in the order they must run. */
export function runCallbacks(trainer: Trainer, opts: RunCallbackOptions): TrainerCallback[] {
  const es = trainer.bundle.config.train.early_stopping;
  const { params, tables } = trainer.bundle;
  const stopper = es
    ? [
        new EarlyStopping({
          monitor: monitorFor(trainer.bundle.config, es.metric, es.task, es.k),
          patience: es.patience,
          state: () => trainer.earlyStoppingState,
          restoreBest: () => loadModel(trainer.run.modelDir(), params, tables),
          log: opts.log,
        }),
      ]
    : [];
  const every = opts.checkpointEvery !== undefined ? opts.checkpointEvery : parseCheckpointEvery(trainer.bundle.config.train.checkpoint_every);
  // The schedule first: it sets the next step's learning rates and writes the lr column before history.csv is written.
  const schedule = trainer.bundle.config.train.lr_schedule ? [new LrScheduleCallback(trainer.bundle.config, trainer)] : [];
  return [trainingSettingsRecorder(trainer), ...schedule, checkpointOnStop(trainer, opts.stopRequested), periodicCheckpoint(trainer, every), historyWriter(trainer), ...stopper, bestModelSaver(trainer), checkpointCleanup(trainer)];
}
