/**
 * metrics.json (the flat metric records of every evaluated split), with metrics.csv and metrics.md
 * beside it; and fusion-grid.csv. metrics.json is the one that programs read.
 */
import { existsSync } from 'node:fs';
import { DataError } from '../base/errors.js';
import type { MetricRecord } from '../metrics/registry.js';
import { writeAtomic } from './atomic.js';
import { toCsv } from './csv.js';
import { expectField, isNumber, isRecord, isString, optional, readJsonFile, writeJsonFile } from './json-file.js';
import { runPath } from './layout.js';

/**
 * A record as stored: JSON has no NaN, so a metric that had no value (e.g. AUC of a split with one
 * class) is written, and read back, as null.
 */
export type StoredMetricRecord = Omit<MetricRecord, 'value' | 'ci_low' | 'ci_high'> & { value: number | null; ci_low?: number | null; ci_high?: number | null };

const EXPECTED = 'a list of metric records, each { name, task, split, value, k?, variant?, fusion?, settings?, ci_low?, ci_high? }';

/** Reads metrics.json; [] when the run has none. Anything but a list of records is a DataError. */
export function readMetrics(runDir: string): StoredMetricRecord[] {
  const file = runPath(runDir, 'metricsJson');
  if (!existsSync(file)) return [];
  const doc = readJsonFile(file);
  if (!Array.isArray(doc)) throw new DataError(`${file}: expected ${EXPECTED}`);
  doc.forEach((r: unknown, i) => {
    const where = `record ${i + 1}: `;
    if (!isRecord(r)) throw new DataError(`${file}: ${where}expected an object { name, task, split, value } (the file should be ${EXPECTED})`);
    for (const key of ['name', 'task', 'split']) expectField(file, where, r, key, isString, 'a string');
    expectField(file, where, r, 'value', (v) => v === null || isNumber(v), 'a number (or null)');
    expectField(file, where, r, 'k', optional(isNumber), 'a number');
    expectField(file, where, r, 'n_requests', optional(isNumber), 'a number');
    expectField(file, where, r, 'n_positives', optional(isNumber), 'a number');
    expectField(file, where, r, 'variant', optional((v) => v === 'macro' || v === 'micro'), 'macro or micro');
    expectField(file, where, r, 'fusion', optional(isString), 'a fusion spec (a string)');
    expectField(file, where, r, 'settings', optional(isRecord), 'a mapping of eval settings');
    for (const key of ['ci_low', 'ci_high']) expectField(file, where, r, key, optional((v) => v === null || isNumber(v)), 'a number (or null)');
    for (const key of ['ci_resamples', 'ci_seed']) expectField(file, where, r, key, optional(isNumber), 'a number');
  });
  return doc as StoredMetricRecord[];
}

/** The records that hold a number (null, i.e. NaN when computed, left out). */
export function finiteRecords(records: readonly StoredMetricRecord[]): MetricRecord[] {
  return records.filter((r): r is MetricRecord => typeof r.value === 'number' && Number.isFinite(r.value));
}

/** Writes metrics.json, metrics.csv and metrics.md (the Markdown rendered by the caller). */
export function writeMetricFiles(runDir: string, records: readonly StoredMetricRecord[], markdown: string): void {
  writeJsonFile(runPath(runDir, 'metricsJson'), records);
  // fusion and settings columns appear only when an eval variant wrote records; ci_low, ci_high only after eval --bootstrap
  const withCi = records.some((r) => r.ci_resamples !== undefined);
  const row = (r: StoredMetricRecord) => ({
    split: r.split,
    name: r.name,
    task: r.task,
    k: r.k,
    variant: r.variant,
    value: r.value,
    ...(r.fusion !== undefined ? { fusion: r.fusion } : {}),
    ...(r.settings !== undefined ? { settings: JSON.stringify(r.settings) } : {}),
    ...(withCi ? { ci_low: r.ci_low ?? undefined, ci_high: r.ci_high ?? undefined } : {}),
  });
  writeAtomic(runPath(runDir, 'metricsCsv'), toCsv(records.map(row)));
  writeAtomic(runPath(runDir, 'metricsMd'), markdown);
}

/** fusion-grid.csv: numbers written at full precision (the shortest text that reads back as the same double). */
export function writeFusionGrid(runDir: string, rows: Record<string, string | number>[]): void {
  const exact = rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? String(v) : v])));
  writeAtomic(runPath(runDir, 'fusionGrid'), toCsv(exact));
}
