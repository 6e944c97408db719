/**
 * The experiment config: one schema for every section (data, features, tasks, model, sampling,
 * train, fusion, eval, runtime). The types are inferred from the schema, so they cannot drift apart.
 *
 * The model section is checked here only for what every model shares (type and the common
 * parameters); each model's own parameters are checked against its descriptor in models/ (see
 * models/registry.ts, resolveModelConfig), because config sits below models in the layering.
 */
import { arr, bool, int, nullable, num, obj, oneOf, record, str, tagged, union, type Infer } from './schema.js';
import { METRICS, VALIDATION_METRICS } from './metrics.js';

export { METRICS, type MetricName } from './metrics.js';

export const STAGES = ['exposure', 'ranking_candidate', 'prerank_candidate'] as const;
export type Stage = (typeof STAGES)[number];
/** Label names a task may learn; `exposure` is derived from the stage column (AEL in ASMOL). */
export const LABELS = ['click', 'purchase', 'all_click', 'all_purchase', 'exposure'] as const;
export type LabelName = (typeof LABELS)[number];
/** How per-task probabilities become one ranking score (metrics/fusion.ts). */
export const FUSION_MODES = ['additive', 'multiplicative'] as const;
export type FusionMode = (typeof FUSION_MODES)[number];
/** Compute backends a run can ask for; `auto` picks the fastest one available. */
export const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export const BACKEND_CHOICES = ['auto', ...BACKENDS] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

/** Model type used when the config names none. */
export const DEFAULT_MODEL_TYPE = 'resflow';

/** Model parameters every model type shares; each model adds its own (models/registry.ts). */
export const COMMON_MODEL_FIELDS = {
  embedding_dim: int({ min: 1, default: 16, description: 'Embedding size of every field unless the feature sets `dim`.' }),
  activation: oneOf(['relu', 'prelu'], { default: 'relu' }),
  batch_norm: bool({ default: false, description: 'Batch normalisation after each hidden layer (training-mode statistics, moving averages at inference).' }),
  dropout: num({ min: 0, max: 0.95, default: 0 }),
};
export const COMMON_MODEL_KEYS: readonly string[] = Object.keys(COMMON_MODEL_FIELDS);

/** The model section as the config layer sees it: the type, the common parameters, the rest unchecked. */
export const modelSectionSchema = obj({ type: str({ default: DEFAULT_MODEL_TYPE }), ...COMMON_MODEL_FIELDS }, { open: true });

const files = union([str(), arr(str(), { minItems: 1 })], {
  description: 'A Parquet/Arrow file, a glob (`data/*.parquet`), or a list of them. Relative paths are resolved from the config file.',
});

const optimizerFields = (defaultLr: number) => ({
  type: oneOf(['adam', 'adagrad', 'sgd'], { default: 'adam' }),
  lr: num({ above: 0, default: defaultLr, description: 'Learning rate.' }),
  beta1: num({ min: 0, max: 1, default: 0.9 }),
  beta2: num({ min: 0, max: 1, default: 0.999 }),
  epsilon: num({ above: 0, default: 1e-8 }),
  initial_accumulator: num({ min: 0, default: 0.1, description: 'Adagrad only.' }),
});
const optimizer = (defaultLr: number) => obj(optimizerFields(defaultLr));
/** The dense optimizer: the embedding one plus decoupled weight decay (README.md, "Regularisation and schedules"). */
const denseOptimizer = (defaultLr: number) =>
  obj({
    ...optimizerFields(defaultLr),
    weight_decay: num({ min: 0, default: 0, description: 'Decoupled (AdamW-style) weight decay of the dense weights: each step multiplies them by 1 - lr x weight_decay before the update; 0: off.' }),
  });

/** Learning-rate schedule of both optimizers: a factor on their lr (train/lr-schedule.ts). */
const lrSchedule = obj({
  warmup_steps: int({ min: 0, default: 0, description: 'Linear warm-up: the factor rises from 1/N to 1 over the first N steps.' }),
  decay: oneOf(['none', 'cosine', 'step', 'plateau'], { default: 'none' }),
  min_factor: num({ min: 0, max: 1, default: 0, description: 'cosine: the factor at the end of the run (the floor).' }),
  total_steps: nullable(int({ min: 1 }), { default: null, description: 'cosine by step: steps of the run (required there).' }),
  factor: num({ above: 0, max: 1, default: 0.1, description: 'step and plateau: the factor each decay multiplies by.' }),
  every: int({ min: 1, default: 1, description: 'step: decay every this many units.' }),
  unit: oneOf(['epoch', 'step'], { default: 'epoch', description: 'cosine and step: decay by epoch (the factor changes at epoch starts) or by step.' }),
  metric: oneOf(VALIDATION_METRICS, { default: 'auc', description: 'plateau: validation metric watched (as in early_stopping).' }),
  k: int({ min: 1, description: 'plateau: cutoff for @K metrics.' }),
  task: str({ description: 'plateau: task whose metric is watched; default the first.' }),
  patience: int({ min: 1, default: 1, description: 'plateau: epochs without improvement before a decay.' }),
});

export const lossSchema = tagged(
  'type',
  {
    pointwise: obj({ weight: num({ min: 0, default: 1 }) }, { description: 'Sigmoid cross-entropy with the task\'s pos_weight.' }),
    listwise: obj(
      { weight: num({ min: 0, default: 1 }) },
      { description: 'Multi-positive softmax over a request: each positive competes with the negatives only.' },
    ),
    distill: obj(
      {
        weight: num({ min: 0, default: 1 }),
        teacher: str({ description: 'Name of a teacher score under data.columns.teacher.' }),
        temperature: num({ above: 0, default: 1 }),
      },
      { required: ['teacher'], description: 'Soft-label softmax cross-entropy against the ranking model over the request\'s exposures.' },
    ),
  },
  { defaultTag: 'pointwise' },
);

const feature = obj(
  {
    name: str({ description: 'Feature name; also the column name unless `column` is given.' }),
    column: str(),
    type: oneOf(['categorical', 'list', 'numeric'], { default: 'categorical' }),
    buckets: int({ min: 1, description: 'Hash ids into this many buckets (seeded, stable across runs and readers).' }),
    vocab: str({ description: 'Text file with one id per line; ids not in it map to a shared out-of-vocabulary row.' }),
    max_len: int({ min: 1, default: 16, description: 'List features: longest list kept (longer lists are cut).' }),
    pooling: oneOf(['sum', 'mean'], { default: 'mean' }),
    dim: int({ min: 1, description: 'Embedding size; defaults to model.embedding_dim.' }),
    transform: oneOf(['none', 'log1p'], { default: 'none', description: 'Numeric features only.' }),
  },
  { required: ['name'] },
);

/**
 * A label derived at read time from a teacher column (README.md, "Rank-consistency tasks"; GRACE,
 * SIGIR 2024): 1 when the ranking model put the row in its top `top_k` within its request.
 */
const rankLabel = obj(
  {
    from_teacher: str({ description: 'Name of a teacher score under data.columns.teacher.' }),
    top_k: int({ min: 1, description: 'Rows of a request with the k highest teacher scores are positives (ties: the earlier row first).' }),
  },
  { required: ['from_teacher', 'top_k'], description: 'Rank-consistency label: the teacher put the row in its top k within its request.' },
);

const task = obj(
  {
    name: str(),
    label: union([oneOf(LABELS), rankLabel], { description: 'A label name, or { from_teacher, top_k }: the teacher\'s top k within the request.' }),
    sample_space: arr(oneOf(STAGES), { minItems: 1, default: ['exposure'], description: 'Stages whose rows this task learns from and is evaluated on.' }),
    weight: num({ min: 0, default: 1, description: 'Loss weight of this task in the total loss.' }),
    pos_weight: num({ above: 0, default: 1, description: 'Weight of positive rows in the pointwise loss.' }),
    losses: arr(lossSchema, { minItems: 1, default: [{ type: 'pointwise', weight: 1 }] }),
  },
  { required: ['name', 'label'] },
);

export const experimentSchema = obj(
  {
    name: str({ description: 'Experiment name: runs go to runs/<name>/<version>/. Defaults to the config file name.' }),
    description: str(),
    extends: str({ description: 'Another config this one inherits from (deep merge; lists are replaced).' }),
    data: obj(
      {
        train: files,
        validation: nullable(files, { default: null }),
        eval: nullable(files, { default: null }),
        format: oneOf(['auto', 'parquet', 'arrow'], { default: 'auto' }),
        columns: obj({
          request: nullable(str(), { default: null, description: 'Groups rows into requests; required for list-wise losses, gAUC and @K metrics.' }),
          user: nullable(str(), { default: null }),
          stage: nullable(str(), { default: null, description: 'Absent: every row is an exposure.' }),
          labels: record(str(), { default: {}, description: 'Label name (click, purchase, all_click, all_purchase) to column.' }),
          teacher: record(str(), { default: {}, description: 'Teacher score name to column (ranking model CTR/CTCVR in [0,1]).' }),
          truth: record(str(), {
            default: {},
            description: 'Synthetic ground truth: true probability per label (oracle metrics) and relevance_ctr / relevance_cvr (simulated online outcome).',
          }),
        }),
        stage_values: record(union([str(), int()]), {
          default: {},
          description: 'Value in the stage column for each stage, when it is not the stage name or 0/1/2.',
        }),
        read_batch_rows: int({ min: 1, default: 65536 }),
      },
      { required: ['train'] },
    ),
    features: arr(feature, { minItems: 1 }),
    tasks: arr(task, { minItems: 1 }),
    model: modelSectionSchema,
    sampling: obj({
      ranking_candidates: nullable(int({ min: 0 }), { default: null, description: 'M ranking candidates sampled per request and epoch; null keeps all.' }),
      prerank_candidates: nullable(int({ min: 0 }), { default: null, description: 'L pre-ranking candidates sampled per request and epoch; null keeps all.' }),
    }),
    train: obj({
      epochs: int({ min: 1, default: 1 }),
      batch_size: int({ min: 1, default: 1024, description: 'Rows per step (whole requests when a list-wise loss or sampling needs them).' }),
      shuffle: bool({ default: true }),
      shuffle_buffer: int({ min: 1, default: 262144, description: 'Rows held for seeded streaming shuffle.' }),
      optimizer: denseOptimizer(1e-3),
      embedding_optimizer: nullable(optimizer(1e-3), { default: null, description: 'Sparse optimizer for embedding rows; null: same as optimizer.' }),
      grad_clip: nullable(num({ above: 0 }), { default: null, description: 'Clip dense gradients to this global norm.' }),
      embedding_l2: num({ min: 0, default: 0, description: 'L2 on the embedding rows a batch touches, applied lazily at their update: adds embedding_l2 x row to their gradient; 0: off.' }),
      lr_schedule: nullable(lrSchedule, { default: null, description: 'Learning-rate warm-up and decay for the dense and embedding optimizers; null: constant lr.' }),
      loss_balancing: oneOf(['fixed', 'uncertainty', 'gradnorm'], { default: 'fixed', description: 'fixed: tasks[].weight; uncertainty: learned log-variances; gradnorm: learned weights (README.md).' }),
      gradnorm_alpha: num({ min: 0, default: 1.5, description: 'GradNorm\'s asymmetry alpha.' }),
      balancing_lr: nullable(num({ above: 0 }), { default: null, description: 'Learning rate of the gradnorm weights (plain gradient descent); null: train.optimizer.lr.' }),
      early_stopping: nullable(
        obj({
          metric: oneOf(VALIDATION_METRICS, { default: 'auc', description: 'Validation metric watched; its direction comes from the metric registry.' }),
          k: int({ min: 1, description: 'Cutoff for @K metrics (recall, wrecall, ash); required for them, not allowed for the others.' }),
          task: str({ description: 'Task whose validation metric is watched; default the first task. Metrics of the fused ranking (wrecall, ash) have no task.' }),
          patience: int({ min: 1, default: 2 }),
        }),
        { default: null },
      ),
      log_every: int({ min: 1, default: 50, description: 'Steps between progress lines when not on a terminal.' }),
      checkpoint_every: union([nullable(int({ min: 0 })), str()], { default: '10m', description: 'Periodic checkpoint: every N steps, or a duration (`90s`, `10m`, `1h`); null or 0: only on an interrupt.' }),
    }),
    fusion: obj({
      mode: oneOf(FUSION_MODES, { default: 'additive' }),
      weights: record(num(), { default: {}, description: 'Weight per task name; tasks not named get 1.' }),
    }),
    eval: obj({
      metrics: arr(oneOf(METRICS), {
        default: [...METRICS],
        description: '`online` (simulated expected purchases) needs synthetic ground truth and is skipped without it.',
      }),
      ks: union([arr(int({ min: 1 }), { minItems: 1 }), obj({ from: int({ min: 1 }), to: int({ min: 1 }), step: int({ min: 1, default: 1 }) }, { required: ['from', 'to'] })], {
        default: [10, 50],
        description: 'Cutoffs K of the @K metrics: a list, or a range { from, to, step } (every K from `from` to `to`, at most 1000 of them).',
      }),
      gauc_group: oneOf(['request', 'user'], { default: 'request' }),
      label_weights: record(num({ min: 0 }), { default: { purchase: 1 }, description: 'W_i = sum of weight x label, for Weighted Recall@K.' }),
      ash_target: oneOf(['all_purchase', 'all_click'], { default: 'all_purchase' }),
      batch_size: int({ min: 1, default: 8192 }),
    }),
    runtime: obj({
      backend: oneOf(BACKEND_CHOICES, { default: 'auto' }),
      threads: nullable(int({ min: 1 }), { default: null }),
      seed: int({ min: 0, default: 42 }),
      tensorboard: bool({ default: true, description: 'Write TensorBoard event files into the run folder (tb/); `train --no-tensorboard` turns it off for one run.' }),
    }),
  },
  { required: ['data', 'features', 'tasks'] },
);

// ---- resolved types (after defaults are filled in) ----------------------------------------------

type CheckedConfig = Infer<typeof experimentSchema>;
/** `eval.ks` as written: a list or a range. */
export type KsSpec = CheckedConfig['eval']['ks'];
/**
 * `name` is always set: loadConfig names the experiment after its file when the config does not;
 * `eval.ks` is always a list: loadConfig expands a range (expandKs).
 */
export type ExperimentConfig = Omit<CheckedConfig, 'name' | 'eval'> & { name: string; eval: Omit<CheckedConfig['eval'], 'ks'> & { ks: number[] } };

/** The most Ks a range may give (each K costs a little per request, not a sort). */
export const MAX_KS = 1000;

/** `eval.ks` as a list: a range { from, to, step } becomes from, from + step, ..., up to `to`. An error (why) when the range is empty or too long. */
export function expandKs(ks: KsSpec): { ks: number[] } | { error: string } {
  if (Array.isArray(ks)) return { ks };
  if (ks.from > ks.to) return { error: `the range is empty: from ${ks.from} is above to ${ks.to}` };
  const count = Math.floor((ks.to - ks.from) / ks.step) + 1;
  if (count > MAX_KS) return { error: `the range gives ${count} values of K; at most ${MAX_KS} (raise step)` };
  return { ks: Array.from({ length: count }, (_, i) => ks.from + i * ks.step) };
}
/** An optimizer's settings (the embedding rows' optimizer has no weight decay: embedding_l2 regularises them). */
export type OptimizerConfig = NonNullable<ExperimentConfig['train']['embedding_optimizer']>;
export type EmbeddingOptimizerConfig = OptimizerConfig;
/** train.optimizer: an OptimizerConfig with decoupled weight decay. */
export type DenseOptimizerConfig = ExperimentConfig['train']['optimizer'];
export type LrScheduleConfig = NonNullable<ExperimentConfig['train']['lr_schedule']>;
export type LossConfig = Infer<typeof lossSchema>;
export type FeatureConfig = ExperimentConfig['features'][number];
export type TaskConfig = ExperimentConfig['tasks'][number];
/** A task's label: a label name, or a rank-consistency label derived from a teacher column. */
export type TaskLabel = TaskConfig['label'];
export type RankLabel = Exclude<TaskLabel, string>;

/**
 * The name a task's label goes by in a batch's labels (and as a predictions column): the label's
 * own name, or `top<k>_<teacher>` for a rank-consistency label.
 */
export function labelKey(label: TaskLabel): string {
  return typeof label === 'string' ? label : `top${label.top_k}_${label.from_teacher}`;
}
/** The model section: type, common parameters, and the model's own parameters (checked in models/). */
export type ModelConfig = ExperimentConfig['model'];
export type FusionConfig = ExperimentConfig['fusion'];
export type EarlyStoppingConfig = NonNullable<ExperimentConfig['train']['early_stopping']>;
