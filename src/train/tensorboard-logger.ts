/**
 * TensorBoard logs of a training run (README.md, "TensorBoard"): per-task losses every
 * `train.log_every` steps, validation metrics and samples/s per epoch, the run's hyperparameters
 * and, after the evaluation, its final metrics, so that TensorBoard's HParams view compares the runs
 * of a sweep. A TrainerCallback over the event writer of runs/tensorboard.ts.
 */
import type { ExperimentConfig } from '../config/experiment.js';
import type { MetricRecord } from '../metrics/registry.js';
import { runPath } from '../runs/layout.js';
import { EventWriter, type HParamValue, type SessionStatus } from '../runs/tensorboard.js';
import type { TrainerCallback } from './callbacks.js';

/** A metric record's tag: `<split>/<task>/<name>[@k][_variant]`. */
export function metricTag(r: MetricRecord): string {
  return `${r.split}/${r.task}/${r.name}${r.k !== undefined ? `@${r.k}` : ''}${r.variant ? `_${r.variant}` : ''}`;
}

/** The hyperparameters shown in the HParams view: the model, train and runtime sections' scalars, flattened. */
export function hparamsOf(config: ExperimentConfig): Record<string, HParamValue> {
  const out: Record<string, HParamValue> = {};
  const walk = (prefix: string, v: unknown): void => {
    if (v === null || v === undefined) return;
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[prefix] = v;
    else if (Array.isArray(v)) out[prefix] = JSON.stringify(v);
    else if (typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(`${prefix}.${k}`, x);
  };
  for (const section of ['model', 'train', 'fusion'] as const) walk(section, config[section]);
  out['runtime.seed'] = config.runtime.seed;
  out['tasks'] = config.tasks.map((t) => t.name).join(',');
  return out;
}

export interface TensorBoardLogger {
  callback: TrainerCallback;
  /** Final metrics (after training's evaluation), at the last step. */
  final(records: readonly MetricRecord[]): void;
  /** Ends the HParams session with `status` (null: left open, for a run to be resumed) and closes the file; idempotent. */
  close(status: SessionStatus | null): void;
}

export function tensorBoardLogger(config: ExperimentConfig, runDir: string, taskNames: readonly string[]): TensorBoardLogger {
  let writer: EventWriter | undefined;
  let step = 0;
  const every = config.train.log_every;
  const callback: TrainerCallback = {
    onTrainBegin() {
      writer ??= new EventWriter(runPath(runDir, 'tensorboard'));
      writer.sessionStart(hparamsOf(config), Date.now() / 1000);
    },
    onBatchEnd({ globalStep, loss, sums }) {
      step = globalStep;
      if (globalStep % every !== 0) return;
      const values: Record<string, number> = { 'train/loss': loss.total };
      taskNames.forEach((t, k) => (values[`train/loss_${t}`] = loss.perTask[k]!));
      if (loss.extra !== 0) values['train/loss_extra'] = loss.extra;
      if (sums.seconds > 0) values['train/samples_per_second'] = sums.samples / sums.seconds;
      writer?.scalars(globalStep, values);
    },
    onEpochEnd({ epoch, sums, seconds, validation }) {
      const values: Record<string, number> = { 'epoch/epoch': epoch + 1, 'epoch/samples_per_second': sums.samples / Math.max(seconds, 1e-9) };
      if (sums.steps > 0) values['epoch/loss'] = sums.loss / sums.steps;
      for (const r of validation) values[metricTag(r)] = r.value;
      writer?.scalars(step, values);
    },
  };
  return {
    callback,
    final(records) {
      writer?.scalars(step, Object.fromEntries(records.map((r) => [metricTag(r), r.value])));
    },
    close(status) {
      if (!writer) return;
      const w = writer;
      writer = undefined;
      try {
        if (status) w.sessionEnd(status, Date.now() / 1000);
      } finally {
        w.close();
      }
    },
  };
}
