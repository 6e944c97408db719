/**
 * Plots and the HTML report of `resflow compare`.
 *
 * Charts are vega-lite specs compiled to vega and rendered to SVG headlessly (`renderer: 'none'`),
 * so they need no browser or canvas:
 * - per run, training curves from history.csv: train loss per task (and the total) and validation
 *   AUC per task over epochs;
 * - per metric family (auc, gauc, logloss, recall, wrecall, ash), a grouped bar chart across rows,
 *   with mean ± std error bars for seed groups.
 * `report.html` inlines every SVG and the tables; it loads nothing from elsewhere.
 * Every file is written whole (writeAtomic).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeAtomic } from '../runs/atomic.js';
import { version as resflowVersion } from '../base/version.js';
import { baselineLine, type BaselineResult } from './baseline.js';
import type { Comparison } from './compare.js';
import type { ComparedRun } from './compare-runs.js';
import { mainTable, pValueTable, rowConfigValue, type TableModel } from './compare-tables.js';
import { SEED_KEY } from './config-diff.js';
import { SIGNIFICANCE } from './statistics.js';

/** A vega-lite spec (kept loose: vega-lite's own types are large and strict). */
export type VlSpec = Record<string, unknown>;

const FONT = 'Helvetica, Arial, sans-serif';
const CONFIG = {
  font: FONT,
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 },
  title: { fontSize: 14, anchor: 'start' },
};

/** Renders a vega-lite spec to an SVG string (headless). */
export async function renderSvg(spec: VlSpec): Promise<string> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const compiled = vl.compile({ $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG, ...spec } as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Training curves of one run from history.csv; null when it has no epochs. */
export function curvesSpec(run: ComparedRun, title: string): VlSpec | null {
  const h = run.history;
  if (!h || h.rows.length === 0 || !h.columns.includes('epoch')) return null;
  const tasks = run.tasks.length > 0 ? run.tasks : h.columns.map((c) => /^train_(.+)_loss$/.exec(c)?.[1]).filter((t): t is string => t !== undefined);
  const loss: { epoch: number; series: string; value: number }[] = [];
  const aucs: { epoch: number; series: string; value: number }[] = [];
  for (const row of h.rows) {
    const epoch = row['epoch']!;
    for (const t of tasks) {
      const l = row[`train_${t}_loss`];
      if (l !== undefined && Number.isFinite(l)) loss.push({ epoch, series: t, value: l });
      const a = row[`val_${t}_auc`];
      if (a !== undefined && Number.isFinite(a)) aucs.push({ epoch, series: t, value: a });
    }
    const total = row['train_loss'];
    if (total !== undefined && Number.isFinite(total) && tasks.length > 1) loss.push({ epoch, series: 'total', value: total });
  }
  const panel = (data: typeof loss, panelTitle: string, yTitle: string): VlSpec => ({
    title: panelTitle,
    width: 300,
    height: 200,
    data: { values: data },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' }, scale: { nice: false } },
      y: { field: 'value', type: 'quantitative', title: yTitle, scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: 'task', sort: [...tasks, 'total'] },
      strokeDash: { condition: { test: "datum.series === 'total'", value: [4, 3] }, value: [1, 0] },
    },
  });
  const panels: VlSpec[] = [];
  if (loss.length > 0) panels.push(panel(loss, 'training loss', 'loss'));
  if (aucs.length > 0) panels.push(panel(aucs, 'validation AUC', 'AUC'));
  if (panels.length === 0) return null;
  return { title: title === run.name ? { text: title } : { text: title, subtitle: run.name }, hconcat: panels, resolve: { scale: { color: 'independent' } } };
}

/** Grouped bar chart of one metric family across rows, with error bars (mean ± std) for groups. */
export function familySpec(cmp: Comparison, family: string): VlSpec | null {
  const cols = cmp.columns.filter((c) => c.name === family);
  const rows = cmp.rows.filter((r) => !r.excluded);
  const data: Record<string, unknown>[] = [];
  for (const c of cols) {
    const metric = [cmp.splits.length > 1 ? `${c.split}:` : '', c.task, c.k !== undefined ? `@${c.k}` : '', c.variant ?? ''].filter(Boolean).join(' ');
    for (const r of rows) {
      const cell = r.cells.get(c.key);
      if (!cell || !Number.isFinite(cell.mean)) continue;
      const sd = cell.n > 1 && Number.isFinite(cell.std) ? cell.std : 0;
      data.push({ metric, run: r.label, mean: cell.mean, lo: cell.mean - sd, hi: cell.mean + sd, n: cell.n });
    }
  }
  if (data.length === 0) return null;
  const labels = rows.map((r) => r.label);
  const metrics = [...new Set(data.map((d) => d['metric'] as string))];
  const higher = cols[0]!.higherIsBetter;
  // AUC-like values sit far from zero; bars from 0 would hide the differences
  const zero = !(family === 'auc' || family === 'gauc');
  const lows = data.map((d) => d['lo'] as number);
  const highs = data.map((d) => d['hi'] as number);
  const pad = Math.max(0.02, (Math.max(...highs) - Math.min(...lows)) * 0.5);
  const yScale = zero ? { zero: true } : { zero: false, domain: [Math.max(0, Math.floor((Math.min(...lows) - pad) * 20) / 20), Math.min(1, Math.ceil((Math.max(...highs) + pad) * 20) / 20)] };
  const groups = cmp.hasGroups;
  return {
    title: {
      text: `${family} (${cmp.splits.join(', ')})`,
      subtitle: `${higher ? 'higher' : 'lower'} is better${groups ? '; error bars: ± sample std over seeds' : ''}`,
    },
    width: { step: Math.max(14, Math.min(40, Math.floor(240 / Math.max(1, labels.length)))) },
    height: 220,
    data: { values: data },
    encoding: {
      x: { field: 'metric', type: 'nominal', title: null, sort: metrics, axis: { labelAngle: 0 } },
      xOffset: { field: 'run', type: 'nominal', sort: labels },
    },
    layer: [
      {
        mark: { type: 'bar', clip: true },
        encoding: {
          y: { field: 'mean', type: 'quantitative', title: family, scale: yScale, stack: null },
          color: { field: 'run', type: 'nominal', sort: labels, title: cmp.hasGroups ? 'group' : 'run' },
        },
      },
      {
        transform: [{ filter: 'datum.n > 1' }],
        mark: { type: 'rule', color: '#222', strokeWidth: 1.5 },
        encoding: { y: { field: 'lo', type: 'quantitative', scale: yScale }, y2: { field: 'hi' } },
      },
    ],
  };
}

export interface ReportFiles {
  dir: string;
  report: string;
  svgs: string[];
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '') || 'run';
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Prefixes the ids an SVG defines (clip paths, gradients) so that inlined SVGs cannot clash. */
function uniquifyIds(svg: string, prefix: string): string {
  return svg.replace(/\bid="([^"]+)"/g, `id="${prefix}-$1"`).replace(/url\(#([^)]+)\)/g, `url(#${prefix}-$1)`).replace(/href="#([^"]+)"/g, `href="#${prefix}-$1"`);
}

function htmlTable(model: TableModel, markClass: string): string {
  const head = model.head.map((h) => `<th class="${h.numeric ? 'num' : ''}">${h.top && h.top !== 'config' ? `<span class="top">${esc(h.top)}</span><br>` : ''}${esc(h.bottom)}</th>`).join('');
  const body = model.rows
    .map((r) => `<tr>${r.map((c, i) => `<td class="${[model.head[i]!.numeric ? 'num' : '', c.mark ? markClass : ''].filter(Boolean).join(' ')}">${esc(c.text)}${c.mark ? '*' : ''}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

const STYLE = `
body { font-family: ${FONT}; margin: 2em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
th { text-align: left; vertical-align: bottom; background: #fafafa; }
th .top { color: #777; font-weight: normal; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; background: #e8f5e9; }
td.sig { font-weight: bold; background: #fff3e0; }
.note { color: #666; font-size: 12px; }
.fail { color: #b71c1c; } .ok { color: #1b5e20; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
code { background: #f4f4f4; padding: 0 3px; }
`;

/**
 * Writes the charts (SVG) and report.html into `outDir`. Returns the files written.
 */
export async function writeCompareReport(cmp: Comparison, outDir: string, baseline?: BaselineResult): Promise<ReportFiles> {
  mkdirSync(outDir, { recursive: true });
  const svgs: string[] = [];
  const metricCharts: { title: string; svg: string }[] = [];
  const families = [...new Set(cmp.columns.map((c) => c.name))];
  for (const family of families) {
    const spec = familySpec(cmp, family);
    if (!spec) continue;
    const svg = await renderSvg(spec);
    const file = path.join(outDir, `metric-${slug(family)}.svg`);
    writeAtomic(file, svg);
    svgs.push(file);
    metricCharts.push({ title: family, svg });
  }
  const curveCharts: { title: string; svg: string }[] = [];
  const labelOf = new Map<ComparedRun, string>();
  for (const row of cmp.rows) {
    for (const run of row.runs) {
      const extra = row.runs.length > 1 ? ` (seed ${run.seed ?? '?'})` : row.excluded ? ` (${run.status})` : '';
      labelOf.set(run, `${row.label}${extra}`);
    }
  }
  const usedNames = new Set<string>();
  for (const run of cmp.runs) {
    const spec = curvesSpec(run, labelOf.get(run) ?? run.name);
    if (!spec) continue;
    const svg = await renderSvg(spec);
    let name = `curves-${slug(run.name.replace('/', '-'))}.svg`;
    for (let i = 2; usedNames.has(name); i++) name = `curves-${slug(run.name.replace('/', '-'))}-${i}.svg`;
    usedNames.add(name);
    const file = path.join(outDir, name);
    writeAtomic(file, svg);
    svgs.push(file);
    curveCharts.push({ title: labelOf.get(run) ?? run.name, svg });
  }

  const parts: string[] = [];
  parts.push(`<h1>resflow compare</h1>`);
  const included = cmp.rows.filter((r) => !r.excluded);
  parts.push(
    `<p>${included.reduce((s, r) => s + r.runs.length, 0)} completed runs in ${included.length} row${included.length === 1 ? '' : 's'}; split ${esc(cmp.splits.join(', '))}; generated ${esc(new Date().toISOString())} by resflow ${esc(resflowVersion())}.</p>`,
  );
  parts.push('<h2>Runs</h2>');
  const runRows = cmp.rows.flatMap((row) =>
    row.runs.map((run) => `<tr><td>${esc(row.label)}</td><td>${esc(run.status)}</td><td class="num">${run.seed ?? ''}</td><td><code>${esc(run.dir)}</code></td></tr>`),
  );
  parts.push(`<table><thead><tr><th>row</th><th>status</th><th class="num">seed</th><th>folder</th></tr></thead><tbody>\n${runRows.join('\n')}\n</tbody></table>`);
  parts.push('<h2>Config differences</h2>');
  if (cmp.diffKeys.length === 0) parts.push('<p>The configs are identical (name and description ignored).</p>');
  else {
    const head = `<tr><th>row</th>${cmp.diffKeys.map((k) => `<th>${esc(k)}</th>`).join('')}</tr>`;
    const body = cmp.rows.map((row) => `<tr><td>${esc(row.label)}</td>${cmp.diffKeys.map((k) => `<td>${esc(rowConfigValue(row, k))}</td>`).join('')}</tr>`).join('\n');
    parts.push(`<p class="note">Keys of the resolved configs whose values differ (name and description ignored).</p><table><thead>${head}</thead><tbody>\n${body}\n</tbody></table>`);
  }
  parts.push('<h2>Metrics</h2>', htmlTable(mainTable(cmp), 'best'));
  const lower = [...new Set(cmp.columns.filter((c) => !c.higherIsBetter).map((c) => c.name))];
  parts.push(
    `<p class="note">* best in its column (higher is better${lower.length ? `; lower for ${esc(lower.join(', '))}` : ''})${cmp.hasGroups ? '; seed groups show mean ± sample std (n - 1)' : ''}.</p>`,
  );
  const p = pValueTable(cmp);
  if (p && cmp.reference) {
    parts.push(
      '<h2>Significance</h2>',
      `<p class="note">Paired t-test per metric against <b>${esc(cmp.reference.label)}</b>: runs paired by <code>${SEED_KEY}</code> (seeds in both), two-sided p-value; * p &lt; ${SIGNIFICANCE}; n/a with fewer than 2 pairs.</p>`,
      htmlTable(p, 'sig'),
    );
  }
  if (baseline) {
    const passed = baseline.checks.length - baseline.failures.length;
    parts.push(
      '<h2>Baseline</h2>',
      `<p>${esc(baseline.file)}: ${passed} of ${baseline.checks.length} checks passed.</p>`,
      `<ul>${baseline.checks.map((c) => `<li class="${c.ok ? 'ok' : 'fail'}">${esc(baselineLine(c))}</li>`).join('\n')}</ul>`,
    );
  }
  if (metricCharts.length > 0) {
    parts.push('<h2>Metric charts</h2>', `<div class="charts">${metricCharts.map((c, i) => `<figure>${uniquifyIds(c.svg, `m${i}`)}</figure>`).join('\n')}</div>`);
  }
  if (curveCharts.length > 0) {
    parts.push('<h2>Training curves</h2>', `<div class="charts">${curveCharts.map((c, i) => `<figure>${uniquifyIds(c.svg, `c${i}`)}</figure>`).join('\n')}</div>`);
  }
  const html = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>resflow compare</title>
<style>${STYLE}</style>
</head>
<body>
${parts.join('\n')}
</body>
</html>
`;
  const report = path.join(outDir, 'report.html');
  writeAtomic(report, html);
  return { dir: outDir, report, svgs };
}
