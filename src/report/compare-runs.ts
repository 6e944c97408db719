/**
 * Loading runs for `resflow compare`: the command-line paths expanded into run folders, and each
 * run's config, run.json, metrics.json and history.csv read through the runs/ API.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { UsageError } from '../base/errors.js';
import type { MetricRecord } from '../metrics/registry.js';
import { RunFolder } from '../runs/folder.js';
import { readHistory, type HistoryTable } from '../runs/history.js';
import { finiteRecords, readMetrics } from '../runs/metrics-files.js';
import { isRunFolder, type RunInfo } from '../runs/run-info.js';
import { effectiveStatus } from '../runs/status.js';
import { flattenConfig } from './config-diff.js';

export interface ComparedRun {
  /** Absolute path of the run folder. */
  dir: string;
  info: RunInfo;
  /** `experiment/version`. */
  name: string;
  status: string;
  completed: boolean;
  config: Record<string, unknown>;
  /** The config flattened to dotted key paths, values as text. */
  flat: Record<string, string>;
  seed: number | null;
  /** Every metric record of the run (all splits); non-finite values left out. */
  records: MetricRecord[];
  /** history.csv, or null when there is none. */
  history: HistoryTable | null;
  /** Task names in config order. */
  tasks: string[];
}

/**
 * Expands the command-line paths into run folders: a folder with run.json is a run; a folder
 * without one whose subfolders hold runs is an experiment (every run in it, sorted by version).
 * Also returns the experiment folders in order (for the default output folder).
 */
export function resolveRunDirs(paths: readonly string[]): { runs: string[]; experimentDirs: string[] } {
  if (paths.length === 0) throw new UsageError('compare needs at least one run folder or experiment folder');
  const runs: string[] = [];
  const experimentDirs: string[] = [];
  for (const p of paths) {
    const abs = path.resolve(p);
    if (!existsSync(abs) || !statSync(abs).isDirectory()) {
      throw new UsageError(`${p}: no such folder (expected a run folder or an experiment folder of runs)`);
    }
    if (isRunFolder(abs)) {
      runs.push(abs);
      experimentDirs.push(path.dirname(abs));
      continue;
    }
    const subs = readdirSync(abs, { withFileTypes: true })
      .filter((d) => d.isDirectory() && isRunFolder(path.join(abs, d.name)))
      .map((d) => d.name)
      .sort();
    if (subs.length === 0) {
      throw new UsageError(`${p}: neither a run folder (no run.json) nor an experiment folder (no run folders in it)`);
    }
    runs.push(...subs.map((s) => path.join(abs, s)));
    experimentDirs.push(abs);
  }
  return { runs: [...new Set(runs)], experimentDirs: [...new Set(experimentDirs)] };
}

export function loadRun(dir: string): ComparedRun {
  const run = RunFolder.open(dir);
  // read as a plain mapping: configs of older runs may lack keys that the current schema has
  const config = run.configDocument();
  const flat = flattenConfig(config);
  const runtime = config['runtime'] as { seed?: unknown } | undefined;
  const seed = typeof runtime?.seed === 'number' ? runtime.seed : typeof run.info.seed === 'number' ? run.info.seed : null;
  const tasks = Array.isArray(config['tasks'])
    ? (config['tasks'] as { name?: unknown }[]).map((t) => t?.name).filter((n): n is string => typeof n === 'string')
    : [];
  const status = effectiveStatus(run.info); // `stale`: recorded as running, its process gone
  return {
    dir: run.dir,
    info: run.info,
    name: `${run.info.experiment}/${run.info.version}`,
    status,
    completed: status === 'completed',
    config,
    flat,
    seed,
    records: finiteRecords(readMetrics(run.dir)),
    history: readHistory(run.dir),
    tasks,
  };
}
