/**
 * Baseline checks of `resflow compare --baseline FILE`: expected metric values with tolerances,
 * checked against every completed row, for CI (a violation exits 1).
 */
import { existsSync, readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { DataError, ResflowError, UsageError } from '../base/errors.js';
import { metricDefinition } from '../metrics/registry.js';
import type { Comparison } from './compare.js';
import { fmt, metricLabel } from './tables.js';

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

export function baselineJson(b: BaselineResult): unknown {
  return {
    file: b.file,
    passed: b.failures.length === 0,
    checks: b.checks.map((c) => ({ row: c.row, metric: c.metric, expected: c.expected, found: c.found, ok: c.ok })),
  };
}
