/** config.yaml: the resolved config a run was trained with, written once when the run is made. */
import { existsSync, readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import type { ExperimentConfig } from '../config/experiment.js';
import { loadConfig } from '../config/load.js';
import { DataError } from '../base/errors.js';
import { writeAtomic } from './atomic.js';
import { isRecord } from './json-file.js';
import { RUN_FILES, runPath } from './layout.js';
import { recordTopFile, verifyTopFile } from './integrity.js';

export function writeRunConfig(runDir: string, config: ExperimentConfig, title: string): void {
  const text = `# Resolved config of run ${title} (defaults filled in).\n${stringify(config)}`;
  writeAtomic(runPath(runDir, 'config'), text);
  recordTopFile(runDir, RUN_FILES.config, text);
}

/** Loads and checks a config file (config/load's loadConfig, or an upper layer's loader that adds checks). */
export type ConfigLoader = (file: string) => ExperimentConfig;

const loadChecked: ConfigLoader = (file) => loadConfig(file).config;

/**
 * Reads the run's config copy, checked exactly like a user's config (unknown keys with
 * did-you-mean, types, cross-checks), then against its size and SHA-256 in run.json's `files`: the
 * copy may have been edited since the run was made, and a model is only loaded with the config it
 * was trained with. Errors name the run's config.yaml.
 */
export function readRunConfig(runDir: string, load: ConfigLoader = loadChecked): ExperimentConfig {
  const file = runPath(runDir, 'config');
  if (!existsSync(file)) throw new DataError(`${file}: missing (a run folder has its config.yaml)`);
  // Checked as a config first (its errors say what is wrong), then against run.json's record: an
  // edit that still reads as a valid config would otherwise load the model with another one.
  const config = load(file);
  verifyTopFile(runDir, RUN_FILES.config);
  return config;
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
