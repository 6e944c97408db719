/**
 * The callbacks that keep a run folder up to date while training: history.csv after each epoch,
 * the model folder holding the best (or latest) finished epoch, a checkpoint and an Interrupted
 * error when a stop is requested mid-epoch, early stopping when configured, and removal of the
 * stale mid-epoch checkpoint once training finishes.
 */
import { Interrupted } from '../base/errors.js';
import { writeHistory } from '../runs/history.js';
import { removeCheckpoint } from '../runs/checkpoint.js';
import { loadModel, saveModel } from '../runs/model-io.js';
import type { TrainerCallback } from './callbacks.js';
import { EarlyStopping, monitorFor } from './early-stopping.js';
import type { Trainer } from './trainer.js';

export interface RunCallbackOptions {
  /** Polled after every step; true (e.g. after SIGINT) stops with a checkpoint. */
  stopRequested: () => boolean;
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
    onEpochEnd(logs) {
      if (logs.improved) saveModel(trainer.run.modelDir(), trainer.bundle.model.type, trainer.bundle.params, trainer.bundle.tables);
      trainer.run.update({ progress: trainer.progressInfo() });
    },
  };
}

/** On a requested stop: checkpoint, mark the run interrupted and abort with Interrupted. */
export function checkpointOnStop(trainer: Trainer, stopRequested: () => boolean): TrainerCallback {
  return {
    async onBatchEnd(logs) {
      if (!stopRequested()) return;
      await trainer.saveCheckpoint();
      trainer.run.update({ status: 'interrupted', progress: trainer.progressInfo() });
      throw new Interrupted(`interrupted at epoch ${logs.epoch + 1}, step ${logs.stepInEpoch}; checkpoint saved. Resume with: resflow train --resume ${trainer.run.dir}`);
    },
  };
}

/** A finished run's mid-epoch checkpoint is stale; the model folder holds the result. */
export function checkpointCleanup(trainer: Trainer): TrainerCallback {
  return { onTrainEnd: () => removeCheckpoint(trainer.run.dir) };
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
  return [checkpointOnStop(trainer, opts.stopRequested), historyWriter(trainer), ...stopper, bestModelSaver(trainer), checkpointCleanup(trainer)];
}
