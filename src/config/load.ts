/**
 * Loading an experiment config: YAML parsing with line tracking, `extends:` inheritance,
 * `--set path=value` overrides, schema validation with defaults, and cross-field checks.
 * Every error names the file, the line, the key path, what was expected and what was found.
 */
import path from 'node:path';
import { parseDocument } from 'yaml';
import { ConfigError } from '../base/errors.js';
import { check, formatPath, suggest, type Path, type SchemaIssue } from './schema.js';
import { isForbiddenKey, putOwn } from './keys.js';
import { locate, readLayer, type Layer } from './yaml-layer.js';
import { sizeChecks } from './sizes.js';
import { COMMON_MODEL_KEYS, expandKs, experimentSchema, type ExperimentConfig } from './experiment.js';
import { METRIC_DECLARATIONS, needsLabelWeights, needsRequests, needsUsers, reads } from './metrics.js';

export interface LoadedConfig {
  config: ExperimentConfig;
  /** Absolute path of the top config file. */
  file: string;
  /** Files of the extends chain, top file first. */
  chain: string[];
}

export interface LoadOptions {
  /** `path=value` strings from --set, applied in order after the files. */
  overrides?: string[];
  /**
   * A check of a higher layer run after the schema (app/load-experiment.ts checks the model's own
   * parameters here): it returns the config with its part resolved and adds issues, which are
   * located and reported like the schema's; it replaces the schema's issues about the model section.
   */
  refine?: (config: ExperimentConfig, issues: SchemaIssue[]) => ExperimentConfig;
}

/** Deep merge: mappings merge key by key; lists and scalars from `over` replace those of `base`. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (isObj(base) && isObj(over)) {
    const out: Record<string, unknown> = { ...base };
    // Own keys only, written as own properties: no key reaches a prototype.
    for (const [k, v] of Object.entries(over)) putOwn(out, k, Object.hasOwn(out, k) ? deepMerge(out[k], v) : v);
    return out;
  }
  return over === undefined ? base : over;
}

/**
 * When a layer switches `model.type`, parameters inherited for the old type mean nothing to the new
 * one: only the common keys carry over (so `extends: quickstart.yaml` + `model: {type: mmoe}` works).
 */
function keepCommonModelKeys(model: unknown, newType: unknown): unknown {
  if (!isObj(model) || model.type === newType) return model;
  return Object.fromEntries(Object.entries(model).filter(([k]) => COMMON_MODEL_KEYS.includes(k)));
}

function mergeLayer(base: Record<string, unknown>, layer: Record<string, unknown>): Record<string, unknown> {
  const m = layer.model;
  if (isObj(m) && m.type !== undefined) base = { ...base, model: keepCommonModelKeys(base.model, m.type) };
  return deepMerge(base, layer) as Record<string, unknown>;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses `a.b[0].c=value` (value is read as YAML, so numbers, lists and null work). */
export function parseOverride(spec: string): { path: Path; value: unknown } {
  const eq = spec.indexOf('=');
  if (eq <= 0) throw new ConfigError(`--set ${spec}: expected path=value, e.g. --set train.batch_size=512`);
  const keyText = spec.slice(0, eq).trim();
  const p: Path = [];
  for (const part of keyText.split('.')) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) throw new ConfigError(`--set ${spec}: cannot read the key path \`${keyText}\``);
    if (isForbiddenKey(m[1]!)) throw new ConfigError(`--set ${spec}: the key \`${m[1]}\` is not allowed (it names an object's prototype, not a setting)`);
    p.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) p.push(Number(idx[1]));
  }
  const doc = parseDocument(spec.slice(eq + 1));
  return { path: p, value: doc.errors.length ? spec.slice(eq + 1) : doc.toJS() };
}

/**
 * Writes `value` at `p`, creating the mappings and lists on the way (own properties only). With
 * `spec` (the merged config) a list index may name an entry or the next one (appending), never one
 * further on, which would leave empty slots; a name may not be applied to a list or an index to a
 * mapping. Without it (the record of what --set wrote, for locating errors) anything goes.
 */
function setPath(target: Record<string, unknown>, p: Path, value: unknown, spec?: string): void {
  let cur: Record<string | number, unknown> = target;
  for (let i = 0; i < p.length; i++) {
    const k = p[i]!;
    if (spec !== undefined) {
      const at = formatPath(p.slice(0, i));
      if (Array.isArray(cur) && typeof k !== 'number') throw new ConfigError(`--set ${spec}: ${at} is a list: name an entry by its index, e.g. ${at}[0].${k}`);
      if (!Array.isArray(cur) && typeof k === 'number') throw new ConfigError(`--set ${spec}: ${at} is not a list`);
      if (Array.isArray(cur) && (k as number) > cur.length) {
        const has = cur.length === 0 ? 'is empty' : `has ${cur.length} entr${cur.length === 1 ? 'y' : 'ies'} (indices 0 to ${cur.length - 1})`;
        throw new ConfigError(`--set ${spec}: ${formatPath(p.slice(0, i + 1))}: index ${k} is out of range: ${at} ${has}; ${at}[${cur.length}] adds an entry`);
      }
    }
    if (i === p.length - 1) break;
    const own = Object.hasOwn(cur, k) ? cur[k] : undefined;
    if (own === undefined || own === null || typeof own !== 'object') putOwn(cur as Record<string, unknown>, String(k), typeof p[i + 1] === 'number' ? [] : {});
    cur = cur[k] as Record<string | number, unknown>;
  }
  putOwn(cur as Record<string, unknown>, String(p[p.length - 1]!), value);
}

export function loadConfig(file: string, opts: LoadOptions = {}): LoadedConfig {
  const top = path.resolve(file);
  const layers: Layer[] = [];
  const seen = new Set<string>();
  let next: string | undefined = top;
  while (next) {
    if (seen.has(next)) throw new ConfigError(`${next}: \`extends\` forms a cycle (${[...seen, next].join(' -> ')})`);
    seen.add(next);
    const layer = readLayer(next);
    // Paths inside each file are relative to that file.
    absolutizeDataPaths(layer.value, path.dirname(next));
    layers.push(layer);
    const ext = layer.value.extends;
    if (ext !== undefined && typeof ext !== 'string') {
      throw new ConfigError(`${locate([layer], ['extends'])}: extends: expected a file path, found ${typeof ext}`);
    }
    next = typeof ext === 'string' ? path.resolve(path.dirname(next), ext) : undefined;
  }

  let merged: Record<string, unknown> = {};
  for (const layer of [...layers].reverse()) merged = mergeLayer(merged, layer.value);
  delete merged.extends;

  if (opts.overrides?.length) {
    const overrideLayer: Layer = { source: '--set', value: {} };
    for (const spec of opts.overrides) {
      const { path: p, value } = parseOverride(spec);
      if (p.length === 2 && p[0] === 'model' && p[1] === 'type') merged.model = keepCommonModelKeys(merged.model, value);
      setPath(merged, p, value, spec);
      setPath(overrideLayer.value, p, value);
    }
    layers.unshift(overrideLayer);
  }
  const fileName = path.basename(top).replace(/\.(ya?ml)$/i, '');
  merged.name ??= fileName;

  const issues: SchemaIssue[] = [];
  const checked = check(experimentSchema, merged, [], issues);
  // eval.ks may be a range; the resolved config holds the list (checked only when the section is well formed)
  const evalSection = isObj(checked.eval) ? checked.eval : undefined;
  const expanded = evalSection && evalSection.ks !== undefined && issues.length === 0 ? expandKs(evalSection.ks) : undefined;
  if (expanded && 'error' in expanded) issues.push({ path: ['eval', 'ks'], message: expanded.error });
  const ks = expanded && 'ks' in expanded ? expanded.ks : (evalSection?.ks as number[]);
  let config: ExperimentConfig = { ...checked, name: checked.name ?? fileName, eval: { ...checked.eval, ks } };
  const sectionNotMapping = issues.some((i) => i.path.length === 1 && i.path[0] === 'model');
  if (opts.refine && !sectionNotMapping) {
    // The refining step checks the whole model section again (type, common and own parameters), so
    // it reports the section's problems once, with the list of every key allowed for the type.
    const others = issues.filter((i) => i.path[0] !== 'model');
    issues.length = 0;
    for (const i of others) issues.push(i); // a loop: spreading a very long list overflows the stack
    config = opts.refine(config, issues);
    sortBySection(issues);
  }
  if (issues.length === 0) crossChecks(config, issues);
  if (issues.length > 0) throw new ConfigError(issuesMessage(layers, issues));
  return { config, file: top, chain: layers.filter((l) => l.doc).map((l) => l.source) };
}

/** Problems reported one per line, with file and line; past MAX_REPORTED, only how many more there are. */
export const MAX_REPORTED = 20;

function issuesMessage(layers: Layer[], issues: SchemaIssue[]): string {
  // Only the shown issues are located: finding a line scans a mapping's keys.
  const lines = issues.slice(0, MAX_REPORTED).map((i) => `${locate(layers, i.path)}: ${formatPath(i.path)}: ${i.message}`);
  if (issues.length === 1) return lines[0]!;
  const more = issues.length - lines.length;
  if (more > 0) lines.push(`... and ${more.toLocaleString('en-US')} more`);
  return `${issues.length.toLocaleString('en-US')} problems in the config:\n  ${lines.join('\n  ')}`;
}

/** Puts issues in the order of the schema's sections (unknown top-level keys first), as one validation pass reports them. */
function sortBySection(issues: SchemaIssue[]): void {
  const order = Object.keys(experimentSchema.fields);
  const rank = (i: SchemaIssue) => order.indexOf(String(i.path[0]));
  issues.sort((a, b) => rank(a) - rank(b)); // stable: keeps the order within a section
}

/** Data and vocabulary paths of one file are relative to that file's folder, whatever other sections it has. */
function absolutizeDataPaths(value: Record<string, unknown>, dir: string): void {
  const data = value.data;
  if (isObj(data)) {
    for (const key of ['train', 'validation', 'eval']) {
      const v = data[key];
      if (typeof v === 'string') data[key] = path.resolve(dir, v);
      else if (Array.isArray(v)) data[key] = v.map((x) => (typeof x === 'string' ? path.resolve(dir, x) : x));
    }
  }
  if (Array.isArray(value.features)) {
    for (const f of value.features) if (isObj(f) && typeof f.vocab === 'string') f.vocab = path.resolve(dir, f.vocab);
  }
}

/** Checks that span sections: names that must exist elsewhere in the config. */
function crossChecks(c: ExperimentConfig, issues: SchemaIssue[]): void {
  const add = (p: Path, message: string) => issues.push({ path: p, message });
  const unique = (items: { name: string }[], section: string) => {
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.name)) add([section, i, 'name'], `duplicate name \`${it.name}\``);
      seen.add(it.name);
    });
  };
  unique(c.features, 'features');
  unique(c.tasks, 'tasks');
  const taskNames = c.tasks.map((t) => t.name);
  const labelCols = Object.keys(c.data.columns.labels);

  c.features.forEach((f, i) => {
    if (f.type === 'numeric') {
      if (f.buckets !== undefined || f.vocab !== undefined) add(['features', i], 'numeric features take no `buckets` or `vocab`');
    } else if ((f.buckets === undefined) === (f.vocab === undefined)) {
      add(['features', i], `${f.type} feature \`${f.name}\` needs exactly one of \`buckets\` (hashing) or \`vocab\` (a vocabulary file)`);
    }
  });
  c.tasks.forEach((t, i) => {
    if (typeof t.label !== 'string') {
      // a rank-consistency label (README.md, "Rank-consistency tasks"): the teacher's top k within a request
      const teacher = t.label.from_teacher;
      if (!Object.hasOwn(c.data.columns.teacher, teacher)) {
        add(['tasks', i, 'label', 'from_teacher'], `teacher \`${teacher}\` is not under data.columns.teacher (known: ${Object.keys(c.data.columns.teacher).join(', ') || 'none'})`);
      }
      if (!c.data.columns.request) add(['tasks', i, 'label'], 'a rank-consistency label (the teacher\'s top k within a request) needs data.columns.request');
    } else if (t.label !== 'exposure' && !labelCols.includes(t.label)) {
      add(['tasks', i, 'label'], `label \`${t.label}\` has no column: add it under data.columns.labels (known: ${labelCols.join(', ') || 'none'})`);
    }
    if (t.label === 'exposure' && !c.data.columns.stage) add(['tasks', i, 'label'], 'the `exposure` label needs data.columns.stage');
    t.losses.forEach((l, j) => {
      if (l.type === 'listwise' && !c.data.columns.request) add(['tasks', i, 'losses', j], 'a list-wise loss needs data.columns.request');
      if (l.type === 'distill') {
        if (!Object.hasOwn(c.data.columns.teacher, l.teacher)) {
          add(['tasks', i, 'losses', j, 'teacher'], `teacher \`${l.teacher}\` is not under data.columns.teacher (known: ${Object.keys(c.data.columns.teacher).join(', ') || 'none'})`);
        }
        if (!c.data.columns.request) add(['tasks', i, 'losses', j], 'distillation needs data.columns.request');
      }
    });
    if (!c.data.columns.stage && t.sample_space.some((s) => s !== 'exposure')) {
      add(['tasks', i, 'sample_space'], 'candidate stages need data.columns.stage (without it every row is an exposure)');
    }
  });
  for (const k of Object.keys(c.fusion.weights)) {
    if (!taskNames.includes(k)) {
      const hint = suggest(k, taskNames);
      add(['fusion', 'weights', k], `no task named \`${k}\`${hint ? ` (did you mean \`${hint}\`?)` : ''}; tasks: ${taskNames.join(', ')}`);
    }
  }
  metricChecks(c, add);
  sizeChecks(c, add);
}

/** What the asked-for metrics and the early-stopping metric need, read from their declarations. */
function metricChecks(c: ExperimentConfig, add: (p: Path, message: string) => void): void {
  const wanted = c.eval.metrics;
  const group = c.eval.gauc_group;
  const cols = c.data.columns;
  const labelCols = Object.keys(cols.labels);
  if (wanted.some(needsLabelWeights)) for (const k of Object.keys(c.eval.label_weights)) {
    if (!labelCols.includes(k) && k !== 'exposure') add(['eval', 'label_weights', k], `label \`${k}\` has no column under data.columns.labels (weights of Weighted Recall@K)`);
  }
  const needRequest = [...new Set(wanted)].filter((m) => needsRequests(m, group));
  if (needRequest.length && !cols.request) {
    const names = needRequest.map((m) => (reads(m, 'groups') ? `${m} by request` : m));
    add(['eval', 'metrics'], `${listText(names)} ${names.length > 1 ? 'need' : 'needs'} data.columns.request (or drop them from eval.metrics)`);
  }
  if (wanted.some((m) => needsUsers(m, group)) && !cols.user) add(['eval', 'gauc_group'], 'gAUC by user needs data.columns.user');

  const es = c.train.early_stopping;
  if (es) monitorChecks(c, add, 'early_stopping', es, 'early stopping');
  const s = c.train.lr_schedule;
  if (s?.decay === 'plateau') monitorChecks(c, add, 'lr_schedule', s, 'the plateau schedule');
  if (s?.decay === 'cosine' && s.unit === 'step' && s.total_steps === null) add(['train', 'lr_schedule', 'total_steps'], 'cosine by step needs the number of steps of the run (or unit: epoch)');
}

/** The validation metric train.<key> watches (early stopping, the plateau schedule) must be one validation reports. */
function monitorChecks(c: ExperimentConfig, add: (p: Path, message: string) => void, key: string, es: { metric: NonNullable<ExperimentConfig['train']['early_stopping']>['metric']; task?: string; k?: number }, what: string): void {
  const group = c.eval.gauc_group;
  const cols = c.data.columns;
  const taskNames = c.tasks.map((t) => t.name);
  if (es.task !== undefined && !taskNames.includes(es.task)) add(['train', key, 'task'], `no task named \`${es.task}\`; tasks: ${taskNames.join(', ')}`);
  if (!c.data.validation) add(['train', key], `${what} needs data.validation`);
  const decl = METRIC_DECLARATIONS[es.metric];
  if (!decl.perTask && es.task !== undefined) add(['train', key, 'task'], `\`${es.metric}\` is a metric of the fused ranking and has no task; drop the task`);
  if (decl.hasK && es.k === undefined) add(['train', key, 'k'], `\`${es.metric}\` is reported per K: set train.${key}.k (eval.ks: ${c.eval.ks.join(', ')})`);
  if (!decl.hasK && es.k !== undefined) add(['train', key, 'k'], `\`${es.metric}\` takes no k`);
  if (needsRequests(es.metric, group) && !cols.request) add(['train', key, 'metric'], `\`${es.metric}\` needs data.columns.request`);
  if (needsUsers(es.metric, group) && !cols.user) add(['train', key, 'metric'], `\`${es.metric}\` by user needs data.columns.user`);
}

/** `a, b and c`. */
function listText(items: string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}` : items.join('');
}
