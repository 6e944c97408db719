/** `resflow compare`: runs side by side, seed groups, significance, baseline checks, plots. */
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../base/errors.js';
import { log } from '../base/log.js';
import { BaselineFailure, baselineLine, checkBaseline, loadBaseline, renderBaseline, type BaselineResult } from '../report/baseline.js';
import { buildComparison } from '../report/compare.js';
import { renderCsv, renderJson, renderMarkdown, renderText } from '../report/compare-render.js';
import { loadRun, resolveRunDirs } from '../report/compare-runs.js';
import { CORRECTIONS, type Correction } from '../report/compare-marks.js';

const FORMATS = ['table', 'md', 'csv', 'json'] as const;
type Format = (typeof FORMATS)[number];

interface CompareFlags {
  split: string;
  metrics?: string;
  format: string;
  reference?: string;
  group: boolean;
  baseline?: string;
  out?: string;
  plots: boolean;
  all?: boolean;
  correction: string;
  tradeoff?: string;
}

/** Width of the text table when stdout is not a terminal (issue: fits 120 columns when piped). */
const PIPE_WIDTH = 120;

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);

export function registerCompareCommand(program: Command): void {
  program
    .command('compare')
    .description(
      'compare runs side by side: a metric table with the best values marked, the config keys that differ, ' +
        'seed groups (mean ± std, paired t-test by seed), baseline checks for CI, plots and a self-contained report.html',
    )
    .argument('<runs...>', 'run folders and/or experiment folders (every run in them)')
    .option('--split <names>', 'metric split(s) to compare, comma-separated', 'eval')
    .option('--metrics <names>', 'only these metrics, comma-separated: auc, gauc, logloss, recall, wrecall, ash, cost, or name@K (e.g. wrecall@10)')
    .option('--all', 'every metric in the table (default for table/md: per-task AUC, WR@K and ASH@K at the main K, and the cost; csv/json always keep everything)')
    .option('--correction <method>', 'multiple-comparison correction across the tests of one table: holm or none', 'holm')
    .option('--format <format>', 'table (aligned text), md, csv or json', 'table')
    .option('--reference <row>', 'row the p-values are against: its label, its number, a run folder or version (default: the first row)')
    .option('--no-group', 'one row per run, even for runs whose configs differ only in runtime.seed')
    .option('--baseline <file>', 'YAML/JSON list of expected values, e.g. - { name: auc, task: ctr, min: 0.58 }; exit 1 if a row misses one')
    .option('--out <dir>', 'folder for the SVG plots and report.html (default: <first experiment folder>/compare)')
    .option('--no-plots', 'write no plots and no report.html')
    .option('--tradeoff <metric>', 'metric of the report\'s quality-vs-latency chart, name or name@K (default: wrecall at the main K, else ash, else the first auc)')
    .addHelpText(
      'after',
      `
Rows: runs whose configs differ only in runtime.seed form one group row (mean ± sample std, n);
other rows are labelled by the config values that tell them apart (e.g. model.residual=none).
Runs that are not completed are listed with their status and left out of every statistic.
Marks: * best and significantly better than the runner-up (paired t-test by seed, Holm-adjusted
p < 0.05 across the table's tests); = leaders tied (not significant); ? best value, untested (fewer
than 2 shared seeds). With seed groups, a second table gives Holm-adjusted p-values against the
reference row. Piped, the table is cut into blocks of 120 columns.

Baseline file entries: name (metric), task, split (default: the compared split), k, variant,
and min, max, or value with tolerance:
  - { name: auc, task: ctr, split: eval, min: 0.58 }
  - { name: logloss, task: ctr, max: 0.35 }
  - { name: wrecall, task: fused, k: 10, variant: macro, value: 0.49, tolerance: 0.02 }
A violation exits 1; an entry that matches no metric exits 2.

Examples:
  resflow compare runs/quickstart-ablation
  resflow compare runs/quickstart-ablation --metrics auc,logloss,wrecall@10 --format md
  resflow compare runs/a/20261123-101500-1a2b3c4d runs/b/20261123-102000-5e6f7a8b --no-plots --format json
  resflow compare runs/quickstart-ablation --reference model.residual=none --baseline ci/baseline.yaml`,
    )
    .action(async (paths: string[], o: CompareFlags) => {
      if (!(FORMATS as readonly string[]).includes(o.format)) throw new UsageError(`--format ${o.format}: expected one of ${FORMATS.join(', ')}`);
      const format = o.format as Format;
      if (!(CORRECTIONS as readonly string[]).includes(o.correction)) throw new UsageError(`--correction ${o.correction}: expected one of ${CORRECTIONS.join(', ')}`);
      const splits = list(o.split);
      if (splits.length === 0) throw new UsageError('--split: give a split name, e.g. --split eval');
      const entries = o.baseline ? loadBaseline(o.baseline) : undefined;
      const { runs: dirs, experimentDirs } = resolveRunDirs(paths);
      const runs = dirs.map(loadRun);
      const cmp = buildComparison(runs, {
        splits,
        group: o.group,
        ...(o.metrics !== undefined ? { metrics: list(o.metrics) } : {}),
        ...(o.reference !== undefined ? { reference: o.reference } : {}),
        view: o.all || format === 'csv' || format === 'json' ? 'all' : 'compact',
        correction: o.correction as Correction,
      });
      const baseline: BaselineResult | undefined = entries ? checkBaseline(cmp, entries, o.baseline!) : undefined;

      const width = process.stdout.isTTY && process.stdout.columns ? process.stdout.columns : PIPE_WIDTH;
      if (format === 'table') log.out(renderText(cmp, width));
      else if (format === 'md') log.out(renderMarkdown(cmp).trimEnd());
      else if (format === 'csv') process.stdout.write(renderCsv(cmp));
      else process.stdout.write(renderJson(cmp, baseline));
      if (baseline && format === 'table') log.out('\n' + renderBaseline(baseline, 'table'));
      if (baseline && format === 'md') log.out('\n' + renderBaseline(baseline, 'md').trimEnd());

      if (o.plots) {
        const outDir = path.resolve(o.out ?? path.join(experimentDirs[0]!, 'compare'));
        const { writeCompareReport } = await import('../report/plots.js');
        // the report keeps every metric (its tables scroll in their own box)
        const full = cmp.columns.length > 0 && !o.all && o.metrics === undefined && format !== 'csv' && format !== 'json'
          ? buildComparison(runs, { splits, group: o.group, ...(o.reference !== undefined ? { reference: o.reference } : {}), view: 'all', correction: o.correction as Correction })
          : cmp;
        const files = await writeCompareReport(full, outDir, baseline, o.tradeoff !== undefined ? { tradeoff: o.tradeoff } : {});
        log.info(`plots: ${files.svgs.length} SVG files in ${files.dir}`);
        log.info(`report: ${files.report}`);
      }

      if (baseline && baseline.failures.length > 0) {
        // with csv/json on stdout, CI logs still show each violation (table and md list them already)
        if (format === 'csv' || format === 'json') for (const c of baseline.failures) process.stderr.write(`baseline: ${baselineLine(c)}\n`);
        const first = baseline.failures[0]!;
        throw new BaselineFailure(
          `baseline ${o.baseline}: ${baseline.failures.length} of ${baseline.checks.length} checks failed ` +
            `(first: ${first.row}: ${first.metric} = ${first.found === null ? 'missing' : first.found.toFixed(4)}, expected ${first.expected})`,
        );
      }
    });
}
