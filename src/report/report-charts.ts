/**
 * The charts of the comparison report (vega-lite specs; plots.ts renders them to SVG):
 * - dot-and-interval per metric family: the mean of each row with its 95% interval over seeds (a single
 *   run: its bootstrap interval over requests, when `eval --bootstrap` recorded one), on an
 *   axis that is not cut above zero as bars would be (AUC-like values sit far from zero);
 * - WR@K and ASH@K (and Recall@K) as curves over every K the evaluation wrote, one line per row,
 *   with a band for the 95% interval across seeds;
 * - training curves, one line per row (mean over its seeds per epoch) with a band (min to max),
 *   one panel per series, every row on the panel's shared scale;
 * - quality versus latency: a chosen metric against `cost.scoring_us_per_1000` (run.json), with the
 *   Pareto front (no other row both better and cheaper) marked.
 */
import { COST_KEY, runValue, type Column, type Comparison, type Row } from './compare.js';
import { mean } from './statistics.js';

export type VlSpec = Record<string, unknown>;

const LEGEND = { orient: 'bottom', direction: 'vertical', columns: 2, labelLimit: 360 };

function rowsIn(cmp: Comparison): Row[] {
  return cmp.rows.filter((r) => !r.excluded);
}

function groupTitle(cmp: Comparison): string {
  return cmp.hasGroups ? 'group' : 'run';
}

function ciOf(cell: { mean: number; ci: { low: number; high: number } }): { lo: number; hi: number } {
  return Number.isFinite(cell.ci.low) ? { lo: cell.ci.low, hi: cell.ci.high } : { lo: cell.mean, hi: cell.mean };
}

function metricName(cmp: Comparison, c: Column): string {
  return [cmp.splits.length > 1 ? `${c.split}:` : '', c.task, c.k !== undefined ? `@${c.k}` : '', c.variant ?? ''].filter(Boolean).join(' ');
}

type Cell = NonNullable<ReturnType<Row['cells']['get']>>;

/** One chart data point per (column, row) cell with a finite mean, in column then row order. */
function cellPoints(cols: readonly Column[], rows: readonly Row[], point: (c: Column, r: Row, cell: Cell) => Record<string, unknown>): Record<string, unknown>[] {
  const data: Record<string, unknown>[] = [];
  for (const c of cols) {
    for (const r of rows) {
      const cell = r.cells.get(c.key);
      if (cell && Number.isFinite(cell.mean)) data.push(point(c, r, cell));
    }
  }
  return data;
}

/** What the intervals are: t over seeds, and the bootstrap over requests where a single run recorded one (eval --bootstrap). */
function intervalWords(cmp: Comparison): string {
  const boot = cmp.rows.some((r) => [...r.cells.values()].some((c) => c.ci.method === 'bootstrap' && Number.isFinite(c.ci.low)));
  return boot ? '95% interval (t over seeds; single runs: bootstrap over requests)' : '95% t interval over seeds';
}

/** Dot-and-interval chart of one metric family across rows; null when no row has it. @K families give only the main K. */
export function intervalSpec(cmp: Comparison, family: string): VlSpec | null {
  let cols = cmp.columns.filter((c) => c.name === family && c.kind === 'metric');
  if (cols.some((c) => c.k !== undefined)) cols = cols.filter((c) => c.k === (cmp.mainK ?? c.k));
  const rows = rowsIn(cmp);
  const data = cellPoints(cols, rows, (c, r, cell) => ({ metric: metricName(cmp, c), row: r.label, mean: cell.mean, ...ciOf(cell), n: cell.n }));
  if (data.length === 0) return null;
  const labels = rows.map((r) => r.label);
  const higher = cols[0]!.higherIsBetter;
  return {
    title: { text: `${family} (${cmp.splits.join(', ')})`, subtitle: `${higher ? 'higher' : 'lower'} is better; dot: mean, line: ${intervalWords(cmp)}` },
    data: { values: data },
    facet: { column: { field: 'metric', type: 'nominal', title: null, sort: [...new Set(data.map((d) => d['metric']))] } },
    spec: {
      width: 200,
      height: { step: 18 },
      layer: [
        { mark: { type: 'rule', strokeWidth: 2, color: '#888' }, encoding: { x: { field: 'lo', type: 'quantitative', scale: { zero: false }, title: family }, x2: { field: 'hi' } } },
        { mark: { type: 'point', filled: true, size: 60 }, encoding: { x: { field: 'mean', type: 'quantitative' } } },
      ],
      encoding: {
        y: { field: 'row', type: 'nominal', sort: labels, title: null, axis: { labelLimit: 220 } },
        color: { field: 'row', type: 'nominal', sort: labels, legend: null },
        tooltip: [{ field: 'row' }, { field: 'mean', format: '.4f' }, { field: 'lo', format: '.4f' }, { field: 'hi', format: '.4f' }, { field: 'n' }],
      },
    },
    resolve: { scale: { x: 'independent' } },
  };
}

/** A @K family (wrecall, ash, recall) as curves over K; null with fewer than 2 Ks. */
export function kCurveSpec(cmp: Comparison, family: string): VlSpec | null {
  const cols = cmp.columns.filter((c) => c.name === family && c.k !== undefined && (c.variant === undefined || c.variant === 'macro'));
  if (new Set(cols.map((c) => c.k)).size < 2) return null;
  const rows = rowsIn(cmp);
  const data = cellPoints(cols, rows, (c, r, cell) => ({ panel: metricName(cmp, { ...c, k: undefined } as Column), k: c.k, row: r.label, mean: cell.mean, ...ciOf(cell) }));
  if (data.length === 0) return null;
  const labels = rows.map((r) => r.label);
  return {
    title: { text: `${family}@K over K (${cmp.splits.join(', ')})`, subtitle: `macro; band: ${intervalWords(cmp)}` },
    data: { values: data },
    facet: { column: { field: 'panel', type: 'nominal', title: null } },
    spec: {
      width: 320,
      height: 220,
      layer: [
        { mark: { type: 'area', opacity: 0.18 }, encoding: { y: { field: 'lo', type: 'quantitative', title: family }, y2: { field: 'hi' } } },
        { mark: { type: 'line', point: data.length <= 200 }, encoding: { y: { field: 'mean', type: 'quantitative' } } },
      ],
      encoding: {
        x: { field: 'k', type: 'quantitative', title: 'K' },
        color: { field: 'row', type: 'nominal', sort: labels, title: groupTitle(cmp), legend: LEGEND },
      },
    },
  };
}

/** Training curves of every row: mean over seeds per epoch, band min..max, one panel per series on a shared y scale per panel. */
export function groupCurvesSpec(cmp: Comparison): VlSpec | null {
  const data: Record<string, unknown>[] = [];
  const panels: string[] = [];
  for (const row of cmp.rows) {
    const runs = row.runs.filter((r) => r.history && r.history.rows.length > 0);
    if (runs.length === 0) continue;
    const tasks = runs[0]!.tasks;
    const series: [string, string][] = [['train_loss', 'train loss (total)'], ...tasks.flatMap((t): [string, string][] => [[`train_${t}_loss`, `train ${t} loss`], [`val_${t}_auc`, `validation ${t} AUC`]])];
    for (const [col, panel] of series) {
      const byEpoch = new Map<number, number[]>();
      for (const run of runs) {
        for (const h of run.history!.rows) {
          const v = h[col];
          const e = h['epoch'];
          if (v === undefined || e === undefined || !Number.isFinite(v)) continue;
          let l = byEpoch.get(e);
          if (!l) byEpoch.set(e, (l = []));
          l.push(v);
        }
      }
      for (const [epoch, vs] of byEpoch) {
        if (!panels.includes(panel)) panels.push(panel);
        data.push({ panel, epoch, row: row.excluded ? `${row.label} (${row.status})` : row.label, mean: mean(vs), lo: Math.min(...vs), hi: Math.max(...vs) });
      }
    }
  }
  if (data.length === 0) return null;
  return {
    title: { text: 'training curves', subtitle: 'one line per row: mean over its seeds; band: min to max across seeds' },
    data: { values: data },
    facet: { field: 'panel', type: 'nominal', title: null, sort: panels },
    columns: 3,
    spec: {
      width: 240,
      height: 160,
      layer: [
        { mark: { type: 'area', opacity: 0.18 }, encoding: { y: { field: 'lo', type: 'quantitative', title: null, scale: { zero: false } }, y2: { field: 'hi' } } },
        { mark: { type: 'line', point: true }, encoding: { y: { field: 'mean', type: 'quantitative' } } },
      ],
      encoding: {
        x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' } },
        color: { field: 'row', type: 'nominal', title: groupTitle(cmp), legend: LEGEND },
      },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** The metric of the quality-versus-latency chart: `spec` (name or name@K), else WR@main K, ASH@main K, or the first AUC. */
export function tradeoffColumn(cmp: Comparison, spec?: string): Column | undefined {
  const metrics = cmp.columns.filter((c) => c.kind === 'metric');
  const macro = (c: Column) => c.variant === undefined || c.variant === 'macro';
  if (spec) {
    const m = /^([a-z_]+)(?:@(\d+))?$/i.exec(spec.trim());
    return m ? metrics.find((c) => c.name === m[1]!.toLowerCase() && (m[2] === undefined || c.k === Number(m[2])) && macro(c)) : undefined;
  }
  return (
    metrics.find((c) => c.name === 'wrecall' && c.k === cmp.mainK && macro(c)) ??
    metrics.find((c) => c.name === 'ash' && c.k === cmp.mainK && macro(c)) ??
    metrics.find((c) => c.name === 'auc')
  );
}

/** Rows on the Pareto front: no other row is at least as good on both (quality, cost) and better on one. */
export function paretoFront(points: readonly { quality: number; cost: number }[], higherIsBetter: boolean): boolean[] {
  const q = (p: { quality: number }) => (higherIsBetter ? p.quality : -p.quality);
  return points.map((p) => !points.some((o) => o !== p && q(o) >= q(p) && o.cost <= p.cost && (q(o) > q(p) || o.cost < p.cost)));
}

/** Quality (a metric) against scoring µs per 1,000 candidates, Pareto front marked; null without costs. */
export function tradeoffSpec(cmp: Comparison, metricSpec?: string): VlSpec | null {
  const col = tradeoffColumn(cmp, metricSpec);
  if (!col) return null;
  const points: { row: string; quality: number; cost: number; lo: number; hi: number }[] = [];
  for (const r of rowsIn(cmp)) {
    const cell = r.cells.get(col.key);
    const costs = r.runs.map((run) => runValue(run, COST_KEY)).filter((v): v is number => v !== undefined);
    if (!cell || !Number.isFinite(cell.mean) || costs.length === 0) continue;
    points.push({ row: r.label, quality: cell.mean, cost: mean(costs), ...ciOf(cell) });
  }
  if (points.length === 0) return null;
  const front = paretoFront(points, col.higherIsBetter);
  const data = points.map((p, i) => ({ ...p, front: front[i] ? 'Pareto front' : 'dominated' }));
  const frontLine = data.filter((d) => d.front === 'Pareto front').sort((a, b) => a.cost - b.cost);
  const label = `${col.task} ${col.label}`;
  return {
    title: { text: `quality vs latency: ${label}`, subtitle: `x: scoring µs per 1,000 candidates (run.json); ${col.higherIsBetter ? 'up' : 'down'} and left is better; line: the Pareto front` },
    width: 460,
    height: 280,
    layer: [
      { data: { values: frontLine }, mark: { type: 'line', interpolate: 'step-after', color: '#2e7d32', strokeDash: [5, 3] }, encoding: { x: { field: 'cost', type: 'quantitative' }, y: { field: 'quality', type: 'quantitative' } } },
      {
        data: { values: data },
        mark: { type: 'rule', color: '#999' },
        encoding: { x: { field: 'cost', type: 'quantitative' }, y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } },
      },
      {
        data: { values: data },
        mark: { type: 'point', filled: true, size: 90 },
        encoding: {
          x: { field: 'cost', type: 'quantitative', title: 'scoring µs / 1,000 candidates', scale: { zero: false } },
          y: { field: 'quality', type: 'quantitative', title: label, scale: { zero: false } },
          shape: { field: 'front', type: 'nominal', title: null, legend: LEGEND, scale: { domain: ['Pareto front', 'dominated'], range: ['diamond', 'circle'] } },
          color: { field: 'front', type: 'nominal', title: null, legend: LEGEND, scale: { domain: ['Pareto front', 'dominated'], range: ['#2e7d32', '#9e9e9e'] } },
        },
      },
      { data: { values: data }, mark: { type: 'text', align: 'left', dx: 8, dy: -6, fontSize: 10, limit: 200 }, encoding: { x: { field: 'cost', type: 'quantitative' }, y: { field: 'quality', type: 'quantitative' }, text: { field: 'row' } } },
    ],
  };
}
