/**
 * `resflow compare`: runs side by side (DESIGN §6, §8).
 *
 * - Loads run folders (or every run of an experiment folder), their resolved config, run.json,
 *   metrics.json and history.csv.
 * - Config differences: each config is flattened to dotted key paths (`model.residual`,
 *   `tasks[1].pos_weight`, lists of plain values as `[64,32]`); the keys whose values differ across
 *   the compared runs are reported (`name` and `description` are ignored).
 * - Seed groups: completed runs whose configs differ only in `runtime.seed` form one row, reported as
 *   mean ± sample standard deviation (n - 1) with n. Between rows, a paired t-test per metric pairs
 *   the runs of two rows by seed (seeds present in both; runs sharing a seed are averaged first) and
 *   gives the two-sided p-value against the reference row (the first, or `--reference`).
 * - The best value of each column (mean for groups) is marked, using the registry's higherIsBetter.
 * - Baseline checks (`--baseline FILE`): expected values with tolerances, for CI.
 *
 * Runs that are not `completed` are listed with their status and left out of every statistic.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DataError, ResflowError, UsageError } from '../base/errors.js';
import { METRIC_REGISTRY, metricDefinition, type MetricRecord } from '../metrics/registry.js';
import { RunFolder, toCsv, type RunInfo } from '../runs/folder.js';
import { fmt, metricLabel } from './tables.js';

/** Top-level config keys that never count as a difference. */
export const IGNORED_KEYS: readonly string[] = ['name', 'description'];
export const SEED_KEY = 'runtime.seed';
/** p-values below this are marked as significant. */
export const SIGNIFICANCE = 0.05;

// ---------------------------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------------------------

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Sample standard deviation (denominator n - 1); NaN for fewer than 2 values. */
export function sampleStd(xs: readonly number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos approximation, g = 7; about 15 significant digits). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0]!;
  const t = z + 7.5;
  for (let i = 1; i < LANCZOS.length; i++) a += LANCZOS[i]! / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the incomplete beta function (modified Lentz, as in Numerical Recipes). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const TINY = 1e-300;
  const EPS = 1e-15;
  const qab = a + b;
  const qap = a + 1;
  const qam = a - 1;
  let c = 1;
  let d = 1 - (qab * x) / qap;
  if (Math.abs(d) < TINY) d = TINY;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 1_000_000; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((qam + m2) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (qab + m) * x) / ((a + m2) * (qap + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < TINY) d = TINY;
    c = 1 + aa / c;
    if (Math.abs(c) < TINY) c = TINY;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < EPS) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b), for a, b > 0 and x in [0, 1]. */
export function regularizedIncompleteBeta(x: number, a: number, b: number): number {
  if (!(a > 0) || !(b > 0) || Number.isNaN(x)) return NaN;
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  const front = Math.exp(lnFront);
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** P(T <= t) for Student's t distribution with `df` degrees of freedom (df > 0, not necessarily whole). */
export function studentTCdf(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (t === Infinity) return 1;
  if (t === -Infinity) return 0;
  const tail = 0.5 * regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t > 0 ? 1 - tail : tail;
}

/** Two-sided p-value of a t statistic: P(|T| >= |t|). */
export function tTwoSidedP(t: number, df: number): number {
  if (Number.isNaN(t) || !(df > 0)) return NaN;
  if (!Number.isFinite(t)) return 0;
  return Math.min(1, regularizedIncompleteBeta(df / (df + t * t), df / 2, 0.5));
}

export interface PairedTTest {
  /** Number of pairs. */
  n: number;
  /** Mean of a - b. */
  meanDiff: number;
  t: number;
  df: number;
  /** Two-sided p-value; NaN (n/a) with fewer than 2 pairs. */
  p: number;
}

/**
 * Paired t-test of a against b (same length, pairs by position). Differences all equal: p = 1 when
 * they are 0, else p = 0 (t is infinite).
 */
export function pairedTTest(a: readonly number[], b: readonly number[]): PairedTTest {
  if (a.length !== b.length) throw new RangeError(`paired t-test: ${a.length} values against ${b.length}`);
  const d = a.map((x, i) => x - b[i]!);
  const n = d.length;
  const md = mean(d);
  if (n < 2) return { n, meanDiff: md, t: NaN, df: n - 1, p: NaN };
  const sd = sampleStd(d);
  const df = n - 1;
  if (sd === 0 || sd < Math.abs(md) * 1e-14) {
    if (md === 0) return { n, meanDiff: 0, t: NaN, df, p: 1 };
    return { n, meanDiff: md, t: md > 0 ? Infinity : -Infinity, df, p: 0 };
  }
  const t = md / (sd / Math.sqrt(n));
  return { n, meanDiff: md, t, df, p: tTwoSidedP(t, df) };
}

// ---------------------------------------------------------------------------------------------
// Loading runs
// ---------------------------------------------------------------------------------------------

export interface HistoryTable {
  columns: string[];
  rows: Record<string, number>[];
}

export interface ComparedRun {
  /** Absolute path of the run folder. */
  dir: string;
  info: RunInfo;
  /** `experiment/version`. */
  name: string;
  status: string;
  completed: boolean;
  config: Record<string, unknown>;
  /** The config flattened to dotted key paths, values as text. */
  flat: Record<string, string>;
  seed: number | null;
  /** Every metric record of the run (all splits); non-finite values left out. */
  records: MetricRecord[];
  /** history.csv, or null when there is none. */
  history: HistoryTable | null;
  /** Task names in config order. */
  tasks: string[];
}

/**
 * Expands the command-line paths into run folders: a folder with run.json is a run; a folder
 * without one whose subfolders hold runs is an experiment (every run in it, sorted by version).
 * Also returns the experiment folders in order (for the default output folder).
 */
export function resolveRunDirs(paths: readonly string[]): { runs: string[]; experimentDirs: string[] } {
  if (paths.length === 0) throw new UsageError('compare needs at least one run folder or experiment folder');
  const runs: string[] = [];
  const experimentDirs: string[] = [];
  for (const p of paths) {
    const abs = path.resolve(p);
    if (!existsSync(abs) || !statSync(abs).isDirectory()) {
      throw new UsageError(`${p}: no such folder (expected a run folder or an experiment folder of runs)`);
    }
    if (existsSync(path.join(abs, 'run.json'))) {
      runs.push(abs);
      experimentDirs.push(path.dirname(abs));
      continue;
    }
    const subs = readdirSync(abs, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(path.join(abs, d.name, 'run.json')))
      .map((d) => d.name)
      .sort();
    if (subs.length === 0) {
      throw new UsageError(`${p}: neither a run folder (no run.json) nor an experiment folder (no run folders in it)`);
    }
    runs.push(...subs.map((s) => path.join(abs, s)));
    experimentDirs.push(abs);
  }
  return { runs: [...new Set(runs)], experimentDirs: [...new Set(experimentDirs)] };
}

function formatConfigValue(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/**
 * Flattens a config to dotted key paths. Objects nest with `.`, lists of objects with `[i]` (as
 * `--set` writes them); lists of plain values, numbers, booleans and null are kept as JSON text.
 */
export function flattenConfig(value: unknown, prefix = '', out: Record<string, string> = {}): Record<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && prefix) out[prefix] = '{}';
    for (const [k, v] of entries) flattenConfig(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (Array.isArray(value) && value.some((v) => v !== null && typeof v === 'object')) {
    value.forEach((v, i) => flattenConfig(v, `${prefix}[${i}]`, out));
  } else {
    out[prefix] = formatConfigValue(value);
  }
  return out;
}

/** Keys (first-seen order) whose values differ across the flattened configs; a missing key counts as a value. */
export function configDiff(flats: readonly Record<string, string>[], ignore: readonly string[] = IGNORED_KEYS): string[] {
  const keys: string[] = [];
  const seen = new Set<string>();
  for (const f of flats) for (const k of Object.keys(f)) if (!seen.has(k)) (seen.add(k), keys.push(k));
  return keys.filter((k) => {
    if (ignore.includes(k)) return false;
    const first = flats[0]?.[k];
    return flats.some((f) => f[k] !== first);
  });
}

function parseHistory(file: string): HistoryTable | null {
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, 'utf8').split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length === 0) return null;
  const columns = lines[0]!.split(',').map((c) => c.trim());
  const rows = lines.slice(1).map((line) => {
    const cells = line.split(',');
    const row: Record<string, number> = {};
    columns.forEach((c, i) => {
      const s = cells[i]?.trim();
      row[c] = s === undefined || s === '' ? NaN : Number(s);
    });
    return row;
  });
  return { columns, rows };
}

function readRecords(run: RunFolder): MetricRecord[] {
  const file = run.path('metrics.json');
  if (!existsSync(file)) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file}: unreadable (${(err as Error).message})`);
  }
  if (!Array.isArray(parsed)) throw new DataError(`${file}: expected a list of metric records`);
  return (parsed as MetricRecord[]).filter(
    (r) => r && typeof r.name === 'string' && typeof r.task === 'string' && typeof r.split === 'string' && typeof r.value === 'number' && Number.isFinite(r.value),
  );
}

export function loadRun(dir: string): ComparedRun {
  const run = RunFolder.open(dir);
  const config = (run.config() ?? {}) as unknown as Record<string, unknown>;
  const flat = flattenConfig(config);
  const runtime = config['runtime'] as { seed?: unknown } | undefined;
  const seed = typeof runtime?.seed === 'number' ? runtime.seed : typeof run.info.seed === 'number' ? run.info.seed : null;
  const tasks = Array.isArray(config['tasks'])
    ? (config['tasks'] as { name?: unknown }[]).map((t) => t?.name).filter((n): n is string => typeof n === 'string')
    : [];
  const status = String(run.info.status ?? 'unknown');
  return {
    dir: run.dir,
    info: run.info,
    name: `${run.info.experiment ?? path.basename(path.dirname(run.dir))}/${run.info.version ?? path.basename(run.dir)}`,
    status,
    completed: status === 'completed',
    config,
    flat,
    seed,
    records: readRecords(run),
    history: parseHistory(run.path('history.csv')),
    tasks,
  };
}

// ---------------------------------------------------------------------------------------------
// The comparison
// ---------------------------------------------------------------------------------------------

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
}

export interface Cell {
  values: number[];
  mean: number;
  /** Sample std; NaN with one value. */
  std: number;
  n: number;
  best: boolean;
  /** Paired t-test against the reference row (absent for the reference and excluded rows). */
  test?: PairedTTest;
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

function metricFilter(items: readonly string[] | undefined): ((c: Pick<Column, 'name' | 'k'>) => boolean) | null {
  if (!items || items.length === 0) return null;
  const wanted = items.map((raw) => {
    const m = /^([a-z_]+)(?:@(\d+))?$/i.exec(raw.trim());
    if (!m) throw new UsageError(`--metrics: \`${raw}\` is not a metric name or name@K (e.g. auc, wrecall@10)`);
    metricDefinition(m[1]!.toLowerCase());
    return { name: m[1]!.toLowerCase(), k: m[2] === undefined ? undefined : Number(m[2]) };
  });
  return (c) => wanted.some((w) => w.name === c.name && (w.k === undefined || w.k === c.k));
}

/** The distinct values of `key` among runs, in first-seen order ('' shown as `(unset)`). */
function distinctValues(runs: readonly ComparedRun[], key: string): string[] {
  const out: string[] = [];
  for (const r of runs) {
    const v = r.flat[key] ?? '(unset)';
    if (!out.includes(v)) out.push(v);
  }
  return out;
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

/** Per seed, the mean value of a metric over the row's runs with that seed. */
function valuesBySeed(row: Row, key: string): Map<number, number> {
  const acc = new Map<number, number[]>();
  for (const run of row.runs) {
    if (run.seed === null) continue;
    const rec = run.records.find((r) => recordKey(r) === key);
    if (!rec) continue;
    let l = acc.get(run.seed);
    if (!l) acc.set(run.seed, (l = []));
    l.push(rec.value);
  }
  return new Map([...acc].map(([s, v]) => [s, mean(v)]));
}

/** Paired t-test of `row` against `ref` on one metric, runs paired by seed. */
export function pairedBySeed(row: Row, ref: Row, key: string): PairedTTest {
  const a = valuesBySeed(row, key);
  const b = valuesBySeed(ref, key);
  const xs: number[] = [];
  const ys: number[] = [];
  for (const [seed, v] of a) {
    const w = b.get(seed);
    if (w !== undefined) (xs.push(v), ys.push(w));
  }
  return pairedTTest(xs, ys);
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
        };
        if (!keep || keep(col)) columns.push(col);
      }
    }
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
      const values = row.runs.map((run) => run.records.find((r) => recordKey(r) === col.key)?.value).filter((v): v is number => v !== undefined);
      if (values.length === 0) continue;
      row.cells.set(col.key, { values, mean: mean(values), std: sampleStd(values), n: values.length, best: false });
    }
  }
  for (const col of columns) {
    const cells = rows.map((r) => r.cells.get(col.key)).filter((c): c is Cell => c !== undefined && Number.isFinite(c.mean));
    if (cells.length < 2) continue;
    const best = col.higherIsBetter ? Math.max(...cells.map((c) => c.mean)) : Math.min(...cells.map((c) => c.mean));
    for (const c of cells) if (c.mean === best) c.best = true;
  }

  const labelKeys = labelRows(rows, grouped);
  const reference = findReference(rows, opts.reference);
  if (reference) {
    reference.isReference = true;
    for (const row of rows) {
      if (row === reference || row.excluded) continue;
      for (const col of columns) {
        const cell = row.cells.get(col.key);
        if (cell) cell.test = pairedBySeed(row, reference, col.key);
      }
    }
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
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/** One cell of a rendered table: its text, and whether it is a best value or a significant p. */
export interface TableCell {
  text: string;
  mark?: boolean;
  numeric?: boolean;
}

export interface TableModel {
  /** Header per column; `top` is the task (and split) line of a two-line text header. */
  head: { top: string; bottom: string; numeric: boolean }[];
  rows: TableCell[][];
}

export function fmtP(p: number): string {
  if (Number.isNaN(p)) return 'n/a';
  if (p === 0) return '0';
  if (p < 0.001) return p.toExponential(1);
  return p.toFixed(4);
}

/** The values of the differing config keys in a row: one value, or the distinct values joined. */
export function rowConfigValue(row: Row, key: string): string {
  return distinctValues(row.runs, key).join(', ');
}

function cellText(c: Cell): string {
  return c.n > 1 ? `${fmt(c.mean)} ± ${fmt(c.std)}` : fmt(c.mean);
}

/** Main table: label, [n, seeds], [status], [differing config keys], metrics. */
export function mainTable(cmp: Comparison): TableModel {
  const head: TableModel['head'] = [{ top: '', bottom: cmp.hasGroups ? 'group' : 'run', numeric: false }];
  const showGroups = cmp.hasGroups;
  const showStatus = cmp.rows.some((r) => r.excluded);
  // labels made of config values already say how rows differ; otherwise show the differing keys
  const configCols = cmp.labelKeys ? [] : cmp.diffKeys.filter((k) => !(k === SEED_KEY && showGroups));
  if (showGroups) head.push({ top: '', bottom: 'n', numeric: true }, { top: '', bottom: 'seeds', numeric: false });
  if (showStatus) head.push({ top: '', bottom: 'status', numeric: false });
  for (const k of configCols) head.push({ top: 'config', bottom: k, numeric: false });
  for (const c of cmp.columns) head.push({ top: `${cmp.splits.length > 1 ? `${c.split}: ` : ''}${c.task}`, bottom: c.label, numeric: true });
  const rows = cmp.rows.map((row) => {
    const cells: TableCell[] = [{ text: row.label }];
    if (showGroups) cells.push({ text: row.excluded ? '' : String(row.runs.length), numeric: true }, { text: row.seeds.map((s) => s ?? '?').join(',') });
    if (showStatus) cells.push({ text: row.status });
    for (const k of configCols) cells.push({ text: rowConfigValue(row, k) });
    for (const c of cmp.columns) {
      const cell = row.cells.get(c.key);
      cells.push(row.excluded ? { text: '-', numeric: true } : cell ? { text: cellText(cell), mark: cell.best, numeric: true } : { text: '', numeric: true });
    }
    return cells;
  });
  return { head, rows };
}

/** p-value table against the reference (rows other than the reference and excluded ones). */
export function pValueTable(cmp: Comparison): TableModel | null {
  if (!cmp.reference || !cmp.hasGroups) return null;
  const others = cmp.rows.filter((r) => !r.excluded && r !== cmp.reference);
  if (others.length === 0) return null;
  const head: TableModel['head'] = [
    { top: '', bottom: cmp.hasGroups ? 'group' : 'run', numeric: false },
    { top: '', bottom: 'pairs', numeric: true },
  ];
  for (const c of cmp.columns) head.push({ top: `${cmp.splits.length > 1 ? `${c.split}: ` : ''}${c.task}`, bottom: c.label, numeric: true });
  const rows = others.map((row) => {
    const pairs = Math.max(0, ...[...row.cells.values()].map((c) => c.test?.n ?? 0));
    const cells: TableCell[] = [{ text: row.label }, { text: String(pairs), numeric: true }];
    for (const c of cmp.columns) {
      const t = row.cells.get(c.key)?.test;
      cells.push(t ? { text: fmtP(t.p), mark: t.p < SIGNIFICANCE, numeric: true } : { text: '', numeric: true });
    }
    return cells;
  });
  return { head, rows };
}

/** Aligned plain text; columns that do not fit in `width` continue in further blocks. */
export function renderTextTable(model: TableModel, width = Infinity): string {
  // a marked column pads unmarked numbers by one space so that the digits stay aligned
  const marked = model.head.map((_, i) => model.rows.some((r) => r[i]!.mark));
  const text = (c: TableCell, i: number) => `${c.text}${c.mark ? '*' : c.numeric && marked[i] ? ' ' : ''}`;
  const widths = model.head.map((h, i) => Math.max(h.top.length, h.bottom.length, ...model.rows.map((r) => text(r[i]!, i).length)));
  const hasTop = model.head.some((h) => h.top !== '');
  // blocks of columns: the label column repeats in each block
  const blocks: number[][] = [];
  const fixed = [0];
  let current: number[] = [];
  let used = widths[0]!;
  for (let i = 1; i < model.head.length; i++) {
    const w = widths[i]! + 2;
    if (current.length > 0 && used + w > width) {
      blocks.push(current);
      current = [];
      used = widths[0]!;
    }
    current.push(i);
    used += w;
  }
  blocks.push(current);
  const out: string[] = [];
  for (const block of blocks) {
    const cols = [...fixed, ...block];
    const line = (cells: { s: string; numeric: boolean }[]) =>
      cells
        .map((c, j) => {
          const w = widths[cols[j]!]!;
          return c.numeric ? c.s.padStart(w) : c.s.padEnd(w);
        })
        .join('  ')
        .trimEnd();
    if (out.length > 0) out.push('');
    if (hasTop) out.push(line(cols.map((i) => ({ s: model.head[i]!.top, numeric: model.head[i]!.numeric }))));
    out.push(line(cols.map((i) => ({ s: model.head[i]!.bottom, numeric: model.head[i]!.numeric }))));
    out.push(cols.map((i) => '-'.repeat(widths[i]!)).join('  '));
    for (const r of model.rows) out.push(line(cols.map((i) => ({ s: text(r[i]!, i), numeric: model.head[i]!.numeric }))));
  }
  return out.join('\n');
}

function mdEscape(s: string): string {
  return s.replace(/\|/g, '\\|');
}

export function renderMarkdownTable(model: TableModel): string {
  const title = (h: TableModel['head'][number]) => mdEscape([h.top === 'config' ? '' : h.top, h.bottom].filter(Boolean).join(' '));
  const lines = [
    `| ${model.head.map(title).join(' | ')} |`,
    `|${model.head.map((h) => (h.numeric ? '---:' : '---')).join('|')}|`,
    ...model.rows.map((r) => `| ${r.map((c) => mdEscape(`${c.text}${c.mark ? '*' : ''}`)).join(' | ')} |`),
  ];
  return lines.join('\n');
}

function runsSummary(cmp: Comparison): string {
  const included = cmp.rows.filter((r) => !r.excluded);
  const excluded = cmp.rows.filter((r) => r.excluded);
  const n = included.reduce((s, r) => s + r.runs.length, 0);
  let s = `${n} completed run${n === 1 ? '' : 's'}`;
  if (cmp.hasGroups) s += ` in ${included.length} seed group${included.length === 1 ? '' : 's'}`;
  s += `, split ${cmp.splits.join(', ')}`;
  if (excluded.length) s += `; ${excluded.length} not completed (${excluded.map((r) => r.status).join(', ')}), left out of the statistics`;
  return s;
}

function diffLines(cmp: Comparison): string[] {
  if (cmp.diffKeys.length === 0) return ['config: identical across runs (name and description ignored)'];
  const w = Math.max(...cmp.diffKeys.map((k) => k.length));
  return [
    'config differences (name and description ignored):',
    ...cmp.diffKeys.map((k) => `  ${k.padEnd(w)}  ${distinctValues(cmp.runs, k).join(' | ')}`),
  ];
}

function bestNote(cmp: Comparison): string {
  const lower = [...new Set(cmp.columns.filter((c) => !c.higherIsBetter).map((c) => c.name))];
  return `* best in its column (higher is better${lower.length ? `; lower for ${lower.join(', ')}` : ''})` + (cmp.hasGroups ? '; groups: mean ± sample std over seeds' : '');
}

function pNote(cmp: Comparison): string {
  return `paired t-test against \`${cmp.reference!.label}\` per metric (runs paired by ${SEED_KEY}; two-sided p; * p < ${SIGNIFICANCE}; n/a: fewer than 2 pairs)`;
}

export function renderText(cmp: Comparison, width = Infinity): string {
  const out = [runsSummary(cmp), ...diffLines(cmp), '', renderTextTable(mainTable(cmp), width), bestNote(cmp)];
  const p = pValueTable(cmp);
  if (p) out.push('', pNote(cmp).replace(/`/g, ''), renderTextTable(p, width));
  return out.join('\n');
}

export function renderMarkdown(cmp: Comparison): string {
  const out = [`## Comparison`, '', runsSummary(cmp), ''];
  if (cmp.diffKeys.length === 0) out.push('Config: identical across runs (name and description ignored).', '');
  else out.push('Config differences (name and description ignored):', '', ...cmp.diffKeys.map((k) => `- \`${k}\`: ${distinctValues(cmp.runs, k).map((v) => `\`${v}\``).join(', ')}`), '');
  out.push(renderMarkdownTable(mainTable(cmp)), '', bestNote(cmp).replace(/^\*/, '\\*'));
  const p = pValueTable(cmp);
  if (p) out.push('', '### Significance', '', pNote(cmp).replace('* p', '\\* p'), '', renderMarkdownTable(p));
  return out.join('\n') + '\n';
}

export function renderCsv(cmp: Comparison): string {
  const rows = cmp.rows.map((row) => {
    const o: Record<string, unknown> = {
      row: row.label,
      status: row.status,
      n: row.excluded ? '' : row.runs.length,
      seeds: row.seeds.map((s) => s ?? '').join(' '),
      runs: row.runs.map((r) => r.dir).join(' '),
    };
    for (const k of cmp.diffKeys) o[k] = rowConfigValue(row, k);
    for (const c of cmp.columns) {
      const cell = row.cells.get(c.key);
      o[c.title] = cell?.mean;
      if (cmp.hasGroups) o[`${c.title} std`] = cell && cell.n > 1 ? cell.std : undefined;
      if (cmp.hasGroups && cmp.reference) o[`${c.title} p`] = cell?.test && !Number.isNaN(cell.test.p) ? cell.test.p : undefined;
    }
    return o;
  });
  return toCsv(rows);
}

const num = (v: number): number | null => (Number.isFinite(v) ? v : null);

export function comparisonJson(cmp: Comparison): unknown {
  return {
    splits: cmp.splits,
    grouped: cmp.grouped,
    reference: cmp.reference?.label ?? null,
    config_differences: Object.fromEntries(cmp.diffKeys.map((k) => [k, distinctValues(cmp.runs, k)])),
    columns: cmp.columns.map((c) => ({
      key: c.title,
      split: c.split,
      name: c.name,
      task: c.task,
      ...(c.k !== undefined ? { k: c.k } : {}),
      ...(c.variant ? { variant: c.variant } : {}),
      higher_is_better: c.higherIsBetter,
    })),
    rows: cmp.rows.map((row) => ({
      label: row.label,
      status: row.status,
      excluded: row.excluded,
      reference: row.isReference,
      n: row.excluded ? 0 : row.runs.length,
      seeds: row.seeds,
      config: Object.fromEntries(cmp.diffKeys.map((k) => [k, rowConfigValue(row, k)])),
      runs: row.runs.map((r) => ({ dir: r.dir, name: r.name, status: r.status, seed: r.seed })),
      metrics: Object.fromEntries(
        cmp.columns
          .filter((c) => row.cells.has(c.key))
          .map((c) => {
            const cell = row.cells.get(c.key)!;
            return [
              c.title,
              {
                mean: num(cell.mean),
                std: num(cell.std),
                n: cell.n,
                values: cell.values,
                best: cell.best,
                ...(cell.test ? { p_value: num(cell.test.p), pairs: cell.test.n, significant: cell.test.p < SIGNIFICANCE } : {}),
              },
            ];
          }),
      ),
    })),
  };
}

export function renderJson(cmp: Comparison, baseline?: BaselineResult): string {
  const o = comparisonJson(cmp) as Record<string, unknown>;
  if (baseline) o['baseline'] = baselineJson(baseline);
  return JSON.stringify(o, null, 2) + '\n';
}

// ---------------------------------------------------------------------------------------------
// Baseline checks
// ---------------------------------------------------------------------------------------------

/** A baseline check failed: exit code 1, so CI marks the job failed. */
export class BaselineFailure extends ResflowError {
  constructor(message: string) {
    super(message, 1);
  }
}

export interface BaselineEntry {
  name: string;
  task?: string;
  split?: string;
  k?: number;
  variant?: 'macro' | 'micro';
  min?: number;
  max?: number;
  value?: number;
  tolerance?: number;
  /** 1-based position in the file. */
  index: number;
}

const ENTRY_KEYS = ['name', 'task', 'split', 'k', 'variant', 'min', 'max', 'value', 'tolerance'];

/** Reads a baseline file: a YAML/JSON list of entries (or `{ metrics: [...] }`). Errors exit 2. */
export function loadBaseline(file: string): BaselineEntry[] {
  if (!existsSync(file)) throw new UsageError(`--baseline ${file}: no such file`);
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file}: not valid YAML/JSON (${(err as Error).message.split('\n')[0]})`);
  }
  if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
    const d = doc as Record<string, unknown>;
    doc = d['metrics'] ?? d['baseline'];
  }
  if (!Array.isArray(doc) || doc.length === 0) {
    throw new DataError(`${file}: expected a list of expected values, e.g. - { name: auc, task: ctr, split: eval, min: 0.58 }`);
  }
  return doc.map((raw, i): BaselineEntry => {
    const where = `${file}: entry ${i + 1}`;
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new DataError(`${where}: expected a mapping like { name: auc, task: ctr, min: 0.58 }`);
    const e = raw as Record<string, unknown>;
    for (const k of Object.keys(e)) if (!ENTRY_KEYS.includes(k)) throw new DataError(`${where}: unknown key \`${k}\` (keys: ${ENTRY_KEYS.join(', ')})`);
    if (typeof e['name'] !== 'string') throw new DataError(`${where}: \`name\` (the metric) is required`);
    try {
      metricDefinition(e['name']);
    } catch (err) {
      throw new DataError(`${where}: ${(err as Error).message}`);
    }
    for (const k of ['task', 'split']) if (e[k] !== undefined && typeof e[k] !== 'string') throw new DataError(`${where}: \`${k}\` must be a string`);
    for (const k of ['k', 'min', 'max', 'value', 'tolerance']) {
      if (e[k] !== undefined && (typeof e[k] !== 'number' || !Number.isFinite(e[k]))) throw new DataError(`${where}: \`${k}\` must be a number`);
    }
    if (e['variant'] !== undefined && e['variant'] !== 'macro' && e['variant'] !== 'micro') throw new DataError(`${where}: \`variant\` must be macro or micro`);
    if (e['min'] === undefined && e['max'] === undefined && e['value'] === undefined) throw new DataError(`${where}: give min, max or value (with tolerance)`);
    if (e['tolerance'] !== undefined && e['value'] === undefined) throw new DataError(`${where}: \`tolerance\` needs \`value\``);
    if (typeof e['tolerance'] === 'number' && e['tolerance'] < 0) throw new DataError(`${where}: \`tolerance\` must be >= 0`);
    const out: BaselineEntry = { name: e['name'], index: i + 1 };
    for (const k of ['task', 'split', 'k', 'variant', 'min', 'max', 'value', 'tolerance'] as const) {
      if (e[k] !== undefined) (out as unknown as Record<string, unknown>)[k] = e[k];
    }
    return out;
  });
}

export interface BaselineCheck {
  row: string;
  entry: BaselineEntry;
  /** The metric checked, as `split: task label`. */
  metric: string;
  expected: string;
  found: number | null;
  ok: boolean;
}

export interface BaselineResult {
  file: string;
  checks: BaselineCheck[];
  failures: BaselineCheck[];
}

function expectation(e: BaselineEntry): string {
  const parts: string[] = [];
  if (e.value !== undefined) parts.push(`${e.value} ± ${e.tolerance ?? 0}`);
  if (e.min !== undefined) parts.push(`>= ${e.min}`);
  if (e.max !== undefined) parts.push(`<= ${e.max}`);
  return parts.join(' and ');
}

function satisfies(e: BaselineEntry, v: number): boolean {
  const slack = 1e-12 * Math.max(1, Math.abs(v));
  if (e.min !== undefined && v < e.min - slack) return false;
  if (e.max !== undefined && v > e.max + slack) return false;
  if (e.value !== undefined && Math.abs(v - e.value) > (e.tolerance ?? 0) + slack) return false;
  return true;
}

function parseKey(key: string): { split: string; name: string; task: string; k?: number; variant?: 'macro' | 'micro' } {
  const [split, name, task, k, variant] = key.split('|') as [string, string, string, string, string];
  return { split, name, task, ...(k ? { k: Number(k) } : {}), ...(variant ? { variant: variant as 'macro' | 'micro' } : {}) };
}

/**
 * Checks every completed row (a group by its mean) against every entry. An entry without `split`
 * applies to the compared splits; one without task/k/variant applies to each metric it matches.
 * An entry that matches no metric of any row is a DataError (exit 2).
 */
export function checkBaseline(cmp: Comparison, entries: readonly BaselineEntry[], file: string): BaselineResult {
  const rows = cmp.rows.filter((r) => !r.excluded);
  const checks: BaselineCheck[] = [];
  for (const e of entries) {
    const matches = (key: string) => {
      const m = parseKey(key);
      return (
        m.name === e.name &&
        (e.split !== undefined ? m.split === e.split : cmp.splits.includes(m.split)) &&
        (e.task === undefined || m.task === e.task) &&
        (e.k === undefined || m.k === e.k) &&
        (e.variant === undefined || m.variant === e.variant)
      );
    };
    const keys: string[] = [];
    for (const row of rows) for (const k of row.means.keys()) if (matches(k) && !keys.includes(k)) keys.push(k);
    if (keys.length === 0) {
      const what = [e.name, e.task, e.k !== undefined ? `@${e.k}` : '', e.variant, `split ${e.split ?? cmp.splits.join('/')}`].filter(Boolean).join(' ');
      throw new DataError(`${file}: entry ${e.index} (${what}) matches no metric of the compared runs`);
    }
    for (const key of keys) {
      const m = parseKey(key);
      const metric = `${m.split}: ${m.task} ${metricLabel(m)}`;
      for (const row of rows) {
        const v = row.means.get(key);
        const found = v === undefined || !Number.isFinite(v) ? null : v;
        checks.push({ row: row.label, entry: e, metric, expected: expectation(e), found, ok: found !== null && satisfies(e, found) });
      }
    }
  }
  return { file, checks, failures: checks.filter((c) => !c.ok) };
}

export function baselineLine(c: BaselineCheck): string {
  return `${c.ok ? 'ok  ' : 'FAIL'} ${c.row}: ${c.metric} = ${c.found === null ? 'missing' : fmt(c.found)}, expected ${c.expected}`;
}

export function renderBaseline(b: BaselineResult, format: 'table' | 'md'): string {
  const head = `baseline ${b.file}: ${b.checks.length - b.failures.length} of ${b.checks.length} checks passed`;
  if (format === 'md') return [`### Baseline`, '', `${head}`, '', ...b.checks.map((c) => `- ${baselineLine(c)}`)].join('\n') + '\n';
  return [head, ...b.failures.map((c) => `  ${baselineLine(c)}`)].join('\n');
}

function baselineJson(b: BaselineResult): unknown {
  return {
    file: b.file,
    passed: b.failures.length === 0,
    checks: b.checks.map((c) => ({ row: c.row, metric: c.metric, expected: c.expected, found: c.found, ok: c.ok })),
  };
}
