/**
 * From scored rows to metric records: per-task AUC, gAUC and LogLoss over each task's sample
 * space; Recall@K per task and WR@K / ASH@K on the fused score, over whole candidate pools.
 */
import type { ExperimentConfig } from '../config/experiment.js';
import { STAGES } from '../config/experiment.js';
import { log } from '../log.js';
import { fuseScores } from '../metrics/fusion.js';
import { itemWeights } from '../metrics/ranking.js';
import { evaluateMetrics, type EvalInput, type MetricRecord } from '../metrics/registry.js';
import type { EncodedBatch } from '../data/encode.js';

export interface Fusion {
  mode: 'additive' | 'multiplicative';
  weights: Record<string, number>;
}

export function sampleSpaceMask(config: ExperimentConfig, rows: EncodedBatch, taskIndex: number): Uint8Array {
  const allowed = config.tasks[taskIndex]!.sample_space.map((s) => STAGES.indexOf(s));
  const mask = new Uint8Array(rows.length);
  for (let i = 0; i < rows.length; i++) mask[i] = allowed.includes(rows.stage[i]!) ? 1 : 0;
  return mask;
}

export function evaluateRows(
  config: ExperimentConfig,
  probs: Record<string, Float32Array>,
  rows: EncodedBatch,
  split: string,
  opts: { fusion?: Fusion; metrics?: readonly string[] } = {},
): MetricRecord[] {
  const fusion = opts.fusion ?? config.fusion;
  const tasks = config.tasks.map((t) => t.name);
  let metrics = [...(opts.metrics ?? config.eval.metrics)];
  const labels: Record<string, Uint8Array> = {};
  const masks: Record<string, Uint8Array> = {};
  config.tasks.forEach((t, k) => {
    labels[t.name] = rows.labels.get(t.label)!;
    masks[t.name] = sampleSpaceMask(config, rows, k);
  });
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
    fused: fuseScores(probs, fusion.mode, fusion.weights),
    requests: rows.request ?? undefined,
    users: rows.user ?? undefined,
    gaucGroup: config.eval.gauc_group,
    itemWeights: metrics.includes('wrecall') ? itemWeights(labelsByName, config.eval.label_weights) : undefined,
    ashTargets,
    online,
  };
  return evaluateMetrics(input);
}

function onlineInputs(config: ExperimentConfig, rows: EncodedBatch): EvalInput['online'] {
  const teacherCtcvr = rows.teacher.get('ctcvr');
  const relevanceCtr = rows.truth.get('relevance_ctr');
  const relevanceCvr = rows.truth.get('relevance_cvr');
  if (!teacherCtcvr || !relevanceCtr || !relevanceCvr || !config.data.columns.stage) return undefined;
  return { teacherCtcvr, relevanceCtr, relevanceCvr, exposed: rows.labels.get('exposure')! };
}

/**
 * The oracle: every task scored by the true probability of its label (synthetic data). Its
 * metrics bound what any model can reach on the same rows. Undefined without ground truth.
 */
export function oracleProbs(config: ExperimentConfig, rows: EncodedBatch): Record<string, Float32Array> | undefined {
  const out: Record<string, Float32Array> = {};
  for (const t of config.tasks) {
    const truth = rows.truth.get(t.label);
    if (!truth) return undefined;
    out[t.name] = truth;
  }
  return out;
}
