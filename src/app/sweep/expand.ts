/**
 * Expanding a sweep spec into its child runs (README.md, "Sweeps"): every group (base config) ×
 * every point of the space (grid values crossed, then `random.n` seeded draws) × every seed, each
 * checked through the experiment loader with `--set`-style overrides before anything runs. A child
 * is named by a hash of its resolved config, so expanding the same spec again gives the same names.
 * The final stage (each group's best trial over `final.seeds`) is appended once it is chosen.
 */
import { createHash } from 'node:crypto';
import path from 'node:path';
import { ConfigError } from '../../base/errors.js';
import { Rng } from '../../base/rng.js';
import { experimentSchema, type ExperimentConfig } from '../../config/experiment.js';
import { parseOverride } from '../../config/load.js';
import { obj } from '../../config/schema.js';
import { schemaPathProblem, spaceEntryKind, type LoadedSweep, type SpaceEntry, type SpaceKind } from '../../config/sweep.js';
import { modelsSchema } from '../../models/registry.js';
import { loadExperiment } from '../load-experiment.js';

export type Params = Record<string, unknown>;

/** One child run of the sweep: a trial (group and parameters) with one seed. */
export interface Child {
  /** Position in the sweep's list: the index `run-trial --index` takes. */
  index: number;
  /** Trial number (group × point of the space), shared by its seeds. */
  trial: number;
  group: string;
  params: Params;
  seed: number;
  stage: 'search' | 'final';
  /** Folder name inside the sweep folder: `<group>-s<seed>-<hash of the resolved config>`. */
  name: string;
  config: ExperimentConfig;
}

export interface Group {
  name: string;
  file: string;
}

/** The best trial of each group, fixed when the search stage ends (final.json). */
export type FinalChoice = { group: string; trial: number }[];

export interface Expansion {
  groups: Group[];
  /** Every child, search stage first; indices are positions in this list. */
  children: Child[];
  /** Trials of the search stage: number, group, parameters. */
  trials: { trial: number; group: string; params: Params }[];
}

/** Group names from the config file names (`mmoe.yaml` → mmoe), made unique. */
export function groupsOf(configs: readonly string[]): Group[] {
  const seen = new Map<string, number>();
  return configs.map((file) => {
    const base = path.basename(file).replace(/\.(ya?ml)$/i, '');
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return { name: n === 1 ? base : `${base}-${n}`, file };
  });
}

/** The points of the space: every grid combination, crossed with `random.n` seeded draws of the random paths. */
export function spacePoints(sweep: LoadedSweep): Params[] {
  const { space, random } = sweep.spec;
  const paths = Object.keys(space);
  const gridPaths = paths.filter((p) => spaceEntryKind(space[p]!) === 'grid');
  const randomPaths = paths.filter((p) => spaceEntryKind(space[p]!) !== 'grid');
  let points: Params[] = [{}];
  for (const p of gridPaths) points = points.flatMap((pt) => space[p]!.grid!.map((v) => ({ ...pt, [p]: v })));
  if (randomPaths.length === 0) return points;
  const rng = new Rng(random.seed);
  const draws: Params[] = [];
  for (let i = 0; i < random.n; i++) draws.push(Object.fromEntries(randomPaths.map((p) => [p, draw(space[p]!, rng)])));
  return points.flatMap((pt) => draws.map((d) => ({ ...pt, ...d })));
}

function draw(entry: SpaceEntry, rng: Rng): unknown {
  const kind = spaceEntryKind(entry) as SpaceKind;
  const u = rng.next();
  switch (kind) {
    case 'choice':
      return entry.choice![Math.min(entry.choice!.length - 1, Math.floor(u * entry.choice!.length))];
    case 'uniform': {
      const [lo, hi] = entry.uniform as [number, number];
      return lo + u * (hi - lo);
    }
    case 'loguniform': {
      const [lo, hi] = entry.loguniform as [number, number];
      return Math.exp(Math.log(lo) + u * (Math.log(hi) - Math.log(lo)));
    }
    case 'int': {
      const [lo, hi] = entry.int as [number, number];
      return Math.min(hi, lo + Math.floor(u * (hi - lo + 1)));
    }
    default:
      throw new Error(`not a random space entry: ${kind}`);
  }
}

/** `path=value` overrides (values as YAML flow text, read back by the config loader exactly). */
function overrides(fixed: Params, params: Params, seed: number, sweepName: string): string[] {
  return [...Object.entries({ ...fixed, ...params }).map(([p, v]) => `${p}=${JSON.stringify(v)}`), `runtime.seed=${seed}`, `name=${JSON.stringify(sweepName)}`];
}

/** The child's folder name: group, seed and a hash of the resolved config (threads left out: they do not change results). */
export function childName(group: string, seed: number, config: ExperimentConfig): string {
  const hashed = { ...config, runtime: { ...config.runtime, threads: null } };
  return `${group}-s${seed}-${createHash('sha256').update(JSON.stringify(hashed)).digest('hex').slice(0, 8)}`;
}

/** Checks that every space path is a key of the experiment config (with every model type's parameters). */
function checkSpacePaths(sweep: LoadedSweep): void {
  const schema = obj({ ...experimentSchema.fields, model: modelsSchema() });
  for (const section of ['set', 'space'] as const) {
    for (const p of Object.keys(sweep.spec[section])) {
      let keyPath;
      try {
        keyPath = parseOverride(`${p}=0`).path;
      } catch {
        throw new ConfigError(`${sweep.where([section, p])}: cannot read the key path \`${p}\` (expected e.g. train.optimizer.lr or tasks[0].weight)`);
      }
      const problem = schemaPathProblem(schema, keyPath);
      if (problem) throw new ConfigError(`${sweep.where([section, p])}: ${problem}`);
    }
  }
}

/** Loads a group's config with overrides; a ConfigError names the spec key it came from. */
function loadWith(sweep: LoadedSweep, group: Group, sets: string[], key: (string | number)[], what: string): ExperimentConfig {
  try {
    return loadExperiment(group.file, { overrides: sets }).config;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigError(`${sweep.where(key)}: ${what} is not a valid config for group \`${group.name}\` (${path.basename(group.file)}): ${err.message.replace(/^--set: /, '')}`);
  }
}

/**
 * Expands the spec into its children, checking each space path against the config schema, each
 * value of each path on its own, then each trial's whole config; ConfigError (exit 2) naming the
 * spec key before anything runs.
 */
export function expandSweep(sweep: LoadedSweep, final?: FinalChoice): Expansion {
  const { spec } = sweep;
  checkSpacePaths(sweep);
  const groups = groupsOf(spec.configs);
  const points = spacePoints(sweep);
  // each value on its own first, so an error names the one key (and value) at fault
  for (const g of groups) {
    const base = loadWith(sweep, g, [], ['configs'], `the base config`);
    checkSelection(sweep, g, base);
    for (const [p, v] of Object.entries(spec.set)) loadWith(sweep, g, overrides({ [p]: v }, {}, spec.seeds[0]!, spec.name), ['set', p], `value ${JSON.stringify(v)}`);
    for (const [p, entry] of Object.entries(spec.space)) {
      const kind = spaceEntryKind(entry) as SpaceKind;
      const values = kind === 'grid' || kind === 'choice' ? (entry[kind] as unknown[]) : (entry[kind] as number[]);
      for (const v of values) loadWith(sweep, g, overrides(spec.set, { [p]: v }, spec.seeds[0]!, spec.name), ['space', p], `value ${JSON.stringify(v)}`);
    }
  }
  const children: Child[] = [];
  const trials: Expansion['trials'] = [];
  const configs = new Map<string, ExperimentConfig>();
  const add = (trial: number, group: Group, params: Params, seed: number, stage: Child['stage']) => {
    const key = `${trial}/${seed}`;
    let config = configs.get(key);
    if (!config) {
      const keys = Object.keys(params).join(', ');
      config = loadWith(sweep, group, overrides(spec.set, params, seed, spec.name), ['space'], `trial ${trial} (${keys || 'no parameters'}, seed ${seed})`);
      configs.set(key, config);
    }
    children.push({ index: children.length, trial, group: group.name, params, seed, stage, name: childName(group.name, seed, config), config });
  };
  for (const g of groups) {
    for (const params of points) {
      const trial = trials.length;
      trials.push({ trial, group: g.name, params });
      for (const seed of spec.seeds) add(trial, g, params, seed, 'search');
    }
  }
  if (final && spec.final) {
    for (const { group, trial } of final) {
      const t = trials[trial];
      const g = groups.find((x) => x.name === group);
      if (!t || !g || t.group !== group) continue; // the spec changed since: final.json is chosen again
      for (const seed of spec.final.seeds) if (!spec.seeds.includes(seed)) add(trial, g, t.params, seed, 'final');
    }
  }
  return { groups, children, trials };
}

/** The selection rule must fit every group: its task exists, and the split it reads is configured. */
function checkSelection(sweep: LoadedSweep, g: Group, config: ExperimentConfig): void {
  const { select } = sweep.spec;
  const tasks = config.tasks.map((t) => t.name);
  if (select.task !== undefined && !tasks.includes(select.task)) {
    throw new ConfigError(`${sweep.where(['select', 'task'])}: group \`${g.name}\` has no task \`${select.task}\` (tasks: ${tasks.join(', ')})`);
  }
  if (select.split === 'validation' && !config.data.validation) {
    throw new ConfigError(`${sweep.where(['select', 'split'])}: group \`${g.name}\` (${g.file}) has no data.validation to select on`);
  }
  if (select.k !== undefined && !config.eval.ks.includes(select.k)) {
    throw new ConfigError(`${sweep.where(['select', 'k'])}: group \`${g.name}\` reports K in ${config.eval.ks.join(', ')} only (eval.ks)`);
  }
  if (!config.eval.metrics.includes(select.metric)) {
    throw new ConfigError(`${sweep.where(['select', 'metric'])}: group \`${g.name}\` does not compute \`${select.metric}\` (eval.metrics)`);
  }
}

/** The task a selection reads (select.task, else the first task of the config), or undefined for fused metrics. */
export function selectionTask(sweep: LoadedSweep, config: ExperimentConfig, perTask: boolean): string | undefined {
  return perTask ? (sweep.spec.select.task ?? config.tasks[0]!.name) : undefined;
}
