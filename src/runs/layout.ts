/**
 * The names of everything in a run folder, runs/<experiment>/<version>/ (the contract is described
 * in README.md beside this file). Code that touches a run's files takes the names from here.
 */
import path from 'node:path';

/** Files and folders of a run, relative to the run folder. */
export const RUN_FILES = {
  /** The resolved config (defaults filled in), as YAML. */
  config: 'config.yaml',
  /** Status, seed, backend, versions, timings and progress (RunInfo). */
  info: 'run.json',
  /** One row per finished epoch: training losses and validation metrics. */
  history: 'history.csv',
  /** Flat metric records of every evaluated split. */
  metricsJson: 'metrics.json',
  /** The same records as CSV and as Markdown tables, for people. */
  metricsCsv: 'metrics.csv',
  metricsMd: 'metrics.md',
  /** `resflow eval --fusion-grid`: one row per fusion setting. */
  fusionGrid: 'fusion-grid.csv',
  /** The trained model (the best or latest finished epoch). */
  model: 'model',
  /** Mid-training checkpoint: a model folder with optimizer state, plus state.json. */
  checkpoint: 'checkpoint',
  /** `resflow export` without --out: the exported model and its companions (docs/serving.md). */
  export: 'export',
  /** TensorBoard event files (tensorboard.ts), one per training process; `tensorboard --logdir runs/`. */
  tensorboard: 'tb',
} as const;

export type RunFileName = keyof typeof RUN_FILES;

/** The trainer's position and history inside checkpoint/. */
export const CHECKPOINT_STATE = 'state.json';

/** Files of a model folder (model/ and checkpoint/). */
export const MODEL_FILES = {
  manifest: 'model.json',
  weights: 'weights.bin',
  embeddings: 'embeddings.bin',
  optimizer: 'optimizer.bin',
} as const;

/** Absolute path of one of a run's files or folders. */
export function runPath(runDir: string, name: RunFileName): string {
  return path.join(runDir, RUN_FILES[name]);
}

/** The checkpoint's state.json of a run. */
export function checkpointStatePath(runDir: string): string {
  return path.join(runPath(runDir, 'checkpoint'), CHECKPOINT_STATE);
}

/**
 * A file or folder is written under `<name>.tmp-<pid>` and renamed into place; a folder being
 * replaced is first renamed to `<name>.old-<pid>`. The pid keeps two processes writing into one run
 * from sharing a temporary name.
 */
export function tempName(target: string): string {
  return `${target}.tmp-${process.pid}`;
}

export function oldName(target: string): string {
  return `${target}.old-${process.pid}`;
}

/** A name written by tempName or oldName, split into the target's name, the kind and the writer's pid; null for other names. */
export function parseLeftover(name: string): { target: string; kind: 'tmp' | 'old'; pid: number } | null {
  const m = /^(.+)\.(tmp|old)-(\d+)$/.exec(name);
  return m ? { target: m[1]!, kind: m[2] as 'tmp' | 'old', pid: Number(m[3]) } : null;
}
