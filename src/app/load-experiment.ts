/**
 * Loading an experiment for a use case: the config layer's loading (files, extends, --set, schema,
 * cross-checks) plus the model step, which checks the model's own parameters against its
 * descriptor. The two are joined here because config sits below models in the layering.
 */
import { loadConfig, type LoadedConfig, type LoadOptions } from '../config/load.js';
import { experimentSchema } from '../config/experiment.js';
import { obj } from '../config/schema.js';
import { toJsonSchema } from '../config/json-schema.js';
import { modelsSchema, resolveModelConfig } from '../models/registry.js';

/** loadConfig, with the model section's parameters checked and defaulted (same error style: file, line, key, did-you-mean). */
export function loadExperiment(file: string, opts: Omit<LoadOptions, 'refine'> = {}): LoadedConfig {
  return loadConfig(file, {
    ...opts,
    refine: (config, issues) => ({ ...config, model: resolveModelConfig(config.model, issues, ['model'], config.features.map((f) => f.name)) }),
  });
}

/** The JSON Schema of experiment configs, with each model type's parameters under `model`. */
export function configJsonSchema(): Record<string, unknown> {
  const withModels = obj({ ...experimentSchema.fields, model: modelsSchema() }, { required: experimentSchema.required });
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://github.com/resflow/resflow/schema/config.schema.json',
    title: 'resflow experiment config',
    ...toJsonSchema(withModels),
  };
}
