/** config.yaml: the resolved config a run was trained with, written once when the run is made. */
import { existsSync, readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import type { ExperimentConfig } from '../config/experiment.js';
import { loadConfig } from '../config/load.js';
import { DataError } from '../base/errors.js';
import { writeAtomic } from './atomic.js';
import { isRecord } from './json-file.js';
import { runPath } from './layout.js';

export function writeRunConfig(runDir: string, config: ExperimentConfig, title: string): void {
  writeAtomic(runPath(runDir, 'config'), `# Resolved config of run ${title} (defaults filled in).\n${stringify(config)}`);
}

/** Loads and checks a config file (config/load's loadConfig, or an upper layer's loader that adds checks). */
export type ConfigLoader = (file: string) => ExperimentConfig;

const loadChecked: ConfigLoader = (file) => loadConfig(file).config;

/**
 * Reads the run's config copy, checked exactly like a user's config (unknown keys with
 * did-you-mean, types, cross-checks): the copy may have been edited since the run was made, and a
 * model is only loaded with the config it was trained with. Errors name the run's config.yaml.
 */
export function readRunConfig(runDir: string, load: ConfigLoader = loadChecked): ExperimentConfig {
  const file = runPath(runDir, 'config');
  if (!existsSync(file)) throw new DataError(`${file}: missing (a run folder has its config.yaml)`);
  return load(file);
}

/**
 * The run's config copy as a plain mapping, unchecked but for being one: for showing runs side by
 * side (`resflow compare`), where configs of older runs may lack or have keys the schema has not.
 */
export function readRunConfigDocument(runDir: string): Record<string, unknown> {
  const file = runPath(runDir, 'config');
  if (!existsSync(file)) throw new DataError(`${file}: missing (a run folder has its config.yaml)`);
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (!isRecord(doc) || typeof doc['name'] !== 'string') throw new DataError(`${file}: expected the resolved config, a mapping with a name`);
  return doc;
}
