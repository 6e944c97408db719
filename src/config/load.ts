/**
 * Loading an experiment config: YAML parsing with line tracking, `extends:` inheritance,
 * `--set path=value` overrides, schema validation with defaults, and cross-field checks.
 * Every error names the file, the line, the key path, what was expected and what was found.
 */
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, isScalar, type Document } from 'yaml';
import { ConfigError } from '../base/errors.js';
import { check, formatPath, suggest, type Path, type SchemaIssue } from './schema.js';
import { COMMON_MODEL_KEYS, experimentSchema, type ExperimentConfig } from './experiment.js';
import { METRIC_DECLARATIONS, needsLabelWeights, needsRequests, needsUsers, reads } from './metrics.js';

/** One layer of the merged config: a file of the extends chain, or the command-line overrides. */
export interface Layer {
  source: string;
  value: Record<string, unknown>;
  doc?: Document;
  lines?: LineCounter;
}

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

export function readLayer(file: string, expected = 'a mapping of sections (data, features, tasks, ...)'): Layer {
  if (!existsSync(file)) throw new ConfigError(`${file}: config file not found`);
  const text = readFileSync(file, 'utf8');
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new ConfigError(`${file}:${pos.line}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const value = doc.toJS() ?? {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(`${file}:1: expected ${expected}, found ${Array.isArray(value) ? 'a list' : typeof value}`);
  }
  return { source: file, value: value as Record<string, unknown>, doc, lines };
}

/** Deep merge: mappings merge key by key; lists and scalars from `over` replace those of `base`. */
export function deepMerge(base: unknown, over: unknown): unknown {
  if (isObj(base) && isObj(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in out ? deepMerge(out[k], v) : v;
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

/** Finds the line of the deepest node along `p` in a layer, or undefined when the path is absent. */
function lineOf(layer: Layer, p: Path): { line: number; exact: boolean } | undefined {
  if (!layer.doc || !layer.lines) return undefined;
  let node: unknown = layer.doc.contents;
  let line: number | undefined;
  let depth = 0;
  for (const key of p) {
    if (isMap(node)) {
      const pair = node.items.find((it) => isScalar(it.key) && it.key.value === key);
      if (!pair) break;
      const k = pair.key as { range?: [number, number, number] };
      if (k.range) line = layer.lines.linePos(k.range[0]).line;
      node = pair.value;
    } else if (isSeq(node) && typeof key === 'number' && key < node.items.length) {
      node = node.items[key];
      const r = (node as { range?: [number, number, number] }).range;
      if (r) line = layer.lines.linePos(r[0]).line;
    } else break;
    depth++;
  }
  return line === undefined ? undefined : { line, exact: depth === p.length };
}

/** `file:line` of the key path `p` in the highest-priority layer that holds it (the file alone when no line is known). */
export function locate(layers: Layer[], p: Path): string {
  // Highest-priority layer that holds the exact path wins; else the deepest partial match.
  let fallback: string | undefined;
  for (const layer of layers) {
    if (!layer.doc) {
      if (hasPath(layer.value, p)) return layer.source;
      continue;
    }
    const at = lineOf(layer, p);
    if (at?.exact) return `${layer.source}:${at.line}`;
    if (at && !fallback) fallback = `${layer.source}:${at.line}`;
  }
  return fallback ?? layers[layers.length - 1]!.source;
}

function hasPath(v: unknown, p: Path): boolean {
  let cur = v;
  for (const k of p) {
    if (cur === null || typeof cur !== 'object' || !(k in (cur as object))) return false;
    cur = (cur as Record<string | number, unknown>)[k];
  }
  return true;
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
    p.push(m[1]!);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) p.push(Number(idx[1]));
  }
  const doc = parseDocument(spec.slice(eq + 1));
  return { path: p, value: doc.errors.length ? spec.slice(eq + 1) : doc.toJS() };
}

function setPath(target: Record<string, unknown>, p: Path, value: unknown): void {
  let cur: Record<string | number, unknown> = target;
  for (let i = 0; i < p.length - 1; i++) {
    const k = p[i]!;
    if (cur[k] === undefined || cur[k] === null || typeof cur[k] !== 'object') cur[k] = typeof p[i + 1] === 'number' ? [] : {};
    cur = cur[k] as Record<string | number, unknown>;
  }
  cur[p[p.length - 1]!] = value;
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
      setPath(merged, p, value);
      setPath(overrideLayer.value, p, value);
    }
    layers.unshift(overrideLayer);
  }
  const fileName = path.basename(top).replace(/\.(ya?ml)$/i, '');
  merged.name ??= fileName;

  const issues: SchemaIssue[] = [];
  const checked = check(experimentSchema, merged, [], issues);
  let config: ExperimentConfig = { ...checked, name: checked.name ?? fileName };
  const sectionNotMapping = issues.some((i) => i.path.length === 1 && i.path[0] === 'model');
  if (opts.refine && !sectionNotMapping) {
    // The refining step checks the whole model section again (type, common and own parameters), so
    // it reports the section's problems once, with the list of every key allowed for the type.
    const others = issues.filter((i) => i.path[0] !== 'model');
    issues.length = 0;
    issues.push(...others);
    config = opts.refine(config, issues);
    sortBySection(issues);
  }
  if (issues.length === 0) crossChecks(config, issues);
  if (issues.length > 0) {
    const lines = issues.map((i) => `${locate(layers, i.path)}: ${formatPath(i.path)}: ${i.message}`);
    throw new ConfigError(lines.length === 1 ? lines[0]! : `${lines.length} problems in the config:\n  ${lines.join('\n  ')}`);
  }
  return { config, file: top, chain: layers.filter((l) => l.doc).map((l) => l.source) };
}

/** Puts issues in the order of the schema's sections (unknown top-level keys first), as one validation pass reports them. */
function sortBySection(issues: SchemaIssue[]): void {
  const order = Object.keys(experimentSchema.fields);
  const rank = (i: SchemaIssue) => order.indexOf(String(i.path[0]));
  issues.sort((a, b) => rank(a) - rank(b)); // stable: keeps the order within a section
}

function absolutizeDataPaths(value: Record<string, unknown>, dir: string): void {
  const data = value.data;
  if (!isObj(data)) return;
  for (const key of ['train', 'validation', 'eval']) {
    const v = data[key];
    if (typeof v === 'string') data[key] = path.resolve(dir, v);
    else if (Array.isArray(v)) data[key] = v.map((x) => (typeof x === 'string' ? path.resolve(dir, x) : x));
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
    if (t.label !== 'exposure' && !labelCols.includes(t.label)) {
      add(['tasks', i, 'label'], `label \`${t.label}\` has no column: add it under data.columns.labels (known: ${labelCols.join(', ') || 'none'})`);
    }
    if (t.label === 'exposure' && !c.data.columns.stage) add(['tasks', i, 'label'], 'the `exposure` label needs data.columns.stage');
    t.losses.forEach((l, j) => {
      if (l.type === 'listwise' && !c.data.columns.request) add(['tasks', i, 'losses', j], 'a list-wise loss needs data.columns.request');
      if (l.type === 'distill') {
        if (!(l.teacher in c.data.columns.teacher)) {
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
  if (!es) return;
  const taskNames = c.tasks.map((t) => t.name);
  if (es.task !== undefined && !taskNames.includes(es.task)) add(['train', 'early_stopping', 'task'], `no task named \`${es.task}\`; tasks: ${taskNames.join(', ')}`);
  if (!c.data.validation) add(['train', 'early_stopping'], 'early stopping needs data.validation');
  const decl = METRIC_DECLARATIONS[es.metric];
  if (!decl.perTask && es.task !== undefined) add(['train', 'early_stopping', 'task'], `\`${es.metric}\` is a metric of the fused ranking and has no task; drop the task`);
  if (decl.hasK && es.k === undefined) add(['train', 'early_stopping', 'k'], `\`${es.metric}\` is reported per K: set train.early_stopping.k (eval.ks: ${c.eval.ks.join(', ')})`);
  if (!decl.hasK && es.k !== undefined) add(['train', 'early_stopping', 'k'], `\`${es.metric}\` takes no k`);
  if (needsRequests(es.metric, group) && !cols.request) add(['train', 'early_stopping', 'metric'], `\`${es.metric}\` needs data.columns.request`);
  if (needsUsers(es.metric, group) && !cols.user) add(['train', 'early_stopping', 'metric'], `\`${es.metric}\` by user needs data.columns.user`);
}

/** `a, b and c`. */
function listText(items: string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}` : items.join('');
}
