/**
 * Metric tables of a run: metrics.json (flat records, src/runs/README.md), metrics.csv and metrics.md.
 * Records of other splits already in the run are kept; records of the same split are replaced.
 */
import type { MetricRecord } from '../metrics/registry.js';
import type { RunFolder } from '../runs/folder.js';
import { readMetrics, writeMetricFiles, type StoredMetricRecord } from '../runs/metrics-files.js';

/** The column label of a record in a pivot: metric name with its K and variant. */
export function metricLabel(r: Pick<MetricRecord, 'name' | 'k' | 'variant'>): string {
  return `${r.name}${r.k !== undefined ? `@${r.k}` : ''}${r.variant ? ` (${r.variant})` : ''}`;
}

export function fmt(v: number): string {
  return Number.isNaN(v) ? 'n/a' : v.toFixed(4);
}

export function metricsMarkdown(records: readonly StoredMetricRecord[]): string {
  const out: string[] = [];
  const splits = [...new Set(records.map((r) => r.split))];
  for (const split of splits) {
    const rs = records.filter((r) => r.split === split);
    const tasks = [...new Set(rs.map((r) => r.task))];
    const rows = [...new Set(rs.map(metricLabel))];
    out.push(`### ${split}`, '', `| metric | ${tasks.join(' | ')} |`, `|---|${tasks.map(() => '---:').join('|')}|`);
    for (const label of rows) {
      const cells = tasks.map((t) => {
        const r = rs.find((x) => x.task === t && metricLabel(x) === label);
        if (!r) return '';
        // after eval --bootstrap: the 95% interval over requests beside the value
        return r.ci_resamples !== undefined ? `${fmt(r.value ?? NaN)} [${fmt(r.ci_low ?? NaN)}, ${fmt(r.ci_high ?? NaN)}]` : fmt(r.value ?? NaN);
      });
      out.push(`| ${label} | ${cells.join(' | ')} |`);
    }
    const ci = rs.find((r) => r.ci_resamples !== undefined);
    if (ci) out.push('', `[low, high]: 95% percentile bootstrap interval over requests (${ci.ci_resamples} resamples, seed ${ci.ci_seed})`);
    out.push('');
  }
  return out.join('\n');
}

/** Writes a split's records (and `extra` ones) into the run's metric tables, keeping other splits. */
export function writeMetricTables(run: RunFolder, split: string, records: MetricRecord[], extra: MetricRecord[] = []): StoredMetricRecord[] {
  const written = new Set([split, ...records.map((r) => r.split), ...extra.map((r) => r.split)]);
  const all = [...readMetrics(run.dir).filter((r) => !written.has(r.split)), ...records, ...extra];
  writeMetricFiles(run.dir, all, `# Metrics of ${run.info.experiment}/${run.info.version}\n\n${metricsMarkdown(all)}`);
  return all;
}
