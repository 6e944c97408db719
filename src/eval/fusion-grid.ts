/**
 * The fusion grid: re-fuses already scored rows under many fusion weights (first task fixed at 1,
 * both modes) and reports WR@K, ASH@K and the simulated online outcome per setting, without
 * retraining or rescoring.
 */
import type { ExperimentConfig } from '../config/experiment.js';
import { evaluateRows, type Fusion } from './evaluate.js';
import type { ScoredSplit } from './score.js';

export type FusionGridRow = Record<string, string | number>;

/** Every setting of the grid: both modes x each combination of `values` for the tasks after the first. */
export function fusionSettings(tasks: readonly string[], values: readonly number[]): Fusion[] {
  const settings: Fusion[] = [];
  const rest = tasks.slice(1);
  const combos = rest.reduce<number[][]>((acc) => acc.flatMap((c) => values.map((v) => [...c, v])), [[]]);
  for (const mode of ['additive', 'multiplicative'] as const) {
    for (const combo of combos) settings.push({ mode, weights: Object.fromEntries([[tasks[0]!, 1], ...rest.map((t, i) => [t, combo[i]!])]) });
  }
  return settings;
}

/** One row per setting: mode, weights, then `<metric>@<K>[_<variant>]` rounded to 6 decimals. */
export function fusionGrid(config: ExperimentConfig, scored: ScoredSplit, split: string, values: readonly number[]): FusionGridRow[] {
  return fusionSettings(
    config.tasks.map((t) => t.name),
    values,
  ).map((f) => {
    const recs = evaluateRows(config, scored.probs, scored.rows, split, { fusion: f, metrics: ['wrecall', 'ash', 'online'] });
    const row: FusionGridRow = { mode: f.mode, weights: Object.entries(f.weights).map(([t, w]) => `${t}=${w}`).join(',') };
    for (const r of recs) row[`${r.name}@${r.k}${r.variant ? `_${r.variant}` : ''}`] = Number(r.value.toFixed(6));
    return row;
  });
}

/** The grid as a fixed-width table of the macro and online columns (the CSV holds all of them). */
export function fusionGridTable(rows: readonly FusionGridRow[]): string[] {
  const keys = Object.keys(rows[0] ?? {}).filter((k) => k.endsWith('macro') || k.startsWith('online'));
  return [
    ['mode'.padEnd(15), 'weights'.padEnd(24), ...keys.map((k) => k.padStart(18))].join(' '),
    ...rows.map((r) => [String(r.mode).padEnd(15), String(r.weights).padEnd(24), ...keys.map((k) => String(r[k]).padStart(18))].join(' ')),
  ];
}
