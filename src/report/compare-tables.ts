/**
 * The tables of a comparison (the main table and the p-values) as table models, and their rendering
 * as aligned text and as Markdown.
 */
import type { Cell, Comparison, Row } from './compare.js';
import { MARK_SYMBOL } from './compare-marks.js';
import { SEED_KEY, distinctValues } from './config-diff.js';
import { SIGNIFICANCE } from './statistics.js';
import { fmt } from './tables.js';

/** One cell of a rendered table: its text, and its mark (compare-marks.ts: `*`, `=`, `?`). */
export interface TableCell {
  text: string;
  mark?: string;
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

function cellText(c: Cell, cost: boolean): string {
  if (cost) return c.n > 1 && c.std > 0 ? `${c.mean.toFixed(0)} ± ${c.std.toFixed(0)}` : c.mean.toFixed(0);
  if (c.n > 1) return `${fmt(c.mean)} ± ${fmt(c.std)}`;
  return c.ci.method === 'bootstrap' && Number.isFinite(c.ci.low) ? `${fmt(c.mean)} [${fmt(c.ci.low)}, ${fmt(c.ci.high)}]` : fmt(c.mean);
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
      cells.push(
        row.excluded
          ? { text: '-', numeric: true }
          : cell
            ? { text: cellText(cell, c.kind === 'cost'), ...(cell.mark ? { mark: MARK_SYMBOL[cell.mark] } : {}), numeric: true }
            : { text: '', numeric: true },
      );
    }
    return cells;
  });
  return { head, rows };
}

/** p-value table against the reference (rows other than the reference and excluded ones): adjusted p, `*` when < SIGNIFICANCE. */
export function pValueTable(cmp: Comparison): TableModel | null {
  if (!cmp.reference || !cmp.hasGroups) return null;
  const others = cmp.rows.filter((r) => !r.excluded && r !== cmp.reference);
  if (others.length === 0) return null;
  const head: TableModel['head'] = [
    { top: '', bottom: cmp.hasGroups ? 'group' : 'run', numeric: false },
    { top: '', bottom: 'pairs', numeric: true },
  ];
  const tested = cmp.columns.filter((c) => c.kind === 'metric');
  for (const c of tested) head.push({ top: `${cmp.splits.length > 1 ? `${c.split}: ` : ''}${c.task}`, bottom: c.label, numeric: true });
  const rows = others.map((row) => {
    const pairs = Math.max(0, ...[...row.cells.values()].map((c) => c.test?.n ?? 0));
    const cells: TableCell[] = [{ text: row.label }, { text: String(pairs), numeric: true }];
    for (const c of tested) {
      const t = row.cells.get(c.key)?.test;
      cells.push(t ? { text: fmtP(t.pAdjusted), ...(t.pAdjusted < SIGNIFICANCE ? { mark: '*' } : {}), numeric: true } : { text: '', numeric: true });
    }
    return cells;
  });
  return { head, rows };
}

/** Aligned plain text; columns that do not fit in `width` continue in further blocks. */
export function renderTextTable(model: TableModel, width = Infinity): string {
  // a marked column pads unmarked numbers by one space so that the digits stay aligned
  const marked = model.head.map((_, i) => model.rows.some((r) => r[i]!.mark));
  const text = (c: TableCell, i: number) => `${c.text}${c.mark ?? (c.numeric && marked[i] ? ' ' : '')}`;
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
    ...model.rows.map((r) => `| ${r.map((c) => mdEscape(`${c.text}${c.mark ?? ''}`)).join(' | ')} |`),
  ];
  return lines.join('\n');
}
