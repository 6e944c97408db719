/**
 * Early stopping on any validation metric of the metric registry: watches one record (a task's
 * metric, or the fused ranking's at the first K, macro variant), keeps the best value and epoch,
 * ends training after `patience` epochs without improvement, and at the end restores the best
 * epoch's model. Whether higher is better comes from the registry's metric definition.
 */
import type { ExperimentConfig } from '../config/experiment.js';
import { metricDefinition, type MetricRecord } from '../metrics/registry.js';
import { historyKey } from '../eval/validation.js';
import type { EpochEndLogs, TrainEndLogs, TrainerCallback, TrainingControl } from './callbacks.js';

/** The validation record early stopping watches. */
export interface Monitor {
  metric: string;
  task: string;
  k?: number;
  variant?: 'macro' | 'micro';
  higherIsBetter: boolean;
}

/** Best value so far; kept in the trainer's checkpoint so a resumed run stops where it would have. */
export interface EarlyStoppingState {
  best: number | null;
  bestEpoch: number | null;
  badEpochs: number;
}

/**
 * The record `train.early_stopping` names, resolved against the config: the task (default the first;
 * `fused` for metrics of the fused ranking), K (default the first of eval.ks), the first variant
 * (macro) and the direction the metric declares.
 */
export function monitorFor(config: ExperimentConfig, metric: string, task?: string, k?: number): Monitor {
  const def = metricDefinition(metric);
  return {
    metric,
    task: def.perTask ? (task ?? config.tasks[0]!.name) : 'fused',
    k: def.hasK ? (k ?? config.eval.ks[0]) : undefined,
    variant: def.variants?.[0],
    higherIsBetter: def.higherIsBetter,
  };
}

export interface EarlyStoppingOptions {
  monitor: Monitor;
  patience: number;
  /** The state to update (read at each call: a restored checkpoint replaces it). */
  state: () => EarlyStoppingState;
  /** Loads the best epoch's model back when training ended on a later epoch. */
  restoreBest: () => void;
  log?: (line: string) => void;
}

export class EarlyStopping implements TrainerCallback {
  readonly key: string;

  constructor(private readonly opts: EarlyStoppingOptions) {
    this.key = historyKey({ name: opts.monitor.metric, task: opts.monitor.task, k: opts.monitor.k, variant: opts.monitor.variant });
  }

  /** The watched value among validation records; NaN when validation did not report it. */
  watchedValue(records: readonly MetricRecord[]): number {
    const m = this.opts.monitor;
    const r = records.find((x) => x.name === m.metric && x.task === m.task && x.k === m.k && x.variant === m.variant);
    return r ? r.value : NaN;
  }

  onEpochEnd(logs: EpochEndLogs, control: TrainingControl): void {
    const state = this.opts.state();
    const value = this.watchedValue(logs.validation);
    const better = this.opts.monitor.higherIsBetter ? value > state.best! : value < state.best!;
    logs.improved = state.best === null || better;
    if (logs.improved) {
      state.best = value;
      state.bestEpoch = logs.epoch + 1;
      state.badEpochs = 0;
    } else state.badEpochs++;
    if (state.badEpochs >= this.opts.patience) {
      control.stop = true;
      this.opts.log?.(`early stopping: ${this.key} has not improved for ${this.opts.patience} epoch(s); keeping epoch ${state.bestEpoch}`);
    }
  }

  onTrainEnd(logs: TrainEndLogs): void {
    if (this.opts.state().bestEpoch !== logs.epoch) this.opts.restoreBest();
  }
}
