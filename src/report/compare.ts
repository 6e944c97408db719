/**
 * `resflow compare`: runs side by side (docs/domain.md, Metrics; src/runs/README.md). This module builds the comparison
 * of loaded runs (compare-runs.ts): rows, columns, cells, p-values; compare-render.ts and plots.ts show it.
 *
 * - Rows are labelled by the config keys that tell them apart (config-diff.ts).
 * - Seed groups: completed runs whose configs differ only in `runtime.seed` form one row, reported as
 *   mean ± sample standard deviation (n - 1) with n and a t-based 95% interval; a single run, with
 *   the bootstrap interval over requests its records carry (`eval --bootstrap`). Between rows, paired
 *   tests by seed (compare-marks.ts) give p-values against the reference row (the first, or
 *   `--reference`), adjusted across the table (Holm by default).
 * - A column's leader is marked only when it beats the runner-up significantly after correction;
 *   otherwise the leaders are marked tied (compare-marks.ts has the one legend).
 * - Columns: every metric record, and the scoring cost (run.json `cost.scoring_us_per_1000`); the
 *   compact view keeps per-task AUC, the fused WR@K and ASH@K (macro) at the main K (the first of
 *   `eval.ks`) and the cost.
 *
 * Runs that are not `completed` are listed with their status and left out of every statistic.
 */
import path from 'node:path';
import { UsageError } from '../base/errors.js';
import { METRIC_REGISTRY, metricDefinition, type MetricRecord } from '../metrics/registry.js';
import type { ComparedRun } from './compare-runs.js';
import { IGNORED_KEYS, SEED_KEY, configDiff } from './config-diff.js';
import { adjust, bySeed, markLeaders, pairTests, pairUp, type Correction, type LeaderTest, type Mark, type PairTest } from './compare-marks.js';
import { mean, sampleStd, tInterval, type Interval } from './statistics.js';
import { metricLabel } from './tables.js';

export interface Column {
  /** Identity of the metric: split|name|task|k|variant. */
  key: string;
  split: string;
  name: string;
  task: string;
  k?: number;
  variant?: 'macro' | 'micro';
  /** metricLabel: name with K and variant. */
  label: string;
  /** Column title: `[split: ]task label`. */
  title: string;
  higherIsBetter: boolean;
  /** `cost`: the scoring cost from run.json, not a metric record (not marked, not tested). */
  kind: 'metric' | 'cost';
}

/** The cost column: µs to score 1,000 candidates (run.json `cost.scoring_us_per_1000`). */
export const COST_KEY = 'cost|scoring_us_per_1000|cost||';

export interface Cell {
  values: number[];
  mean: number;
  /** Sample std; NaN with one value. */
  std: number;
  n: number;
  /** The column's best mean. */
  best: boolean;
  /** What the main table marks (compare-marks.ts); absent: no mark. */
  mark?: Mark;
  /** 95% interval: of the mean over seeds (t-based); of a single run, its recorded bootstrap over requests, else NaN bounds. */
  ci: Interval;
  /** Requests and positives the metric rests on (metrics.json `n_requests`, `n_positives`), when recorded. */
  support?: { requests?: number; positives?: number };
  /** Paired tests against the reference row (absent for the reference and excluded rows). */
  test?: PairTest;
}

export interface Row {
  label: string;
  runs: ComparedRun[];
  /** Not completed: listed, but out of every statistic. */
  excluded: boolean;
  status: string;
  seeds: (number | null)[];
  /** By column key; absent where no run of the row has the metric. */
  cells: Map<string, Cell>;
  /** Mean per metric key over the row's runs, for every split (used by baseline checks). */
  means: Map<string, number>;
  isReference: boolean;
}

export interface Comparison {
  runs: ComparedRun[];
  splits: string[];
  columns: Column[];
  rows: Row[];
  /** Config keys that differ across all compared runs (name, description ignored). */
  diffKeys: string[];
  /** Whether row labels are made of differing config values (else experiment/version). */
  labelKeys: string[] | null;
  grouped: boolean;
  /** Whether any row holds more than one run. */
  hasGroups: boolean;
  reference: Row | null;
  /** The multiple-comparison correction of each table. */
  correction: Correction;
  /** Per column key, the test of the leader against the runner-up. */
  leaders: Map<string, LeaderTest<Row>>;
  /** The main K of the compact view, when one is known. */
  mainK: number | null;
}

export interface CompareOptions {
  /** Splits to tabulate (default ['eval']). */
  splits?: string[];
  /** One row per seed group (default true). */
  group?: boolean;
  /** Only these metrics: names (`auc`) or name@K (`wrecall@10`). */
  metrics?: string[];
  /** Row the p-values are against: label, 1-based row number, run folder, version or experiment/version. */
  reference?: string;
  /** Columns without --metrics: `compact` (default) or `all`. */
  view?: 'compact' | 'all';
  /** Multiple-comparison correction (default holm). */
  correction?: Correction;
}

export function recordKey(r: Pick<MetricRecord, 'split' | 'name' | 'task' | 'k' | 'variant'>): string {
  return `${r.split}|${r.name}|${r.task}|${r.k ?? ''}|${r.variant ?? ''}`;
}

export function higherIsBetter(name: string): boolean {
  if (Object.prototype.hasOwnProperty.call(METRIC_REGISTRY, name)) {
    return METRIC_REGISTRY[name as keyof typeof METRIC_REGISTRY].higherIsBetter;
  }
  return !/loss|error/i.test(name);
}

function groupKey(flat: Record<string, string>): string {
  return JSON.stringify(
    Object.entries(flat)
      .filter(([k]) => !IGNORED_KEYS.includes(k) && k !== SEED_KEY)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  );
}

const isCostItem = (m: string) => /^(cost|scoring_us_per_1000)$/i.test(m.trim()); // `--metrics cost`: the scoring-cost column

function metricFilter(items: readonly string[] | undefined): ((c: Pick<Column, 'name' | 'k'>) => boolean) | null {
  if (!items || items.length === 0) return null;
  const wanted = items.filter((m) => !isCostItem(m)).map((raw) => {
    const m = /^([a-z_]+)(?:@(\d+))?$/i.exec(raw.trim());
    if (!m) throw new UsageError(`--metrics: \`${raw}\` is not a metric name or name@K (e.g. auc, wrecall@10)`);
    metricDefinition(m[1]!.toLowerCase());
    return { name: m[1]!.toLowerCase(), k: m[2] === undefined ? undefined : Number(m[2]) };
  });
  return (c) => wanted.some((w) => w.name === c.name && (w.k === undefined || w.k === c.k));
}


function rowFromRuns(runs: ComparedRun[], excluded: boolean): Row {
  const means = new Map<string, number>();
  if (!excluded) {
    const values = new Map<string, number[]>();
    for (const run of runs) {
      for (const r of run.records) {
        const key = recordKey(r);
        let list = values.get(key);
        if (!list) values.set(key, (list = []));
        list.push(r.value);
      }
    }
    for (const [k, v] of values) means.set(k, mean(v));
  }
  return {
    label: '',
    runs,
    excluded,
    status: excluded ? runs[0]!.status : 'completed',
    seeds: runs.map((r) => r.seed),
    cells: new Map(),
    means,
    isReference: false,
  };
}

/** A run's value in a column: its metric record, or its scoring cost. */
export function runValue(run: ComparedRun, key: string): number | undefined {
  if (key === COST_KEY) {
    const v = run.info.cost?.['scoring_us_per_1000'];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  }
  return run.records.find((r) => recordKey(r) === key)?.value;
}

/** Paired tests of `row` against `ref` on one column, runs paired by seed (a seed's runs averaged). */
export function pairedBySeed(row: Row, ref: Row, key: string): PairTest {
  const bySeedOf = (r: Row) => bySeed(r.runs.flatMap((run) => (runValue(run, key) === undefined ? [] : [{ seed: run.seed, value: runValue(run, key)! }])));
  const { xs, ys } = pairUp(bySeedOf(row), bySeedOf(ref));
  return pairTests(xs, ys);
}

/** The compact view's K: the first of `eval.ks` in the first run's config, else the smallest K recorded. */
function mainKOf(runs: readonly ComparedRun[], columns: readonly Column[]): number | null {
  const ks = (runs[0]?.config['eval'] as { ks?: unknown } | undefined)?.ks;
  const present = [...new Set(columns.filter((c) => c.k !== undefined).map((c) => c.k!))].sort((a, b) => a - b);
  if (Array.isArray(ks) && typeof ks[0] === 'number' && present.includes(ks[0])) return ks[0];
  return present[0] ?? null;
}

function inCompactView(c: Column, mainK: number | null): boolean {
  if (c.kind === 'cost') return true;
  if (c.name === 'auc') return true;
  return (c.name === 'wrecall' || c.name === 'ash') && c.k === mainK && (c.variant === undefined || c.variant === 'macro');
}

const MAX_LABEL = 60;

function labelRows(rows: Row[], grouped: boolean): string[] | null {
  const included = rows.filter((r) => !r.excluded);
  const fallback = (): null => {
    for (const row of rows) {
      const first = row.runs[0]!;
      const sameExperiment = included.length > 0 && included.every((r) => r.runs.every((x) => x.info.experiment === first.info.experiment));
      if (!row.excluded && included.length === 1 && row.runs.length > 1 && sameExperiment) row.label = first.info.experiment;
      else row.label = row.runs.length > 1 ? `${first.name} (+${row.runs.length - 1})` : first.name;
    }
    return null;
  };
  if (included.length < 2) return fallback();
  // Configs that describe themselves (`description:`) are labelled by it when that tells rows apart.
  const descriptions = included.map((r) => r.runs[0]!.flat['description']);
  if (descriptions.every((d) => d && d.length <= MAX_LABEL) && new Set(descriptions).size === descriptions.length) {
    included.forEach((r, i) => (r.label = descriptions[i]!));
    for (const row of rows) if (row.excluded) row.label = row.runs[0]!.name;
    return ['description'];
  }
  const flats = included.map((r) => r.runs[0]!.flat);
  const keys = configDiff(flats, grouped ? [...IGNORED_KEYS, SEED_KEY] : IGNORED_KEYS);
  if (keys.length === 0) return fallback();
  const short = (v: string) => (v.length > 24 ? `${v.slice(0, 9)}…${v.slice(-12)}` : v);
  const make = (ks: string[]) => included.map((r) => ks.map((k) => `${k}=${short(r.runs[0]!.flat[k] ?? '(unset)')}`).join(', '));
  const unique = (ls: string[]) => new Set(ls).size === ls.length;
  // the fewest differing keys (in config order) whose values tell the rows apart
  let chosen: string[] | null = null;
  const subsets = (size: number, from: number, acc: string[]): boolean => {
    if (acc.length === size) {
      if (unique(make(acc))) chosen = [...acc];
      return chosen !== null;
    }
    for (let i = from; i < keys.length; i++) if (subsets(size, i + 1, [...acc, keys[i]!])) return true;
    return false;
  };
  for (let size = 1; size <= Math.min(3, keys.length) && !chosen; size++) subsets(size, 0, []);
  if (!chosen) return fallback();
  const labels = make(chosen);
  if (labels.some((l) => l.length > MAX_LABEL)) return fallback();
  included.forEach((r, i) => (r.label = labels[i]!));
  for (const row of rows) if (row.excluded) row.label = row.runs[0]!.name;
  // an excluded run's name can never equal a key=value label, so labels stay unique
  return chosen;
}

function findReference(rows: Row[], spec: string | undefined): Row | null {
  const included = rows.filter((r) => !r.excluded);
  if (spec === undefined) return included[0] ?? null;
  const s = spec.trim();
  const abs = path.resolve(s);
  let row: Row | undefined = rows.find((r) => r.label === s);
  if (!row && /^#?\d+$/.test(s)) row = rows[Number(s.replace('#', '')) - 1];
  row ??= rows.find((r) => r.runs.some((x) => x.dir === abs || x.name === s || x.info.version === s));
  if (!row) {
    throw new UsageError(`--reference ${spec}: no such row or run; rows: ${rows.map((r, i) => `${i + 1} \`${r.label}\``).join(', ')}`);
  }
  if (row.excluded) throw new UsageError(`--reference ${spec}: that run is ${row.status}, not completed`);
  return row;
}

/** Builds the comparison table of the given runs. */
export function buildComparison(runs: ComparedRun[], opts: CompareOptions = {}): Comparison {
  const splits = opts.splits && opts.splits.length > 0 ? [...new Set(opts.splits)] : ['eval'];
  const grouped = opts.group ?? true;
  const keep = metricFilter(opts.metrics);
  const completed = runs.filter((r) => r.completed);

  // rows: seed groups (or single runs) of completed runs, then the others
  const rows: Row[] = [];
  if (grouped) {
    const byKey = new Map<string, ComparedRun[]>();
    for (const run of completed) {
      const k = groupKey(run.flat);
      let list = byKey.get(k);
      if (!list) byKey.set(k, (list = []));
      list.push(run);
    }
    for (const list of byKey.values()) rows.push(rowFromRuns(list, false));
  } else {
    for (const run of completed) rows.push(rowFromRuns([run], false));
  }
  for (const run of runs) if (!run.completed) rows.push(rowFromRuns([run], true));

  // columns: metric records of the chosen splits, in first-seen order
  const columns: Column[] = [];
  const seen = new Set<string>();
  const multiSplit = splits.length > 1;
  for (const split of splits) {
    for (const run of completed) {
      for (const r of run.records) {
        if (r.split !== split) continue;
        const key = recordKey(r);
        if (seen.has(key)) continue;
        seen.add(key);
        const label = metricLabel(r);
        const col: Column = {
          key,
          split,
          name: r.name,
          task: r.task,
          ...(r.k !== undefined ? { k: r.k } : {}),
          ...(r.variant !== undefined ? { variant: r.variant } : {}),
          label,
          title: `${multiSplit ? `${split}: ` : ''}${r.task} ${label}`,
          higherIsBetter: higherIsBetter(r.name),
          kind: 'metric',
        };
        if (!keep || keep(col)) columns.push(col);
      }
    }
  }
  const hasCost = completed.some((run) => runValue(run, COST_KEY) !== undefined);
  const wantCost = opts.metrics ? opts.metrics.some(isCostItem) : true;
  const mainK = mainKOf(completed, columns);
  if (!keep && (opts.view ?? 'compact') === 'compact') {
    const compact = columns.filter((c) => inCompactView(c, mainK));
    if (compact.length > 0) columns.splice(0, columns.length, ...compact);
  }
  if (hasCost && wantCost && (columns.length > 0 || opts.metrics?.every(isCostItem))) {
    columns.push({ key: COST_KEY, split: splits[0]!, name: 'scoring_us_per_1000', task: 'cost', label: 'µs/1000', title: 'cost µs/1000', higherIsBetter: false, kind: 'cost' });
  }
  if (completed.length > 0 && columns.length === 0) {
    const present = [...new Set(completed.flatMap((r) => r.records.map((x) => x.split)))];
    const what = keep ? `the metrics asked for (--metrics ${opts.metrics!.join(',')})` : 'metrics';
    throw new UsageError(
      `no completed run has ${what} for split${multiSplit ? 's' : ''} ${splits.map((s) => `\`${s}\``).join(', ')}; ` +
        (present.length ? `splits present: ${present.join(', ')} (choose with --split)` : 'the runs have no metrics.json records'),
    );
  }

  // cells and best values
  for (const row of rows) {
    if (row.excluded) continue;
    for (const col of columns) {
      const values = row.runs.map((run) => runValue(run, col.key)).filter((v): v is number => v !== undefined);
      if (values.length === 0) continue;
      const cell: Cell = { values, mean: mean(values), std: sampleStd(values), n: values.length, best: false, ci: tInterval(values) };
      const rec = row.runs.flatMap((run) => run.records.filter((r) => recordKey(r) === col.key))[0];
      if (values.length === 1 && rec && Number.isFinite(rec.ci_low) && Number.isFinite(rec.ci_high)) cell.ci = { low: rec.ci_low!, high: rec.ci_high!, level: 0.95, method: 'bootstrap' };
      if (rec && (rec.n_requests !== undefined || rec.n_positives !== undefined)) {
        cell.support = { ...(rec.n_requests !== undefined ? { requests: rec.n_requests } : {}), ...(rec.n_positives !== undefined ? { positives: rec.n_positives } : {}) };
      }
      row.cells.set(col.key, cell);
    }
  }
  for (const col of columns) {
    const cells = rows.map((r) => r.cells.get(col.key)).filter((c): c is Cell => c !== undefined && Number.isFinite(c.mean));
    if (cells.length < 2) continue;
    const best = col.higherIsBetter ? Math.max(...cells.map((c) => c.mean)) : Math.min(...cells.map((c) => c.mean));
    for (const c of cells) if (c.mean === best) c.best = true;
  }

  const labelKeys = labelRows(rows, grouped);
  const correction = opts.correction ?? 'holm';
  const tested = columns.filter((c) => c.kind === 'metric');
  const leaders = markLeaders(
    tested,
    (col) =>
      rows
        .filter((r) => !r.excluded)
        .flatMap((r) => (Number.isFinite(r.cells.get(col.key)?.mean) ? [{ row: r, mean: r.cells.get(col.key)!.mean, setMark: (m: Mark) => (r.cells.get(col.key)!.mark = m) }] : [])),
    (col) => col.higherIsBetter,
    (a, b, col) => pairedBySeed(a, b, col.key),
    correction,
  );
  const reference = findReference(rows, opts.reference);
  if (reference) {
    reference.isReference = true;
    const all: PairTest[] = [];
    for (const row of rows) {
      if (row === reference || row.excluded) continue;
      for (const col of tested) {
        const cell = row.cells.get(col.key);
        if (cell) all.push((cell.test = pairedBySeed(row, reference, col.key)));
      }
    }
    adjust(all, correction);
  }
  return {
    runs,
    splits,
    columns,
    rows,
    diffKeys: configDiff(runs.map((r) => r.flat)),
    labelKeys,
    grouped,
    hasGroups: rows.some((r) => !r.excluded && r.runs.length > 1),
    reference,
    correction,
    leaders: new Map([...leaders].map(([c, t]) => [c.key, t])),
    mainK,
  };
}
