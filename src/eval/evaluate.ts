/**
 * From scored rows to metric records: per-task AUC, gAUC and LogLoss over each task's sample
 * space; Recall@K per task and WR@K / ASH@K on the fused score, over whole candidate pools.
 */
import type { ExperimentConfig } from '../config/experiment.js';
import { STAGES, labelKey } from '../config/experiment.js';
import { log } from '../base/log.js';
import { fuseScores, type FusionSpec } from '../metrics/fusion.js';
import { itemWeights, rankWithinGroups } from '../metrics/ranking.js';
import { simulatedPurchasesAtK } from '../metrics/online.js';
import { evaluateMetrics, type EvalInput, type MetricRecord } from '../metrics/registry.js';
import type { EncodedBatch } from '../data/encode.js';

export type Fusion = FusionSpec;

export function sampleSpaceMask(config: ExperimentConfig, rows: EncodedBatch, taskIndex: number): Uint8Array {
  // 1 per stage code in the sample space (a table lookup per row: the training step builds these masks every batch)
  const inSpace = new Uint8Array(256);
  for (const s of config.tasks[taskIndex]!.sample_space) inSpace[STAGES.indexOf(s)] = 1;
  const mask = new Uint8Array(rows.length);
  for (let i = 0; i < rows.length; i++) mask[i] = inSpace[rows.stage[i]!]!;
  return mask;
}

/** What evaluateRows takes besides the rows. `tasks`: a subset of the config's tasks to evaluate; `fused`: a ranking score to use instead of fusing them. */
export interface EvaluateRowsOptions {
  fusion?: Fusion;
  metrics?: readonly string[];
  tasks?: readonly string[];
  fused?: Float64Array;
}

export function evaluateRows(config: ExperimentConfig, probs: Record<string, Float32Array>, rows: EncodedBatch, split: string, opts: EvaluateRowsOptions = {}): MetricRecord[] {
  return evaluateMetrics(evalInput(config, probs, rows, split, opts));
}

/** Each evaluated task's label column and sample-space mask (the rows the task is scored on). */
export function taskLabelsAndMasks(config: ExperimentConfig, rows: EncodedBatch, tasks: readonly string[]): { labels: Record<string, Uint8Array>; masks: Record<string, Uint8Array> } {
  const labels: Record<string, Uint8Array> = {};
  const masks: Record<string, Uint8Array> = {};
  config.tasks.forEach((t, k) => {
    if (!tasks.includes(t.name)) return;
    labels[t.name] = rows.labels.get(labelKey(t.label))!;
    masks[t.name] = sampleSpaceMask(config, rows, k);
  });
  return { labels, masks };
}

/** The metric registry's input for scored rows (evaluateRows without the computing; the bootstrap over requests reuses it). */
export function evalInput(config: ExperimentConfig, probs: Record<string, Float32Array>, rows: EncodedBatch, split: string, opts: EvaluateRowsOptions = {}): EvalInput {
  const fusion = opts.fusion ?? config.fusion;
  const tasks = opts.tasks ?? config.tasks.map((t) => t.name);
  let metrics = [...(opts.metrics ?? config.eval.metrics)];
  const { labels, masks } = taskLabelsAndMasks(config, rows, tasks);
  const ashTargets = rows.labels.get(config.eval.ash_target);
  if (metrics.includes('ash') && !ashTargets) {
    log.warn(`ash needs the ${config.eval.ash_target} label (data.columns.labels); skipped`);
    metrics = metrics.filter((m) => m !== 'ash');
  }
  const labelsByName = Object.fromEntries([...rows.labels.entries()]);
  const missingWeights = Object.keys(config.eval.label_weights).filter((l) => !(l in labelsByName));
  if (metrics.includes('wrecall') && missingWeights.length) {
    log.warn(`wrecall needs the labels ${missingWeights.join(', ')} (eval.label_weights); skipped`);
    metrics = metrics.filter((m) => m !== 'wrecall');
  }
  const online = onlineInputs(config, rows);
  if (metrics.includes('online') && !online) {
    log.debug('online (simulated outcome) needs teacher ctcvr and truth relevance_ctr/relevance_cvr columns; skipped');
    metrics = metrics.filter((m) => m !== 'online');
  }
  const input: EvalInput = {
    split,
    metrics,
    ks: config.eval.ks,
    tasks,
    probs,
    labels,
    masks,
    // a subset of the tasks has no fused ranking unless one is given
    fused: opts.fused ?? (opts.tasks ? undefined : fuseScores(probs, fusion.mode, fusion.weights)),
    requests: rows.request ?? undefined,
    users: rows.user ?? undefined,
    gaucGroup: config.eval.gauc_group,
    itemWeights: metrics.includes('wrecall') ? itemWeights(labelsByName, config.eval.label_weights) : undefined,
    ashTargets,
    online,
  };
  return input;
}

/**
 * Reference points for the simulated online outcome: `oracle` ranks every request's pool by the true
 * expected purchase if shown first (relevance_ctr x relevance_cvr) and replays its top K; `logged`
 * is what the logged production funnel got (sum of p_purchase over the request's exposures).
 */
export function onlineReferences(config: ExperimentConfig, rows: EncodedBatch, split: string): MetricRecord[] {
  const inputs = onlineInputs(config, rows);
  if (!inputs || !rows.request) return [];
  const value = Float64Array.from(inputs.relevanceCtr, (c, i) => c * inputs.relevanceCvr[i]!);
  const oracle = simulatedPurchasesAtK(rankWithinGroups(value, rows.request), inputs, config.eval.ks).map(
    ({ k, value: v }): MetricRecord => ({ name: 'online', task: 'oracle', k, split, value: v }),
  );
  const pPurchase = rows.truth.get('purchase');
  if (!pPurchase) return oracle;
  const perRequest = new Map<number, number>();
  for (let i = 0; i < rows.length; i++) if (inputs.exposed[i]) perRequest.set(rows.request[i]!, (perRequest.get(rows.request[i]!) ?? 0) + pPurchase[i]!);
  const logged = [...perRequest.values()].reduce((a, b) => a + b, 0) / Math.max(perRequest.size, 1);
  return [...oracle, { name: 'online', task: 'logged', split, value: logged }];
}

function onlineInputs(config: ExperimentConfig, rows: EncodedBatch): EvalInput['online'] {
  const teacherCtcvr = rows.teacher.get('ctcvr');
  const relevanceCtr = rows.truth.get('relevance_ctr');
  const relevanceCvr = rows.truth.get('relevance_cvr');
  if (!teacherCtcvr || !relevanceCtr || !relevanceCvr || !config.data.columns.stage) return undefined;
  return { teacherCtcvr, relevanceCtr, relevanceCvr, exposed: rows.labels.get('exposure')! };
}

/**
 * The oracle (README.md, "Ground truth"): each task scored by the true probability of its label,
 * for every task whose label has a truth column (data.columns.truth). Its metrics bound what any
 * model can reach on the same rows. Empty without ground truth.
 */
export function oracleProbs(config: ExperimentConfig, rows: EncodedBatch): Record<string, Float32Array> {
  const out: Record<string, Float32Array> = {};
  for (const t of config.tasks) {
    // a rank-consistency label has no true probability
    const truth = typeof t.label === 'string' ? rows.truth.get(t.label) : undefined;
    if (truth) out[t.name] = truth;
  }
  return out;
}

/**
 * The oracle's records, split `split`: with a truth column for every task, every metric (but online)
 * of the fused true probabilities; with one for some tasks only, those tasks' own metrics (auc, gauc,
 * logloss), and ASH@K ranked by the true probability of the ASH target (eval.ash_target) where that
 * label has a truth column. Then the online reference points.
 */
export function oracleRecords(config: ExperimentConfig, rows: EncodedBatch, split: string, fusion?: Fusion): MetricRecord[] {
  const probs = oracleProbs(config, rows);
  const tasks = Object.keys(probs);
  const wanted = config.eval.metrics.filter((m) => m !== 'online');
  const out: MetricRecord[] = [];
  if (tasks.length === config.tasks.length) out.push(...evaluateRows(config, probs, rows, split, { fusion, metrics: wanted }));
  else {
    if (tasks.length) out.push(...evaluateRows(config, probs, rows, split, { tasks, metrics: wanted.filter((m) => PER_TASK.includes(m)) }));
    const target = rows.truth.get(config.eval.ash_target);
    if (wanted.includes('ash') && target && rows.request) {
      out.push(...evaluateRows(config, probs, rows, split, { tasks: [], metrics: ['ash'], fused: Float64Array.from(target) }));
    }
  }
  return [...out, ...onlineReferences(config, rows, split)];
}

/** Metrics of one task's own scores, which need no fused ranking. */
const PER_TASK: readonly string[] = ['auc', 'gauc', 'logloss'];
