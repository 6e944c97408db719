/**
 * Confidence intervals of a single run's metrics (docs/domain.md, Comparing runs: "Bootstrap over
 * requests"): the evaluation's metrics as functions of request counts (metrics/resample.ts), put
 * through one seeded percentile bootstrap (statistics.ts), attached to the metric records as
 * `ci_low`, `ci_high`, `ci_resamples` and `ci_seed`.
 */
import type { EvalInput, MetricRecord } from '../metrics/registry.js';
import { requestResampling } from '../metrics/resample.js';
import { bootstrapIntervals, type BootstrapOptions } from './statistics.js';

const identity = (r: Pick<MetricRecord, 'name' | 'task' | 'k' | 'variant'>): string => `${r.name}|${r.task}|${r.k ?? ''}|${r.variant ?? ''}`;

/**
 * The records with their 95% (or `opts.level`) bootstrap interval over requests; a record the
 * resampling does not cover (none today) is returned unchanged.
 */
export function withRequestIntervals(input: EvalInput, records: readonly MetricRecord[], opts: BootstrapOptions): MetricRecord[] {
  const { units, metrics } = requestResampling(input);
  const intervals = bootstrapIntervals(
    units,
    metrics.map((m) => m.at),
    opts,
  );
  const byKey = new Map(metrics.map((m, i) => [identity(m), intervals[i]!]));
  return records.map((r) => {
    const ci = byKey.get(identity(r));
    return ci ? { ...r, ci_low: ci.low, ci_high: ci.high, ci_resamples: opts.resamples, ci_seed: opts.seed } : r;
  });
}
