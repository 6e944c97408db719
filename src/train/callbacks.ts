/**
 * Trainer callbacks: the training loop reports what happens (train begins, an epoch begins, a
 * batch ends, an epoch ends with its history row and validation records, training ends) and the
 * things that react to it (progress display, history.csv, checkpoints on interrupt, early
 * stopping, saving the best model) plug in as callbacks, in the manner of tfjs-layers'
 * CallbackList. Callbacks run in list order; a callback may throw to abort training (e.g.
 * Interrupted) or set `control.stop` to end it after the current epoch. Besides batch ends, the loop
 * offers safe points while it reads ahead and while it validates (no step in progress, its state
 * consistent), where an interrupt can stop it too.
 */
import type { MetricRecord } from '../metrics/registry.js';

import type { HistoryRow } from '../runs/history.js';
export type { HistoryRow };

/** Running sums of the current epoch (checkpointed so a resumed epoch reports whole). */
export interface EpochSums {
  samples: number;
  steps: number;
  loss: number;
  tasks: number[];
  extra: number;
  seconds: number;
}

export interface TrainBeginLogs {
  epochs: number;
  /** Rows in the training files (one epoch reads them all). */
  trainRows: number;
  /** The epoch training starts from (0 unless resuming). */
  startEpoch: number;
  /** Steps already done (0 unless resuming). */
  startStep: number;
}

export interface EpochBeginLogs {
  /** 0-based epoch index. */
  epoch: number;
  epochs: number;
  trainRows: number;
}

export interface BatchEndLogs {
  epoch: number;
  /** Minibatches done in this epoch, this one included. */
  stepInEpoch: number;
  globalStep: number;
  /** Training rows read so far in this epoch (drives a progress display). */
  rowsRead: number;
  /** This step's total, per-task and model-specific losses. */
  loss: { total: number; perTask: number[]; extra: number };
  sums: Readonly<EpochSums>;
}

export interface EpochEndLogs {
  /** 0-based epoch index; the history row's `epoch` is this + 1. */
  epoch: number;
  epochs: number;
  sums: Readonly<EpochSums>;
  /** Seconds spent in the epoch, resumed parts included. */
  seconds: number;
  /** The history row (train losses and validation columns); already appended to the history. */
  row: HistoryRow;
  history: readonly HistoryRow[];
  /** Validation records of this epoch (empty without a validation split). */
  validation: MetricRecord[];
  /** Whether this epoch's model is the one to keep; early stopping clears it when it did not improve. */
  improved: boolean;
}

export interface SafePointLogs {
  epoch: number;
  /** Minibatches done in this epoch. */
  stepInEpoch: number;
  globalStep: number;
  /** What the loop is doing: reading (and shuffling) training rows, or validating the finished epoch. */
  phase: 'reading' | 'validation';
}

export interface TrainEndLogs {
  history: readonly HistoryRow[];
  /** Epochs finished. */
  epoch: number;
}

/** What a callback may ask of the loop. */
export interface TrainingControl {
  /** Set to end training after the current epoch (early stopping). */
  stop: boolean;
}

export interface TrainerCallback {
  onTrainBegin?(logs: TrainBeginLogs): void | Promise<void>;
  onEpochBegin?(logs: EpochBeginLogs): void | Promise<void>;
  onBatchEnd?(logs: BatchEndLogs, control: TrainingControl): void | Promise<void>;
  onEpochEnd?(logs: EpochEndLogs, control: TrainingControl): void | Promise<void>;
  /** Between read batches and between validation batches; may throw (Interrupted) to stop there. */
  onSafePoint?(logs: SafePointLogs): void | Promise<void>;
  onTrainEnd?(logs: TrainEndLogs): void | Promise<void>;
  /** Training stopped on an error (a callback's Interrupted, a non-finite loss); for clean-up only. */
  onTrainAbort?(error: unknown): void;
}

/** Calls every callback's hook in order. */
export class CallbackList {
  readonly control: TrainingControl = { stop: false };

  constructor(private readonly callbacks: readonly TrainerCallback[]) {}

  async trainBegin(logs: TrainBeginLogs): Promise<void> {
    for (const c of this.callbacks) await c.onTrainBegin?.(logs);
  }

  async epochBegin(logs: EpochBeginLogs): Promise<void> {
    for (const c of this.callbacks) await c.onEpochBegin?.(logs);
  }

  async batchEnd(logs: BatchEndLogs): Promise<void> {
    for (const c of this.callbacks) await c.onBatchEnd?.(logs, this.control);
  }

  async epochEnd(logs: EpochEndLogs): Promise<void> {
    for (const c of this.callbacks) await c.onEpochEnd?.(logs, this.control);
  }

  async safePoint(logs: SafePointLogs): Promise<void> {
    for (const c of this.callbacks) await c.onSafePoint?.(logs);
  }

  async trainEnd(logs: TrainEndLogs): Promise<void> {
    for (const c of this.callbacks) await c.onTrainEnd?.(logs);
  }

  trainAbort(error: unknown): void {
    for (const c of this.callbacks) c.onTrainAbort?.(error);
  }
}
