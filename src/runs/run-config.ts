/** config.yaml: the resolved config a run was trained with, written once when the run is made. */
import { existsSync, readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import type { ExperimentConfig } from '../config/experiment.js';
import { DataError } from '../base/errors.js';
import { writeAtomic } from './atomic.js';
import { isRecord } from './json-file.js';
import { runPath } from './layout.js';

export function writeRunConfig(runDir: string, config: ExperimentConfig, title: string): void {
  writeAtomic(runPath(runDir, 'config'), `# Resolved config of run ${title} (defaults filled in).\n${stringify(config)}`);
}

/**
 * Reads the run's config copy. It was resolved and checked when the run was made, so only its shape
 * is checked here: a mapping with a name; the rest is trusted as the config the run trained with.
 */
export function readRunConfig(runDir: string): ExperimentConfig {
  const file = runPath(runDir, 'config');
  if (!existsSync(file)) throw new DataError(`${runDir}: run folder has no config.yaml`);
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new DataError(`${file}: not valid YAML (${(err as Error).message.split('\n')[0]})`);
  }
  if (!isRecord(doc) || typeof doc['name'] !== 'string') throw new DataError(`${file}: expected the resolved config, a mapping with a name`);
  return doc as unknown as ExperimentConfig;
}
