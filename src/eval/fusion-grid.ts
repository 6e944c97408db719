/**
 * The fusion grid: re-fuses already scored rows under many fusion weights (every task's weight swept,
 * both modes) and reports WR@K, ASH@K and the simulated online outcome per setting, without
 * retraining or rescoring.
 *
 * Normalisation (src/eval/README.md): scaling every weight by the same positive number changes
 * neither fusion's ranking (additive: sum w_t p_t; multiplicative: prod p_t^w_t = exp(sum w_t log p_t)),
 * so a setting and its multiples are one setting. Each combination of the given values is divided by
 * its largest weight (the largest becomes 1, every weight lies in [0, 1]) and kept once; all zeros is
 * left out. No task is privileged: "the second task alone" is the setting 0,1.
 */
import type { ExperimentConfig } from '../config/experiment.js';
import type { EncodedBatch } from '../data/encode.js';
import type { MetricRecord } from '../metrics/registry.js';
import { evaluateRows, type Fusion } from './evaluate.js';
import type { ScoredSplit } from './score.js';
import { RowsEvaluator } from './stream-eval.js';

export type FusionGridRow = Record<string, string | number>;

/** The distinct weight vectors: each combination of `values` per task, scaled so its largest weight is 1. */
export function gridWeights(taskCount: number, values: readonly number[]): number[][] {
  const combos = Array.from({ length: taskCount }).reduce<number[][]>((acc) => acc.flatMap((c) => values.map((v) => [...c, v])), [[]]);
  const seen = new Set<string>();
  const out: number[][] = [];
  for (const c of combos) {
    const max = Math.max(...c);
    if (!(max > 0)) continue;
    // w / max is the correctly rounded exact ratio, so proportional combinations give equal vectors
    const w = c.map((v) => (v === max ? 1 : v / max));
    const key = w.join(',');
    if (!seen.has(key)) (seen.add(key), out.push(w));
  }
  return out;
}

/** Every setting of the grid: both modes x each distinct weight vector (see gridWeights). */
export function fusionSettings(tasks: readonly string[], values: readonly number[]): Fusion[] {
  const settings: Fusion[] = [];
  const weights = gridWeights(tasks.length, values);
  for (const mode of ['additive', 'multiplicative'] as const) {
    for (const w of weights) settings.push({ mode, weights: Object.fromEntries(tasks.map((t, i) => [t, w[i]!])) });
  }
  return settings;
}

/** The metrics each setting reports (per request: nothing is kept per row when streamed). */
const GRID_METRICS = ['wrecall', 'ash', 'online'];

/** A setting's row: mode, weights, then `<metric>@<K>[_<variant>]` at full double precision. */
function gridRow(f: Fusion, recs: readonly MetricRecord[]): FusionGridRow {
  const row: FusionGridRow = { mode: f.mode, weights: Object.entries(f.weights).map(([t, w]) => `${t}=${w}`).join(',') };
  for (const r of recs) row[`${r.name}@${r.k}${r.variant ? `_${r.variant}` : ''}`] = r.value;
  return row;
}

/** The grid's settings over the config's tasks. */
const configSettings = (config: ExperimentConfig, values: readonly number[]): Fusion[] =>
  fusionSettings(
    config.tasks.map((t) => t.name),
    values,
  );

/** One row per setting, from all scored rows at once. */
export function fusionGrid(config: ExperimentConfig, scored: ScoredSplit, split: string, values: readonly number[]): FusionGridRow[] {
  return configSettings(config, values).map((f) => gridRow(f, evaluateRows(config, scored.probs, scored.rows, split, { fusion: f, metrics: GRID_METRICS })));
}

/**
 * fusionGrid's rows, bit for bit, from scored batches as they stream by (README.md, "Scale"): one
 * streaming evaluator per setting, each holding only the request in progress, so the memory does not
 * grow with the rows. Requests must be contiguous (else `NotContiguous`, as stream-eval.ts).
 */
export class FusionGridEvaluator {
  private readonly settings: { fusion: Fusion; ev: RowsEvaluator }[];

  constructor(config: ExperimentConfig, split: string, values: readonly number[]) {
    this.settings = configSettings(config, values).map((fusion) => ({ fusion, ev: new RowsEvaluator(config, split, { fusion, metrics: GRID_METRICS }) }));
  }

  add(probs: Record<string, Float32Array>, rows: EncodedBatch): void {
    for (const s of this.settings) s.ev.add(probs, rows);
  }

  finish(): FusionGridRow[] {
    return this.settings.map((s) => gridRow(s.fusion, s.ev.finish()));
  }
}

/** The grid as a fixed-width table of the macro and online columns (the CSV holds all of them). */
export function fusionGridTable(rows: readonly FusionGridRow[]): string[] {
  const keys = Object.keys(rows[0] ?? {}).filter((k) => k.endsWith('macro') || k.startsWith('online'));
  return [
    ['mode'.padEnd(15), 'weights'.padEnd(24), ...keys.map((k) => k.padStart(18))].join(' '),
    ...rows.map((r) => [String(r.mode).padEnd(15), String(r.weights).padEnd(24), ...keys.map((k) => (typeof r[k] === 'number' ? (r[k] as number).toFixed(6) : String(r[k])).padStart(18))].join(' ')),
  ];
}
