/**
 * Plots and the HTML report of `resflow compare`.
 *
 * Charts (report-charts.ts) are vega-lite specs compiled to vega and rendered to SVG headlessly
 * (`renderer: 'none'`), so they need no browser or canvas: dot-and-interval per metric family,
 * @K metrics as curves over K, training curves one line per row, quality versus latency with its
 * Pareto front. `report.html` inlines every SVG and the tables (each table scrolls in its own box,
 * charts shrink to the page); it loads nothing from elsewhere and runs no script.
 * Every file is written whole (writeAtomic).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeAtomic } from '../runs/atomic.js';
import { version as resflowVersion } from '../base/version.js';
import { baselineLine, type BaselineResult } from './baseline.js';
import type { Comparison } from './compare.js';
import { mainTable, pValueTable, rowConfigValue, type TableModel } from './compare-tables.js';
import { bestNote } from './compare-render.js';
import { IGNORED_KEYS, SEED_KEY, configDiff } from './config-diff.js';
import { groupCurvesSpec, intervalSpec, kCurveSpec, tradeoffSpec } from './report-charts.js';
import { SIGNIFICANCE } from './statistics.js';

/** A vega-lite spec (kept loose: vega-lite's own types are large and strict). */
export type VlSpec = Record<string, unknown>;

const FONT = 'Helvetica, Arial, sans-serif';
const CONFIG = {
  font: FONT,
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 360 },
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

const MARK_CLASS: Record<string, string> = { '*': 'best', '=': 'tied', '?': 'untested' };

/** A table in its own scrolling box, so that a wide table never widens the page. */
function htmlTable(model: TableModel, markClass?: string): string {
  const head = model.head.map((h) => `<th class="${h.numeric ? 'num' : ''}">${h.top && h.top !== 'config' ? `<span class="top">${esc(h.top)}</span><br>` : ''}${esc(h.bottom)}</th>`).join('');
  const body = model.rows
    .map((r) => `<tr>${r.map((c, i) => `<td class="${[model.head[i]!.numeric ? 'num' : '', c.mark ? (markClass ?? MARK_CLASS[c.mark] ?? '') : ''].filter(Boolean).join(' ')}">${esc(c.text)}${c.mark ?? ''}</td>`).join('')}</tr>`)
    .join('\n');
  return `<div class="scroll"><table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${body}\n</tbody>\n</table></div>`;
}

const STYLE = `
body { font-family: ${FONT}; margin: 2em; color: #222; max-width: 1400px; overflow-wrap: anywhere; }
.scroll { max-width: 100%; overflow-x: auto; }
figure { margin: 0; max-width: 100%; }
figure svg { max-width: 100%; height: auto; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
th { text-align: left; vertical-align: bottom; background: #fafafa; }
th .top { color: #777; font-weight: normal; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
td.best { font-weight: bold; background: #e8f5e9; }
td.tied { background: #f3f6fb; }
td.untested { color: #555; }
td.wrap { white-space: normal; min-width: 12em; }
td.sig { font-weight: bold; background: #fff3e0; }
.note { color: #666; font-size: 12px; }
.fail { color: #b71c1c; } .ok { color: #1b5e20; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
code { background: #f4f4f4; padding: 0 3px; }
`;

/**
 * Writes the charts (SVG) and report.html into `outDir`. Returns the files written.
 */
export async function writeCompareReport(cmp: Comparison, outDir: string, baseline?: BaselineResult, opts: { tradeoff?: string } = {}): Promise<ReportFiles> {
  mkdirSync(outDir, { recursive: true });
  const svgs: string[] = [];
  const chart = async (name: string, spec: VlSpec | null, into: { title: string; svg: string }[]): Promise<void> => {
    if (!spec) return;
    const svg = await renderSvg(spec);
    const file = path.join(outDir, `${slug(name)}.svg`);
    writeAtomic(file, svg);
    svgs.push(file);
    into.push({ title: name, svg });
  };
  const metricCharts: { title: string; svg: string }[] = [];
  const kCharts: { title: string; svg: string }[] = [];
  const families = [...new Set(cmp.columns.filter((c) => c.kind === 'metric').map((c) => c.name))];
  for (const family of families) {
    const curve = kCurveSpec(cmp, family);
    if (curve) await chart(`k-${family}`, curve, kCharts);
    else await chart(`metric-${family}`, intervalSpec(cmp, family), metricCharts);
  }
  const tradeCharts: { title: string; svg: string }[] = [];
  await chart('tradeoff', tradeoffSpec(cmp, opts.tradeoff), tradeCharts);
  const curveCharts: { title: string; svg: string }[] = [];
  await chart('curves', groupCurvesSpec(cmp), curveCharts);

  const parts: string[] = [];
  parts.push(`<h1>resflow compare</h1>`);
  const included = cmp.rows.filter((r) => !r.excluded);
  parts.push(
    `<p>${included.reduce((s, r) => s + r.runs.length, 0)} completed runs in ${included.length} row${included.length === 1 ? '' : 's'}; split ${esc(cmp.splits.join(', '))}; generated ${esc(new Date().toISOString())} by resflow ${esc(resflowVersion())}.</p>`,
  );
  parts.push('<h2>Runs</h2>', '<div class="scroll">');
  const runRows = cmp.rows.flatMap((row) =>
    row.runs.map((run) => `<tr><td>${esc(row.label)}</td><td>${esc(run.status)}</td><td class="num">${run.seed ?? ''}</td><td><code>${esc(run.dir)}</code></td></tr>`),
  );
  parts.push(`<table><thead><tr><th>row</th><th>status</th><th class="num">seed</th><th>folder</th></tr></thead><tbody>\n${runRows.join('\n')}\n</tbody></table></div>`);
  parts.push('<h2>Config differences</h2>');
  if (cmp.diffKeys.length === 0) parts.push('<p>The configs are identical (name and description ignored).</p>');
  else {
    // keys that tell rows apart; keys that vary only within a row (the seed) are listed once, below
    const between = configDiff(cmp.rows.map((r) => r.runs[0]!.flat), cmp.hasGroups ? [...IGNORED_KEYS, SEED_KEY] : IGNORED_KEYS);
    const within = cmp.diffKeys.filter((k) => !between.includes(k));
    const head = `<tr><th>row</th>${between.map((k) => `<th>${esc(k)}</th>`).join('')}</tr>`;
    const body = cmp.rows.map((row) => `<tr><td>${esc(row.label)}</td>${between.map((k) => `<td class="wrap">${esc(rowConfigValue(row, k))}</td>`).join('')}</tr>`).join('\n');
    parts.push(`<p class="note">Keys of the resolved configs whose values differ between rows (name and description ignored); a key equal within every row is shown once per row.</p>`);
    if (between.length > 0) parts.push(`<div class="scroll"><table><thead>${head}</thead><tbody>\n${body}\n</tbody></table></div>`);
    if (within.length > 0) parts.push(`<p class="note">Varying within rows only: ${within.map((k) => `<code>${esc(k)}</code>`).join(', ')} (see Runs).</p>`);
  }
  parts.push('<h2>Metrics</h2>', htmlTable(mainTable(cmp)));
  parts.push(`<ul class="note">${bestNote(cmp).map((l) => `<li>${esc(l)}</li>`).join('')}</ul>`);
  const p = pValueTable(cmp);
  if (p && cmp.reference) {
    parts.push(
      '<h2>Significance</h2>',
      `<p class="note">Paired t-test per metric against <b>${esc(cmp.reference.label)}</b>: runs paired by <code>${SEED_KEY}</code> (seeds in both), two-sided p-value, ${cmp.correction === 'holm' ? 'Holm-adjusted across this table' : 'unadjusted'}; * adjusted p &lt; ${SIGNIFICANCE}; n/a with fewer than 2 pairs.</p>`,
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
  const section = (title: string, charts: { svg: string }[], prefix: string) => {
    if (charts.length > 0) parts.push(`<h2>${title}</h2>`, `<div class="charts">${charts.map((c, i) => `<figure>${uniquifyIds(c.svg, `${prefix}${i}`)}</figure>`).join('\n')}</div>`);
  };
  section('Quality versus latency', tradeCharts, 't');
  section('Metrics over K', kCharts, 'k');
  section('Metric charts', metricCharts, 'm');
  section('Training curves', curveCharts, 'c');
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
