/**
 * The sweep spec (README.md, "Sweeps"): base configs (one group each), a search space over config
 * paths, seeds, the selection rule, an optional final stage, per-trial resources, retries and
 * parallelism. Pure schema and reading here (the types come from the schema, as for experiment
 * configs); expanding the space into trial configs needs the model layer and lives in app/sweep/.
 */
import path from 'node:path';
import { ConfigError } from '../base/errors.js';
import { locate, readLayer, type Layer } from './load.js';
import { METRICS, METRIC_DECLARATIONS } from './metrics.js';
import { arr, bool, check, formatPath, int, nullable, num, obj, oneOf, record, str, suggest, union, type Infer, type Path, type Schema, type SchemaIssue } from './schema.js';

const scalar = union([num(), str(), bool()]);
/** A value a space path may take: a scalar, a list of scalars (e.g. `model.hidden`), or null. */
const spaceValue = nullable(union([scalar, arr(scalar)]));

/** One path of the search space: exactly one of these keys (spaceEntryKind). */
const spaceEntry = obj({
  grid: arr(spaceValue, { minItems: 1, description: 'Every value, crossed with the other grid paths.' }),
  choice: arr(spaceValue, { minItems: 1, description: 'Random: one of these values per draw.' }),
  uniform: arr(num(), { minItems: 2, description: 'Random: [low, high], uniform.' }),
  loguniform: arr(num({ above: 0 }), { minItems: 2, description: 'Random: [low, high], uniform in log space (learning rates).' }),
  int: arr(int(), { minItems: 2, description: 'Random: [low, high], an integer, both ends included.' }),
});
export const SPACE_KINDS = ['grid', 'choice', 'uniform', 'loguniform', 'int'] as const;
export type SpaceKind = (typeof SPACE_KINDS)[number];

export const sweepSchema = obj(
  {
    name: str({ description: 'Sweep name: the sweep folder is runs/<name>/. Defaults to the spec file name.' }),
    description: str(),
    configs: union([str(), arr(str(), { minItems: 1 })], { description: 'Base experiment configs (relative to this file), one group of the sweep each.' }),
    set: record(spaceValue, { default: {}, description: 'Fixed overrides for every trial (config path to value, as --set), e.g. train.epochs: 1.' }),
    space: record(spaceEntry, { description: 'Config path (as for --set, e.g. train.optimizer.lr) to `grid`, `choice`, `uniform`, `loguniform` or `int`.' }),
    random: obj({
      n: int({ min: 1, default: 4, description: 'Random draws per group (when the space has random paths); crossed with the grid.' }),
      seed: int({ min: 0, default: 0 }),
    }),
    seeds: arr(int({ min: 0 }), { minItems: 1, default: [42], description: 'Every trial runs once per seed (runtime.seed).' }),
    select: obj({
      metric: oneOf(METRICS, { default: 'auc', description: 'Metric that picks each group\'s best trial (mean over seeds).' }),
      task: str({ description: 'Task of a per-task metric; default the first task.' }),
      k: int({ min: 1, description: 'Cutoff of an @K metric (required for them).' }),
      variant: oneOf(['macro', 'micro'], { description: 'For metrics reported both ways (wrecall, ash).' }),
      split: oneOf(['validation', 'eval'], { default: 'validation', description: 'Split the selection reads; never the reported (eval) split.' }),
    }),
    final: nullable(obj({ seeds: arr(int({ min: 0 }), { minItems: 1, description: 'Seeds each group\'s best trial is re-run with (added to its search seeds) before the leaderboard.' }) }, { required: ['seeds'] }), { default: null }),
    resources: obj({
      threads: int({ min: 1, description: 'CPU threads per trial (runtime.threads; Slurm --cpus-per-task). Default: the cores shared by the parallel trials.' }),
      memory: union([int({ min: 1 }), str()], { description: 'Memory per trial: MiB, or a size such as 4G or 512M (Slurm --mem).' }),
      time: union([int({ min: 1 }), str()], { description: 'Time limit per trial: minutes, or 90m, 2h, 1:30:00 (Slurm --time).' }),
      partition: str(),
      extra: arr(str(), { default: [], description: 'Extra scheduler flags, passed as given (e.g. --qos=low).' }),
    }),
    retries: int({ min: 0, default: 1, description: 'A failed trial is tried again this many times on later runs of the sweep.' }),
    parallel: int({ min: 1, description: 'Trials at once; default: cores / threads per trial.' }),
  },
  { required: ['configs', 'space'] },
);

export type SweepSpec = Omit<Infer<typeof sweepSchema>, 'name' | 'configs'> & { name: string; configs: string[] };
export type SpaceEntry = Infer<typeof spaceEntry>;

/** A spec as read: the checked spec (config paths absolute) and where each key is, for messages. */
export interface LoadedSweep {
  spec: SweepSpec;
  file: string;
  /** `file:line: key path` of a spec key, for errors found after the schema (expansion, selection). */
  where: (p: Path) => string;
}

/** The kind of a space entry (its one key), or an issue when it has none or several. */
export function spaceEntryKind(entry: SpaceEntry): SpaceKind | string {
  const kinds = SPACE_KINDS.filter((k) => entry[k] !== undefined);
  if (kinds.length === 1) return kinds[0]!;
  return kinds.length === 0 ? `expected one of ${SPACE_KINDS.map((k) => `\`${k}\``).join(', ')}` : `expected one of ${kinds.map((k) => `\`${k}\``).join(', ')}, not several`;
}

/** Reads and checks a sweep spec: schema, one kind per space path, ranges, selection metric's K. ConfigError (exit 2) naming file, line and key. */
export function loadSweepSpec(file: string): LoadedSweep {
  const abs = path.resolve(file);
  const layer = readLayer(abs, 'a sweep spec (name, configs, space, seeds, select, ...)');
  const layers: Layer[] = [layer];
  const where = (p: Path) => `${locate(layers, p)}: ${formatPath(p)}`;
  const issues: SchemaIssue[] = [];
  const checked = check(sweepSchema, layer.value, [], issues);
  if (issues.length === 0) semanticChecks(checked, issues);
  if (issues.length > 0) {
    const lines = issues.map((i) => `${where(i.path)}: ${i.message}`);
    throw new ConfigError(lines.length === 1 ? lines[0]! : `${lines.length} problems in the sweep spec:\n  ${lines.join('\n  ')}`);
  }
  const configs = (typeof checked.configs === 'string' ? [checked.configs] : checked.configs).map((c) => path.resolve(path.dirname(abs), c));
  const name = checked.name ?? path.basename(abs).replace(/\.(ya?ml)$/i, '');
  return { spec: { ...checked, name, configs }, file: abs, where };
}

function semanticChecks(s: Infer<typeof sweepSchema>, issues: SchemaIssue[]): void {
  const add = (p: Path, message: string) => issues.push({ path: p, message });
  const paths = Object.keys(s.space);
  if (paths.length === 0) add(['space'], 'the search space is empty: name at least one config path, e.g. `train.optimizer.lr: { grid: [0.001, 0.003] }`');
  for (const p of paths) {
    const entry = s.space[p]!;
    const kind = spaceEntryKind(entry);
    if (!(SPACE_KINDS as readonly string[]).includes(kind)) {
      add(['space', p], kind);
      continue;
    }
    const range = entry[kind as SpaceKind] as unknown[];
    if ((kind === 'uniform' || kind === 'loguniform' || kind === 'int') && (range.length !== 2 || (range[0] as number) > (range[1] as number))) {
      add(['space', p, kind], `expected [low, high] with low <= high, found ${JSON.stringify(range)}`);
    }
  }
  for (const section of ['set', 'space'] as const) {
    for (const p of Object.keys(s[section])) {
      if (p === 'runtime.seed') add([section, p], "seeds are set by the sweep's `seeds`");
      if (p === 'name') add([section, p], 'the experiment name is set by the sweep');
      if (section === 'set' && p in s.space) add([section, p], 'this path is also in the space; keep it in one place');
    }
  }
  const r = s.resources;
  if (r.memory !== undefined && typeof memoryMb(r.memory) === 'string') add(['resources', 'memory'], memoryMb(r.memory) as string);
  if (r.time !== undefined && typeof timeMinutes(r.time) === 'string') add(['resources', 'time'], timeMinutes(r.time) as string);
  if (s.select.split === 'eval') add(['select', 'split'], 'the leaderboard reports the eval split: select on `validation` so the reported numbers are not the ones that chose the trial');
  const decl = METRIC_DECLARATIONS[s.select.metric];
  if (decl.hasK && s.select.k === undefined) add(['select', 'k'], `\`${s.select.metric}\` is reported per K: set select.k`);
  if (!decl.hasK && s.select.k !== undefined) add(['select', 'k'], `\`${s.select.metric}\` takes no k`);
  if (!decl.perTask && s.select.task !== undefined) add(['select', 'task'], `\`${s.select.metric}\` is a metric of the fused ranking and has no task; drop the task`);
}

/**
 * Whether a `--set`-style path (`a.b[0].c`) names a key of `schema`; returns null when it does, else
 * a message with a did-you-mean hint. Tagged sections (the model) accept a key of any variant; the
 * value check through the experiment loader then judges it against the group's model type.
 */
export function schemaPathProblem(schema: Schema, keyPath: Path): string | null {
  let nodes: Schema[] = [schema];
  for (const key of keyPath) {
    const next: Schema[] = [];
    const known: string[] = [];
    const visit = (s: Schema): void => {
      switch (s.kind) {
        case 'nullable':
          return visit(s.inner);
        case 'union':
          return s.options.forEach(visit);
        case 'object':
          known.push(...Object.keys(s.fields));
          if (typeof key === 'string' && key in s.fields) next.push(s.fields[key]!);
          return;
        case 'tagged':
          known.push(s.tag);
          if (key === s.tag) next.push(str());
          for (const v of Object.values(s.variants)) visit(v);
          return;
        case 'record':
          if (typeof key === 'string') next.push(s.values);
          return;
        case 'array':
          if (typeof key === 'number') next.push(s.items);
          return;
        default:
          return;
      }
    };
    nodes.forEach(visit);
    if (next.length === 0) {
      const hint = typeof key === 'string' ? suggest(key, [...new Set(known)]) : undefined;
      return `\`${formatPath(keyPath)}\` is not a key of the experiment config (no \`${key}\` there${hint ? `; did you mean \`${hint}\`?` : ''})`;
    }
    nodes = next;
  }
  return null;
}

/** Memory as MiB (`4G`, `512M`, `2048`), or a message. */
export function memoryMb(v: number | string): number | string {
  if (typeof v === 'number') return v;
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT]?)i?B?$/i.exec(v.trim());
  if (!m) return `expected MiB or a size such as 4G or 512M, found ${JSON.stringify(v)}`;
  const f = { '': 1, K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 }[m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'];
  return Math.ceil(Number(m[1]) * f);
}

/** A time limit as minutes (`90`, `90m`, `2h`, `45s`, `1:30:00`, `1-00:00:00`), or a message. */
export function timeMinutes(v: number | string): number | string {
  if (typeof v === 'number') return v;
  const t = v.trim();
  const unit = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(t);
  if (unit) return Math.ceil(Number(unit[1]) * { s: 1 / 60, m: 1, h: 60, d: 1440 }[unit[2] as 's' | 'm' | 'h' | 'd']);
  const clock = /^(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)$/.exec(t);
  if (clock) return Number(clock[1] ?? 0) * 1440 + Number(clock[2] ?? 0) * 60 + Number(clock[3]) + Math.ceil(Number(clock[4]) / 60);
  return `expected minutes or a duration such as 90m, 2h or 1:30:00, found ${JSON.stringify(v)}`;
}
