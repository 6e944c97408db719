/** The outputs of `resflow compare`: text, Markdown, CSV and JSON. */
import { toCsv } from '../runs/csv.js';
import { baselineJson, type BaselineResult } from './baseline.js';
import type { Comparison } from './compare.js';
import { mainTable, pValueTable, renderMarkdownTable, renderTextTable, rowConfigValue } from './compare-tables.js';
import { SEED_KEY, distinctValues } from './config-diff.js';
import { markLegend } from './compare-marks.js';
import { SIGNIFICANCE } from './statistics.js';

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

/** The correction, stated: what it adjusts and across how many tests. */
export function correctionNote(cmp: Comparison): string {
  const m = cmp.leaders.size;
  return cmp.correction === 'holm'
    ? `correction: Holm–Bonferroni across the ${m} leader test${m === 1 ? '' : 's'} of this table (--correction none to turn it off)`
    : `correction: none (p-values unadjusted; --correction holm adjusts them)`;
}

/** The legend of the main table: every mark, the direction, what a group's cell shows, the correction. */
export function bestNote(cmp: Comparison): string[] {
  const lower = [...new Set(cmp.columns.filter((c) => !c.higherIsBetter).map((c) => c.name))];
  return [
    ...markLegend(cmp.correction),
    `higher is better${lower.length ? `; lower for ${lower.join(', ')}` : ''}`,
    ...(cmp.hasGroups ? ['groups: mean ± sample std over seeds (95% t intervals in --format json/csv and the report)'] : []),
    ...(hasBootstrap(cmp) ? ['single runs: value [95% bootstrap interval over requests, recorded by resflow eval --bootstrap]'] : []),
    correctionNote(cmp),
  ];
}

/** Whether a single run's cell shows a bootstrap interval over requests (eval --bootstrap). */
function hasBootstrap(cmp: Comparison): boolean {
  return cmp.rows.some((r) => [...r.cells.values()].some((c) => c.ci.method === 'bootstrap' && Number.isFinite(c.ci.low)));
}

function pNote(cmp: Comparison): string {
  const adj = cmp.correction === 'holm' ? 'Holm-adjusted across this table' : 'unadjusted';
  return `paired t-test against \`${cmp.reference!.label}\` per metric\n(runs paired by ${SEED_KEY}; two-sided p, ${adj};\n* adjusted p < ${SIGNIFICANCE}; n/a: fewer than 2 pairs)`;
}

export function renderText(cmp: Comparison, width = Infinity): string {
  const out = [runsSummary(cmp), ...diffLines(cmp), '', renderTextTable(mainTable(cmp), width), ...bestNote(cmp)];
  const p = pValueTable(cmp);
  if (p) out.push('', pNote(cmp).replace(/`/g, ''), renderTextTable(p, width));
  return out.join('\n');
}

export function renderMarkdown(cmp: Comparison): string {
  const out = [`## Comparison`, '', runsSummary(cmp), ''];
  if (cmp.diffKeys.length === 0) out.push('Config: identical across runs (name and description ignored).', '');
  else out.push('Config differences (name and description ignored):', '', ...cmp.diffKeys.map((k) => `- \`${k}\`: ${distinctValues(cmp.runs, k).map((v) => `\`${v}\``).join(', ')}`), '');
  out.push(renderMarkdownTable(mainTable(cmp)), '', ...bestNote(cmp).map((l) => `- ${l.replace(/^\*/, '\\*').replace(/^=/, '\\=')}`));
  const p = pValueTable(cmp);
  if (p) out.push('', '### Significance', '', pNote(cmp).replace(/\n/g, ' ').replace('* adjusted', '\\* adjusted'), '', renderMarkdownTable(p));
  return out.join('\n') + '\n';
}

export function renderCsv(cmp: Comparison): string {
  const intervals = cmp.hasGroups || hasBootstrap(cmp);
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
      if (intervals) o[`${c.title} ci low`] = cell && Number.isFinite(cell.ci.low) ? cell.ci.low : undefined;
      if (intervals) o[`${c.title} ci high`] = cell && Number.isFinite(cell.ci.high) ? cell.ci.high : undefined;
      if (cmp.hasGroups && cmp.reference && c.kind === 'metric') {
        o[`${c.title} p`] = cell?.test && !Number.isNaN(cell.test.p) ? cell.test.p : undefined;
        o[`${c.title} p adj`] = cell?.test && !Number.isNaN(cell.test.pAdjusted) ? cell.test.pAdjusted : undefined;
      }
      o[`${c.title} mark`] = cell?.mark ?? '';
    }
    return o;
  });
  return toCsv(rows);
}

const num = (v: number): number | null => (Number.isFinite(v) ? v : null);

function leaderJson(cmp: Comparison, key: string): unknown {
  const l = cmp.leaders.get(key)!;
  const t = l.test;
  return { leader: l.leader.label, runner_up: l.runnerUp.label, pairs: t.n, p_value: num(t.p), p_adjusted: num(t.pAdjusted), wilcoxon_p: num(t.wilcoxonP), effect_size_dz: num(t.dz) };
}

export function comparisonJson(cmp: Comparison): unknown {
  return {
    splits: cmp.splits,
    grouped: cmp.grouped,
    reference: cmp.reference?.label ?? null,
    correction: cmp.correction,
    significance: SIGNIFICANCE,
    main_k: cmp.mainK,
    config_differences: Object.fromEntries(cmp.diffKeys.map((k) => [k, distinctValues(cmp.runs, k)])),
    columns: cmp.columns.map((c) => ({
      key: c.title,
      split: c.split,
      name: c.name,
      task: c.task,
      ...(c.k !== undefined ? { k: c.k } : {}),
      ...(c.variant ? { variant: c.variant } : {}),
      higher_is_better: c.higherIsBetter,
      ...(cmp.leaders.has(c.key) ? { leader_test: leaderJson(cmp, c.key) } : {}),
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
                mark: cell.mark ?? null,
                ci_low: num(cell.ci.low),
                ci_high: num(cell.ci.high),
                ...(Number.isFinite(cell.ci.low) ? { ci_method: cell.ci.method } : {}),
                ...(cell.support?.requests !== undefined ? { n_requests: cell.support.requests } : {}),
                ...(cell.support?.positives !== undefined ? { n_positives: cell.support.positives } : {}),
                ...(cell.test
                  ? {
                      p_value: num(cell.test.p),
                      p_adjusted: num(cell.test.pAdjusted),
                      wilcoxon_p: num(cell.test.wilcoxonP),
                      effect_size_dz: num(cell.test.dz),
                      pairs: cell.test.n,
                      significant: cell.test.pAdjusted < SIGNIFICANCE,
                    }
                  : {}),
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
