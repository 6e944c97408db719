/** The outputs of `resflow compare`: text, Markdown, CSV and JSON. */
import { toCsv } from '../runs/csv.js';
import { baselineJson, type BaselineResult } from './baseline.js';
import type { Comparison } from './compare.js';
import { mainTable, pValueTable, renderMarkdownTable, renderTextTable, rowConfigValue } from './compare-tables.js';
import { SEED_KEY, distinctValues } from './config-diff.js';
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
