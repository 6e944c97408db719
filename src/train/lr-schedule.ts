/**
 * Learning-rate schedules (`train.lr_schedule`; README.md, "Regularisation and schedules"): a
 * factor on the configured lr of the dense and the embedding optimizer alike, set before every
 * step by a trainer callback. The factor is a pure function of the step, the epoch and the
 * history (plateau decays are replayed from the history's validation column), so a resumed run
 * sets the same learning rates as an uninterrupted one without any state of its own.
 *
 *   warm-up (N = warmup_steps > 0): step s <= N multiplies by s / N
 *   cosine:  min + (1 - min) (1 + cos(pi p)) / 2, by epoch p = e / (E - 1) (0 when E = 1; E =
 *            train.epochs), by step p = clamp((s - N) / (total_steps - N), 0, 1)
 *   step:    factor ^ floor(e / every) by epoch (e 0-based), factor ^ floor((s - 1) / every) by step
 *   plateau: factor ^ (decays so far), a decay after `patience` epochs without improvement
 */
import type { ExperimentConfig, LrScheduleConfig } from '../config/experiment.js';
import { historyKey } from '../eval/validation.js';
import type { EpochEndLogs, HistoryRow, TrainerCallback } from './callbacks.js';
import { monitorFor } from './early-stopping.js';

/** Where the schedule is evaluated: the 1-based global step about to run and its 0-based epoch. */
export interface SchedulePoint {
  step: number;
  epoch: number;
  /** Epochs of the run (train.epochs; cosine by epoch). */
  epochs: number;
  /** Plateau decays so far. */
  decays: number;
}

/** The factor on the configured learning rates at a point of the run. */
export function lrFactor(s: LrScheduleConfig, at: SchedulePoint): number {
  const n = s.warmup_steps;
  const warm = n > 0 && at.step <= n ? at.step / n : 1;
  let decay = 1;
  if (s.decay === 'cosine') {
    let p: number;
    if (s.unit === 'epoch') p = at.epochs > 1 ? Math.min(at.epoch / (at.epochs - 1), 1) : 0;
    else {
      const span = (s.total_steps ?? 1) - n;
      p = span > 0 ? Math.min(Math.max((at.step - n) / span, 0), 1) : 1;
    }
    decay = s.min_factor + ((1 - s.min_factor) * (1 + Math.cos(Math.PI * p))) / 2;
  } else if (s.decay === 'step') {
    const units = s.unit === 'epoch' ? at.epoch : at.step - 1;
    decay = Math.pow(s.factor, Math.floor(units / s.every));
  } else if (s.decay === 'plateau') decay = Math.pow(s.factor, at.decays);
  return warm * decay;
}

/**
 * Plateau decays after the epochs of `history`: the watched column's best so far; each epoch that
 * does not beat it counts, and `patience` such epochs in a row make a decay and restart the count.
 * A missing (NaN) value never improves.
 */
export function plateauDecays(history: readonly HistoryRow[], key: string, higherIsBetter: boolean, patience: number): number {
  let best: number | null = null;
  let bad = 0;
  let decays = 0;
  for (const row of history) {
    const v = Number(row[key]);
    const better = !Number.isNaN(v) && (best === null || (higherIsBetter ? v > best : v < best));
    if (better) {
      best = v;
      bad = 0;
    } else if (++bad >= patience) {
      decays++;
      bad = 0;
    }
  }
  return decays;
}

/** What the schedule drives: the trainer's two optimizers. */
export interface LearningRateTarget {
  /** Sets both optimizers' learning rates to their configured lr times `factor`. */
  setLearningRateFactor(factor: number): void;
  /** The dense optimizer's current learning rate (for history.csv). */
  readonly learningRate: number;
  readonly history: readonly HistoryRow[];
}

/**
 * The schedule as a trainer callback: sets the factor before the first step, after every step
 * for the next one and at each epoch's start, and writes the `lr` column (the dense learning rate
 * of the epoch's last step) into the epoch's history row. Must run before the history writer.
 */
export class LrScheduleCallback implements TrainerCallback {
  private readonly schedule: LrScheduleConfig;
  private readonly key: string | null = null;
  private readonly higherIsBetter: boolean = true;
  private point: SchedulePoint = { step: 1, epoch: 0, epochs: 1, decays: 0 };
  /** The dense learning rate the last step ran with. */
  private lastLr = NaN;

  constructor(
    private readonly config: ExperimentConfig,
    private readonly target: LearningRateTarget,
  ) {
    this.schedule = config.train.lr_schedule!;
    const s = this.schedule;
    // config/load.ts has checked the watched metric (a validation split, the task, k).
    if (s.decay === 'plateau') {
      const m = monitorFor(config, s.metric, s.task, s.k);
      this.key = historyKey({ name: m.metric, task: m.task, k: m.k, variant: m.variant });
      this.higherIsBetter = m.higherIsBetter;
    }
  }

  private apply(): void {
    this.target.setLearningRateFactor(lrFactor(this.schedule, this.point));
  }

  private decays(history: readonly HistoryRow[]): number {
    return this.key === null ? 0 : plateauDecays(history, this.key, this.higherIsBetter, this.schedule.patience);
  }

  onTrainBegin(logs: { epochs: number; startEpoch: number; startStep: number }): void {
    this.point = { step: logs.startStep + 1, epoch: logs.startEpoch, epochs: logs.epochs, decays: this.decays(this.target.history) };
    this.apply();
  }

  onEpochBegin(logs: { epoch: number }): void {
    this.point.epoch = logs.epoch;
    this.apply();
  }

  onBatchEnd(logs: { globalStep: number; epoch: number }): void {
    this.lastLr = this.target.learningRate;
    this.point.step = logs.globalStep + 1;
    this.point.epoch = logs.epoch;
    this.apply();
  }

  onEpochEnd(logs: EpochEndLogs): void {
    logs.row.lr = Number.isNaN(this.lastLr) ? this.target.learningRate : this.lastLr;
    this.point.decays = this.decays(logs.history);
  }
}
