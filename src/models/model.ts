/**
 * What a model is to the rest of the code: a multi-task forward pass over the concatenated field
 * embeddings, and a descriptor (name, parameter schema, builder) that the registry lists.
 */
import type * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../base/errors.js';
import { COMMON_MODEL_FIELDS, modelSectionSchema, type ModelConfig } from '../config/experiment.js';
import { check, formatPath, obj, type Fields, type Infer, type ObjectSchema, type Path, type SchemaIssue } from '../config/schema.js';
import type { ForwardContext, ParamStore, StateUpdate } from './layers.js';
import type { DenseProgram } from './dense-program.js';

export interface ForwardResult {
  /** One logit tensor [batch] per task, in config order; p_k = sigmoid(z_k). */
  logits: tf.Tensor1D[];
  /** Each task's own logit before any residual from earlier tasks (for inspection and tests). */
  own: tf.Tensor1D[];
  updates: StateUpdate[];
  /**
   * An extra training loss the model defines on its own outputs, already weighted (e.g. AITM's
   * calibration term), returned only when `ctx.training`. The trainer adds it to the total loss.
   */
  extraLoss?: tf.Scalar;
  /** Named intermediate tensors for inspection and tests (gate weights [B, experts], attention weights). */
  aux?: Record<string, tf.Tensor>;
}

export interface MultiTaskModel {
  readonly type: string;
  forward(x: tf.Tensor2D, ctx: ForwardContext): ForwardResult;
  /**
   * The scoring pass (`forward` with training false) as a dense program (dense-program.ts), for models
   * that are only dense layers and residual adds; absent or null otherwise.
   */
  scoringProgram?: DenseProgram | null;
  /**
   * The training pass (`forward` with training true) as a dense program, for models whose training
   * pass is their scoring pass (no dropout, no batch statistics); absent or null otherwise. The
   * trainer then runs it as one op (dense-program-train.ts), with the same results.
   */
  trainingProgram?: DenseProgram | null;
}

/** One feature's columns in the model input x [batch, inputDim]: pooled embeddings in plan order, then numerics. */
export interface InputField {
  name: string;
  offset: number;
  width: number;
}
/** Where each feature sits in the model input (models that read features apart: two_tower, cold). */
export type InputLayout = readonly InputField[];

/**
 * Builds a model from the config's model section (its parameters are checked first). `layout` names
 * the input's columns; models that treat every column alike ignore it.
 */
export type ModelBuilder = (cfg: ModelConfig, inputDim: number, tasks: string[], params: ParamStore, layout?: InputLayout) => MultiTaskModel;

/** The parameters every model shares, as its builder receives them. */
export type CommonModelParams = Infer<ObjectSchema<typeof COMMON_MODEL_FIELDS>>;

/** The schema of a model's parameters: the common ones, then `own`. */
export function modelParams<F extends Fields>(own: F, description: string): ObjectSchema<typeof COMMON_MODEL_FIELDS & F> & { description: string } {
  return obj({ ...COMMON_MODEL_FIELDS, ...own }, { description });
}

export interface ModelDescriptor {
  readonly name: string;
  /** Every parameter `model:` may hold besides `type` (common ones first), for validation and the JSON Schema. */
  readonly schema: ObjectSchema;
  /** Checks the parameters of `model` (a section of this type), adding issues under `path`; returns it with defaults filled in. */
  resolve(model: ModelConfig, path: Path, issues: SchemaIssue[]): ModelConfig;
  /** Builds the model; a ConfigError names the first bad parameter. */
  build: ModelBuilder;
  /**
   * The features the model reads, a subset of the config's (null: all of them). Only these are
   * embedded, read and exported (cold.ts: a feature budget).
   */
  inputs(model: ModelConfig): readonly string[] | null;
  /** Checks the feature names the parameters refer to against the config's features, adding issues under `path`. */
  checkFeatures(model: ModelConfig, features: readonly string[], path: Path, issues: SchemaIssue[]): void;
}

/**
 * A descriptor from a parameter schema (see modelParams) and a builder whose parameters are typed by
 * it. The builder may also be handed a section that was never resolved (a config loaded without the
 * model step): its parameters are checked and defaulted here, so every path builds the same model.
 */
export function defineModel<S extends ObjectSchema>(spec: {
  name: string;
  schema: S;
  build: (p: Infer<S>, inputDim: number, tasks: string[], params: ParamStore, layout?: InputLayout) => MultiTaskModel;
  /** The features the model reads (default: all). */
  inputs?: (p: Infer<S>) => readonly string[] | null;
  /** Feature names in the parameters checked against the config's features (default: none to check). */
  checkFeatures?: (p: Infer<S>, features: readonly string[], path: Path, issues: SchemaIssue[]) => void;
}): ModelDescriptor {
  const parse = (model: ModelConfig, path: Path, issues: SchemaIssue[]): Infer<S> => {
    const { type: _type, ...rest } = model;
    return check(spec.schema, rest, path, issues);
  };
  /** The parameters of a section that may never have been resolved; a ConfigError names the first bad one. */
  const parsed = (model: ModelConfig): Infer<S> => {
    const issues: SchemaIssue[] = [];
    const p = parse(model, ['model'], issues);
    if (issues.length > 0) throw new ConfigError(issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('\n'));
    return p;
  };
  return {
    name: spec.name,
    schema: spec.schema,
    resolve(model, path, issues) {
      const params: unknown = parse(model, path, issues);
      // Re-read through the section schema (already checked, so it adds nothing) to type the result.
      return check(modelSectionSchema, Object.assign({ type: model.type }, params), path, []);
    },
    build(model, inputDim, tasks, params, layout) {
      return spec.build(parsed(model), inputDim, tasks, params, layout);
    },
    inputs(model) {
      return spec.inputs ? spec.inputs(parsed(model)) : null;
    },
    checkFeatures(model, features, path, issues) {
      const own: SchemaIssue[] = [];
      const p = parse(model, path, own);
      if (own.length === 0) spec.checkFeatures?.(p, features, path, issues);
    },
  };
}
