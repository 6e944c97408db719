/**
 * What each metric is, without how it is computed: its name, the inputs it needs, whether it is
 * reported per K, its direction and whether it can be watched on validation.
 *
 * Why here and not in metrics/: the config must validate metric names (eval.metrics,
 * train.early_stopping.metric) and check that each asked-for metric has what it needs (a request
 * column, label columns) with the config's file-and-line errors, and config sits below metrics in
 * the layering. So the declarations are plain data at this level; metrics/registry.ts attaches an
 * implementation to each, and evaluation reads the same declarations.
 */

export const METRICS = ['auc', 'gauc', 'logloss', 'recall', 'wrecall', 'ash', 'online'] as const;
export type MetricName = (typeof METRICS)[number];

/**
 * Inputs a metric reads:
 * - `probs`, `labels`, `masks`: per task, predicted probabilities, labels and sample-space masks;
 * - `fused`: the fused ranking score (fusion section);
 * - `requests`: request ids (data.columns.request);
 * - `groups`: request or user ids, as eval.gauc_group says;
 * - `label_weights`: per-row weights from eval.label_weights (their label columns);
 * - `ash_targets`: the eval.ash_target label;
 * - `truth`: synthetic ground truth and teacher scores (data.columns.truth / teacher).
 */
export type MetricInput = 'probs' | 'labels' | 'masks' | 'fused' | 'requests' | 'groups' | 'label_weights' | 'ash_targets' | 'truth';

/** Where each input comes from, for messages when it is missing. */
export const INPUT_SOURCES: Record<MetricInput, string> = {
  probs: "the task's predicted probabilities",
  labels: "the task's labels (data.columns.labels)",
  masks: "the task's sample-space masks",
  fused: 'the fused score',
  requests: 'request ids (data.columns.request)',
  groups: 'request ids (data.columns.request), or user ids (data.columns.user) when eval.gauc_group is user',
  label_weights: 'item weights (eval.label_weights)',
  ash_targets: 'all-scenario targets (eval.ash_target label column)',
  truth: 'teacher_ctcvr and true relevances (data.columns.teacher.ctcvr, data.columns.truth.relevance_ctr/relevance_cvr)',
};

export interface MetricDeclaration {
  name: MetricName;
  inputs: readonly MetricInput[];
  /** Whether it is reported per K (eval.ks). */
  hasK: boolean;
  direction: 'higher' | 'lower';
  /** Whether there is one record per task (else one for the fused ranking, task `fused`). */
  perTask: boolean;
  /**
   * Whether early stopping may watch it: a per-task metric on one task, or a metric of the fused
   * ranking (wrecall, ash) on its first variant (macro) at the configured K. `online` needs the
   * simulator's ground truth, which a validation split of real logs does not have.
   */
  validation: boolean;
  /** Variants reported for each K, in record order; absent: one plain record. */
  variants?: readonly ('macro' | 'micro')[];
  description: string;
}

const MACRO_MICRO = ['macro', 'micro'] as const;

export const METRIC_DECLARATIONS = {
  auc: {
    name: 'auc',
    inputs: ['probs', 'labels', 'masks'],
    hasK: false,
    direction: 'higher',
    perTask: true,
    validation: true,
    description: 'Exact tie-aware AUC (Mann-Whitney, average ranks) over the task sample space; NaN with one class.',
  },
  gauc: {
    name: 'gauc',
    inputs: ['probs', 'labels', 'masks', 'groups'],
    hasK: false,
    direction: 'higher',
    perTask: true,
    validation: true,
    description: 'AUC per request (or user), skipping groups with one class, weighted by group row count.',
  },
  logloss: {
    name: 'logloss',
    inputs: ['probs', 'labels', 'masks'],
    hasK: false,
    direction: 'lower',
    perTask: true,
    validation: true,
    description: 'Mean cross-entropy over the task sample space, probabilities clipped to [1e-7, 1-1e-7].',
  },
  recall: {
    name: 'recall',
    inputs: ['labels', 'fused', 'requests'],
    hasK: true,
    direction: 'higher',
    perTask: true,
    validation: true,
    description: "Recall@K per task: per request, share of the task's positives in the top K by fused score; mean over requests with a positive.",
  },
  wrecall: {
    name: 'wrecall',
    inputs: ['fused', 'requests', 'label_weights'],
    hasK: true,
    direction: 'higher',
    perTask: false,
    validation: true,
    variants: MACRO_MICRO,
    description:
      'Weighted Recall@K of the fused ranking: W_i = sum_t w_t y_t; macro = mean over requests of top-K weight / request weight, micro = pooled. The project reading of the ResFlow paper.',
  },
  ash: {
    name: 'ash',
    inputs: ['fused', 'requests', 'ash_targets'],
    hasK: true,
    direction: 'higher',
    perTask: false,
    validation: true,
    variants: MACRO_MICRO,
    description: 'All-Scenario Hitrate@K of the fused ranking: share of all-scenario targets in the top K; macro over requests with targets, micro pooled.',
  },
  online: {
    name: 'online',
    inputs: ['fused', 'requests', 'truth'],
    hasK: true,
    direction: 'higher',
    perTask: false,
    validation: false,
    description:
      'Simulated online outcome (synthetic data): expected purchases per request when the top K by fused score go through the simulated ranking stage and exposures.',
  },
} as const satisfies { [M in MetricName]: MetricDeclaration & { name: M } };

/** Metrics early stopping may watch. */
export type ValidationMetricName = { [M in MetricName]: (typeof METRIC_DECLARATIONS)[M]['validation'] extends true ? M : never }[MetricName];
export const VALIDATION_METRICS = METRICS.filter((m): m is ValidationMetricName => METRIC_DECLARATIONS[m].validation);

export function isMetricName(name: string): name is MetricName {
  return Object.prototype.hasOwnProperty.call(METRIC_DECLARATIONS, name);
}

/** The declaration of a known metric; undefined for an unknown name. */
export function metricDeclaration(name: string): MetricDeclaration | undefined {
  return isMetricName(name) ? METRIC_DECLARATIONS[name] : undefined;
}

/** Whether larger values of `name` are better (`higher`) or smaller ones (`lower`). Unknown names: `higher`. */
export function direction(name: string): 'higher' | 'lower' {
  return metricDeclaration(name)?.direction ?? 'higher';
}

/** Whether early stopping may watch metric `name` on the validation split. */
export function appliesToValidation(name: string): boolean {
  return metricDeclaration(name)?.validation ?? false;
}

/** Whether metric `name` reads `input`. */
export function reads(name: MetricName, input: MetricInput): boolean {
  const inputs: readonly MetricInput[] = METRIC_DECLARATIONS[name].inputs;
  return inputs.includes(input);
}

/** Whether metric `name` reads request ids, given what gAUC groups by. */
export function needsRequests(name: MetricName, gaucGroup: 'request' | 'user'): boolean {
  return reads(name, 'requests') || (reads(name, 'groups') && gaucGroup === 'request');
}

/** Whether metric `name` reads user ids, given what gAUC groups by. */
export function needsUsers(name: MetricName, gaucGroup: 'request' | 'user'): boolean {
  return reads(name, 'groups') && gaucGroup === 'user';
}

/** Whether metric `name` reads the label columns named in eval.label_weights. */
export function needsLabelWeights(name: MetricName): boolean {
  return reads(name, 'label_weights');
}
