/**
 * The model registry: the list of model descriptors (one per model file: resflow.ts,
 * shared-bottom.ts, omoe.ts, mmoe.ts, ple.ts, esmm.ts, aitm.ts, two-tower.ts, cold.ts; each gives its name, parameter
 * schema and builder). A new model is a new file with a descriptor, added to MODELS.
 *
 * The config layer checks the model section's type and common parameters only; resolveModelConfig
 * is the second step that checks the model's own parameters against its descriptor.
 */
import { DEFAULT_MODEL_TYPE, type ModelConfig } from '../config/experiment.js';
import { tagged, unknownTagMessage, type Path, type SchemaIssue, type TaggedSchema } from '../config/schema.js';
import type { ModelBuilder, ModelDescriptor } from './model.js';
import { resflow } from './resflow.js';
import { sharedBottom } from './shared-bottom.js';
import { omoe } from './omoe.js';
import { mmoe } from './mmoe.js';
import { ple } from './ple.js';
import { esmm } from './esmm.js';
import { aitm } from './aitm.js';
import { twoTower } from './two-tower.js';
import { cold } from './cold.js';

export type { ForwardResult, InputField, InputLayout, ModelBuilder, ModelDescriptor, MultiTaskModel } from './model.js';

/** Every model, in the order the JSON Schema and error messages list them. */
export const MODELS: readonly ModelDescriptor[] = [resflow, sharedBottom, omoe, mmoe, ple, esmm, aitm, twoTower, cold];

export const MODEL_NAMES: readonly string[] = MODELS.map((m) => m.name);

/** Builders by model type (what the model bundle calls). */
export const modelRegistry: Record<string, ModelBuilder> = Object.fromEntries(MODELS.map((m) => [m.name, m.build]));

export function modelDescriptor(type: string): ModelDescriptor | undefined {
  return MODELS.find((m) => m.name === type);
}

/**
 * Second step of loading a config: checks the model section's parameters against its type's
 * schema (unknown keys with did-you-mean, types, ranges) and fills in defaults. Issues go to
 * `issues` with their key path, to be reported with file and line like the schema's. `features`:
 * the config's feature names, which parameters naming features (two_tower's towers, cold's
 * subset) are checked against.
 */
export function resolveModelConfig(model: ModelConfig, issues: SchemaIssue[], path: Path = ['model'], features?: readonly string[]): ModelConfig {
  const descriptor = modelDescriptor(model.type);
  if (!descriptor) {
    issues.push({ path: [...path, 'type'], message: unknownTagMessage(model.type, MODEL_NAMES) });
    return model;
  }
  const before = issues.length;
  const resolved = descriptor.resolve(model, path, issues);
  if (features && issues.length === before) descriptor.checkFeatures(resolved, features, path, issues);
  return resolved;
}

/** The model section as one schema (type tag, each model's parameters), for the JSON Schema. */
export function modelsSchema(): TaggedSchema {
  return tagged('type', Object.fromEntries(MODELS.map((m) => [m.name, m.schema])), { defaultTag: DEFAULT_MODEL_TYPE });
}
