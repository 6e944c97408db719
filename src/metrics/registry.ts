/**
 * The metric registry: one definition per metric name (docs/domain.md, Metrics; src/runs/README.md), and `evaluateMetrics`, which
 * turns one split's predictions into the flat list of records written to metrics.json.
 *
 * Conventions of the records:
 * - `auc`, `gauc`, `logloss`: one record per task, over the task's sample space (its mask).
 * - `recall`: one record per task and K; rows are ranked by the *fused* score (docs/domain.md, Metrics) and the
 *   pool is the request's whole candidate pool (no sample-space mask: evaluation scores every
 *   candidate); positives are the task's labels.
 * - `wrecall`, `ash`: task `fused`, one record per K and variant (`macro`, then `micro`).
 * Records come metric by metric in the order asked for, then task by task, then K by K.
 *
 * Support: every record says what it rests on. `n_positives`: positive rows counted (AUC, gAUC,
 * LogLoss: the task's positives in its sample space; Recall@K: the task's positives; WR@K: rows
 * with W > 0; ASH@K: target rows). `n_requests`: requests counted (gAUC: groups with both classes;
 * @K metrics: requests with a positive total, the ones the macro mean is over; AUC and LogLoss:
 * requests with a row in the sample space, when request ids are given). `resflow compare` shows
 * them beside the values.
 *
 * Sharing: the fused ranking is computed once for all @K metrics; per task, AUC and gAUC share one
 * sort of the task's probabilities.
 *
 * What each metric needs, its direction and whether it applies to validation are declared in
 * config/metrics.ts (the config checks them too); each entry here is that declaration plus `compute`.
 * A new metric: declare it there, implement it here.
 */
import { INPUT_SOURCES, isMetricName, METRIC_DECLARATIONS, METRICS, type MetricDeclaration, type MetricInput, type MetricName } from '../config/metrics.js';
import { DataError, UsageError } from '../base/errors.js';
import { aucFromSorted, gaucFromPartition, logloss } from './classification.js';
import { simulatedPurchasesAtK, type OnlineInputs } from './online.js';
import {
  countGroups,
  hitRateFromRanking,
  partitionByGroup,
  rankWithinGroups,
  recallFromRanking,
  sortRowsByScore,
  weightedRecallFromRanking,
  type LabelArray,
  type MacroMicroResult,
  type RankedGroups,
  type ScoreArray,
  type WeightArray,
} from './ranking.js';

export { appliesToValidation, direction, type MetricDeclaration, type MetricInput, type MetricName } from '../config/metrics.js';

/** One line of metrics.json (src/runs/README.md). `k` only for @K metrics, `variant` only for wrecall/ash. */
export interface MetricRecord {
  name: string;
  /** A task name, or `fused` for metrics of the fused ranking. */
  task: string;
  k?: number;
  split: string;
  value: number;
  variant?: 'macro' | 'micro';
  /** Only on records of an eval variant (README.md, "Evaluation variants"): the fusion they were ranked by, `mode:task=w,...`. */
  fusion?: string;
  /** Only on records of an eval variant: the eval.* settings changed by --set, with their values. */
  settings?: Record<string, unknown>;
  /** Requests the value rests on (see the module comment). */
  n_requests?: number;
  /** Positive rows the value rests on (see the module comment). */
  n_positives?: number;
  /**
   * Only with `resflow eval --bootstrap`: the 95% percentile bootstrap interval over requests
   * (docs/domain.md, Comparing runs), NaN (null in metrics.json) where it is undefined, with its
   * resamples and seed.
   */
  ci_low?: number;
  ci_high?: number;
  ci_resamples?: number;
  ci_seed?: number;
}

/** Everything one split's evaluation provides. All per-row arrays have the same length n. */
export interface EvalInput {
  /** Split name written into every record (`validation`, `test`, ...). */
  split: string;
  /** Metric names wanted (eval.metrics), in output order; duplicates are ignored. Unknown names are a UsageError. */
  metrics: readonly string[];
  /** Cutoffs for recall / wrecall / ash (eval.ks), positive integers; K larger than a pool = the whole pool. */
  ks: readonly number[];
  /** Task names in output order; each needs `probs[task]` and `labels[task]`. */
  tasks: readonly string[];
  /** Per task: predicted probability per row. */
  probs: Readonly<Record<string, ScoreArray>>;
  /** Per task: the task's 0/1 label per row (positive when > 0). */
  labels: Readonly<Record<string, LabelArray>>;
  /** Per task: sample-space mask (1 = row is in the task's sample space) for auc/gauc/logloss; absent = all rows. */
  masks?: Readonly<Record<string, Uint8Array | undefined>>;
  /** Fused ranking score per row (fuseScores). Needed by recall, wrecall, ash. */
  fused?: ScoreArray;
  /** Dense request id per row (0..R-1, rows need not be contiguous). Needed by recall, wrecall, ash, and gauc by request. */
  requests?: Int32Array;
  /** Dense user id per row (0..U-1). Needed by gauc when `gaucGroup` is `user`. */
  users?: Int32Array;
  /** What gAUC groups by (eval.gauc_group); default `request`. */
  gaucGroup?: 'request' | 'user';
  /** W_i per row for wrecall (see itemWeights, from eval.label_weights). */
  itemWeights?: WeightArray;
  /** ASH target per row (0/1; the all_purchase or all_click label, from eval.ash_target). */
  ashTargets?: LabelArray;
  /** Teacher scores, true relevances and logged exposures, for the simulated online outcome. */
  online?: OnlineInputs;
}

/** The non-task inputs a metric may declare, as evaluateMetrics provides them. */
interface SharedInputs {
  fused: ScoreArray;
  requests: Int32Array;
  groups: Int32Array;
  label_weights: WeightArray;
  ash_targets: LabelArray;
  truth: OnlineInputs;
}
type SharedInput = keyof SharedInputs;

const SHARED_INPUTS: { [K in SharedInput]: (input: EvalInput) => SharedInputs[K] | undefined } = {
  fused: (i) => i.fused,
  requests: (i) => i.requests,
  groups: (i) => ((i.gaucGroup ?? 'request') === 'user' ? i.users : i.requests),
  label_weights: (i) => i.itemWeights,
  ash_targets: (i) => i.ashTargets,
  truth: (i) => i.online,
};

function isShared(input: MetricInput): input is SharedInput {
  return input in SHARED_INPUTS;
}

/** Lazily computed values shared between metrics of one evaluateMetrics call. */
export interface EvalContext {
  input: EvalInput;
  n: number;
  ks: readonly number[];
  /** A declared input of metric `metric`; DataError naming where it comes from when it is missing. */
  get<K extends SharedInput>(metric: string, what: K): SharedInputs[K];
  /** Ranking of all rows by the fused score within requests. */
  fusedRanking(metric: string): RankedGroups;
  /** Row indices of a task's sample space, ascending probability. */
  taskOrder(task: string): Int32Array;
}

/** A metric's declaration (config/metrics.ts) with its implementation attached. */
export type MetricDefinition = MetricDeclaration & {
  /** Derived from `direction` (report/ reads it). */
  higherIsBetter: boolean;
  /** Whether it needs row groups: request ids (or user ids for gauc by user). */
  needsGroups: boolean;
  /** Computes this metric's records. */
  compute(ctx: EvalContext): MetricRecord[];
};

function define<M extends MetricName>(name: M, compute: (ctx: EvalContext) => MetricRecord[]) {
  const d = METRIC_DECLARATIONS[name];
  const inputs: readonly MetricInput[] = d.inputs;
  return { ...d, higherIsBetter: d.direction === 'higher', needsGroups: inputs.includes('requests') || inputs.includes('groups'), compute };
}

export function missing(metric: string, what: MetricInput): DataError {
  return new DataError(`metric \`${metric}\` needs ${INPUT_SOURCES[what]}`);
}

/** Positive rows of a task's sample space, and the requests with a row in it (when request ids are given). */
function taskSupport(ctx: EvalContext, task: string): { n_requests?: number; n_positives: number } {
  const { labels, mask } = taskArrays(ctx, task);
  const requests = ctx.input.requests;
  let positives = 0;
  let count = 0;
  const seen = requests ? new Uint8Array(countGroups(requests)) : null;
  for (let i = 0; i < labels.length; i++) {
    if (mask && !mask[i]) continue;
    if (labels[i]! > 0) positives++;
    if (seen && !seen[requests![i]!]) (seen[requests![i]!] = 1), count++;
  }
  return seen ? { n_requests: count, n_positives: positives } : { n_positives: positives };
}

function taskArrays(ctx: EvalContext, task: string): { probs: ScoreArray; labels: LabelArray; mask: Uint8Array | undefined } {
  const { input } = ctx;
  const probs = input.probs[task];
  const labels = input.labels[task];
  if (probs === undefined) throw new DataError(`no predicted probabilities for task \`${task}\``);
  if (labels === undefined) throw new DataError(`no labels for task \`${task}\``);
  return { probs, labels, mask: input.masks?.[task] };
}

export const METRIC_REGISTRY = {
  auc: define('auc', (ctx) =>
    ctx.input.tasks.map((task) => {
      const { probs, labels } = taskArrays(ctx, task);
      return { name: 'auc', task, split: ctx.input.split, value: aucFromSorted(ctx.taskOrder(task), probs, labels), ...taskSupport(ctx, task) };
    }),
  ),
  gauc: define('gauc', (ctx) => {
    const groups = ctx.get('gauc', 'groups');
    const G = countGroups(groups);
    return ctx.input.tasks.map((task) => {
      const { probs, labels } = taskArrays(ctx, task);
      const part = partitionByGroup(ctx.taskOrder(task), groups, G);
      const g = gaucFromPartition(part, probs, labels);
      return { name: 'gauc', task, split: ctx.input.split, value: g.value, n_requests: g.groupsUsed, n_positives: taskSupport(ctx, task).n_positives };
    });
  }),
  logloss: define('logloss', (ctx) =>
    ctx.input.tasks.map((task) => {
      const { probs, labels, mask } = taskArrays(ctx, task);
      return { name: 'logloss', task, split: ctx.input.split, value: logloss(probs, labels, mask), ...taskSupport(ctx, task) };
    }),
  ),
  recall: define('recall', (ctx) => {
    const ranked = ctx.fusedRanking('recall');
    const out: MetricRecord[] = [];
    for (const task of ctx.input.tasks) {
      const { labels } = taskArrays(ctx, task);
      const r = recallFromRanking(ranked, labels, ctx.ks);
      for (const { k, value } of r.perK) {
        out.push({ name: 'recall', task, k, split: ctx.input.split, value, n_requests: r.requestsCounted, n_positives: r.positives });
      }
    }
    return out;
  }),
  wrecall: define('wrecall', (ctx) => {
    const W = ctx.get('wrecall', 'label_weights');
    return macroMicroRecords('wrecall', weightedRecallFromRanking(ctx.fusedRanking('wrecall'), W, ctx.ks), ctx.input.split);
  }),
  ash: define('ash', (ctx) => {
    const T = ctx.get('ash', 'ash_targets');
    return macroMicroRecords('ash', hitRateFromRanking(ctx.fusedRanking('ash'), T, ctx.ks), ctx.input.split);
  }),
  online: define('online', (ctx) => {
    const inputs = ctx.get('online', 'truth');
    return simulatedPurchasesAtK(ctx.fusedRanking('online'), inputs, ctx.ks).map(({ k, value }) => ({ name: 'online', task: 'fused', k, split: ctx.input.split, value }));
  }),
} as const satisfies { [M in MetricName]: MetricDefinition & { name: M } };

export function macroMicroRecords(name: string, res: MacroMicroResult, split: string): MetricRecord[] {
  const out: MetricRecord[] = [];
  const support = { n_requests: res.requestsCounted, n_positives: res.positives };
  for (const r of res.perK) {
    out.push({ name, task: 'fused', k: r.k, split, value: r.macro, variant: 'macro', ...support });
    out.push({ name, task: 'fused', k: r.k, split, value: r.micro, variant: 'micro', ...support });
  }
  return out;
}

/** All metric names, in registry order. */
export const METRIC_NAMES: readonly MetricName[] = METRICS;

/** The definition of metric `name`; UsageError listing the known names when there is none. */
export function metricDefinition(name: string): MetricDefinition {
  if (!isMetricName(name)) throw new UsageError(`unknown metric \`${name}\`; known metrics: ${METRIC_NAMES.join(', ')}`);
  return METRIC_REGISTRY[name];
}

/**
 * Computes the metrics named in `input.metrics` for one split and returns the flat list of
 * records for metrics.json. Throws UsageError for an unknown metric name, DataError when a metric
 * lacks an input it needs (request ids, fused score, item weights, ASH targets, a task's arrays),
 * RangeError when arrays differ in length or a K is not a positive integer.
 */
export function evaluateMetrics(input: EvalInput): MetricRecord[] {
  const defs = resolveMetrics(input);
  const n = checkLengths(input);
  let ranking: RankedGroups | undefined;
  const orders = new Map<string, Int32Array>();
  const ctx: EvalContext = {
    input,
    n,
    ks: input.ks,
    get(metric, what) {
      const value = SHARED_INPUTS[what](input);
      if (value === undefined) throw missing(metric, what);
      return value;
    },
    fusedRanking(metric) {
      ranking ??= rankWithinGroups(ctx.get(metric, 'fused'), ctx.get(metric, 'requests'));
      return ranking;
    },
    taskOrder(task) {
      let order = orders.get(task);
      if (order === undefined) {
        const { probs, mask } = taskArrays(ctx, task);
        order = sortRowsByScore(probs, { mask });
        orders.set(task, order);
      }
      return order;
    },
  };
  // Every declared shared input is checked before any metric is computed.
  for (const def of defs) for (const what of def.inputs) if (isShared(what)) ctx.get(def.name, what);
  const records: MetricRecord[] = [];
  for (const def of defs) records.push(...def.compute(ctx));
  return records;
}

/** The definitions of the metrics asked for (duplicates once), after checking every K. */
export function resolveMetrics(input: Pick<EvalInput, 'metrics' | 'ks'>): MetricDefinition[] {
  const defs: MetricDefinition[] = [];
  for (const name of input.metrics) {
    const def = metricDefinition(name);
    if (!defs.includes(def)) defs.push(def);
  }
  for (const k of input.ks) {
    if (!Number.isInteger(k) || k < 1) throw new RangeError(`K must be a positive integer, got ${k}`);
  }
  return defs;
}

/** Every declared shared input of `defs` that `input` lacks is a DataError naming where it comes from. */
export function checkSharedInputs(input: EvalInput, defs: readonly MetricDefinition[]): void {
  for (const def of defs) for (const what of def.inputs) if (isShared(what) && SHARED_INPUTS[what](input) === undefined) throw missing(def.name, what);
}

/** Checks that every per-row array has the same length; returns it. */
export function checkLengths(input: EvalInput): number {
  let n = -1;
  let first = '';
  const check = (what: string, a: { length: number } | undefined): void => {
    if (a === undefined) return;
    if (n === -1) {
      n = a.length;
      first = what;
    } else if (a.length !== n) {
      throw new RangeError(`${what} has ${a.length} rows, ${first} has ${n}`);
    }
  };
  for (const task of input.tasks) {
    check(`probs of \`${task}\``, input.probs[task]);
    check(`labels of \`${task}\``, input.labels[task]);
    check(`mask of \`${task}\``, input.masks?.[task]);
  }
  check('fused', input.fused);
  check('requests', input.requests);
  check('users', input.users);
  check('itemWeights', input.itemWeights);
  check('ashTargets', input.ashTargets);
  check('online teacher scores', input.online?.teacherCtcvr);
  return Math.max(n, 0);
}
