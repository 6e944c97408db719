/**
 * Per-epoch validation: the model's scores on the validation split turned into metric records by
 * the metric registry, and the history.csv columns named after them (`val_<task>_<metric>`, with
 * `@K` and `_macro`/`_micro` for the metrics that have them).
 */
import type { ExperimentConfig } from '../config/experiment.js';
import type { MetricRecord } from '../metrics/registry.js';
import type { ModelBundle } from '../models/bundle.js';
import { evaluateRows } from './evaluate.js';
import { scoreSplit, scoreStream } from './score.js';
import { RowsEvaluator } from './stream-eval.js';
import { NotContiguous } from '../metrics/stream.js';

/** Metrics every validation reports, in column order within a task. */
const ALWAYS = ['auc', 'logloss'] as const;

/** What validation computes: AUC and LogLoss, plus the early-stopping metric when it is another one. */
export function validationMetrics(config: ExperimentConfig): string[] {
  const watched = config.train.early_stopping?.metric;
  return watched === undefined || (ALWAYS as readonly string[]).includes(watched) ? [...ALWAYS] : [...ALWAYS, watched];
}

/** The history.csv column of a validation record. */
export function historyKey(r: Pick<MetricRecord, 'name' | 'task' | 'k' | 'variant'>): string {
  return `val_${r.task}_${r.name}${r.k === undefined ? '' : `@${r.k}`}${r.variant ? `_${r.variant}` : ''}`;
}

/** Scores the validation split and evaluates `metrics` on it; `between` runs after each scored batch and may throw to stop. */
export async function validate(bundle: ModelBundle, metrics: readonly string[], between?: () => Promise<void>): Promise<MetricRecord[]> {
  // As the batches stream by (README.md, "Scale"); all rows at once when requests are not contiguous or there are none.
  const ev = new RowsEvaluator(bundle.config, 'validation', { metrics });
  try {
    const streamed = await scoreStream(bundle, 'validation', undefined, (probs, batch) => ev.add(probs, batch), between, (total) => ev.expectRows(total));
    if (streamed.rows > 0) return ev.finish();
  } catch (err) {
    if (!(err instanceof NotContiguous)) throw err;
  }
  const scored = await scoreSplit(bundle, 'validation', undefined, between);
  return evaluateRows(bundle.config, scored.probs, scored.rows, 'validation', { metrics });
}

/**
 * The history columns of validation records: task by task (each task's metrics in the order
 * asked for), then the metrics of the fused ranking.
 */
export function validationColumns(config: ExperimentConfig, records: readonly MetricRecord[]): Record<string, number> {
  const row: Record<string, number> = {};
  const tasks = config.tasks.map((t) => t.name);
  const ordered = [...tasks.flatMap((t) => records.filter((r) => r.task === t)), ...records.filter((r) => !tasks.includes(r.task))];
  for (const r of ordered) row[historyKey(r)] = r.value;
  return row;
}
