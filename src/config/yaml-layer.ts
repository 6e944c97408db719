/**
 * One config file as a layer of the merged config: read, parsed with line tracking, its keys
 * checked (no duplicates, no key that would reach an object prototype), and the file and line
 * where a key path of the merged config was defined. Every step is linear in the size of the file
 * (README: a config error names the file, the line and the key).
 */
import { readFileSync, statSync } from 'node:fs';
import { LineCounter, parseDocument, isAlias, isMap, isScalar, isSeq, type Document } from 'yaml';
import { ConfigError } from '../base/errors.js';
import { formatPath, type Path } from './schema.js';
import { checkWork, isForbiddenKey } from './keys.js';

/** One layer of the merged config: a file of the extends chain, or the command-line overrides. */
export interface Layer {
  source: string;
  value: Record<string, unknown>;
  doc?: Document;
  lines?: LineCounter;
}

const READ_ERRORS: Record<string, string> = {
  ENOENT: 'config file not found',
  EISDIR: 'is a folder, not a config file',
  EACCES: 'cannot be read (permission denied)',
  EPERM: 'cannot be read (operation not permitted)',
  ENOTDIR: 'config file not found (a part of the path is not a folder)',
};

/**
 * A config is a hand-written file of settings (ids belong in vocabulary files), a few kilobytes;
 * anything past this is refused before parsing, as an alias bomb is, so that no file can make
 * checking take minutes and gigabytes.
 */
export const MAX_CONFIG_BYTES = 4 * 2 ** 20;

function readText(file: string): string {
  try {
    const size = statSync(file).size;
    if (size > MAX_CONFIG_BYTES) {
      throw new ConfigError(`${file}: the config file is ${(size / 2 ** 20).toFixed(1)} MiB; a config is at most ${MAX_CONFIG_BYTES / 2 ** 20} MiB (lists of ids go in vocabulary files)`);
    }
    return readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code ?? '';
    throw new ConfigError(`${file}: ${READ_ERRORS[code] ?? `cannot be read: ${(err as Error).message}`}`);
  }
}

export function readLayer(file: string, expected = 'a mapping of sections (data, features, tasks, ...)'): Layer {
  const text = readText(file);
  const lines = new LineCounter();
  // Duplicate keys are found by checkKeys below: the parser's own check compares each key with every
  // earlier key of its mapping, which is quadratic in the number of keys.
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lines.linePos(e.pos[0]);
    throw new ConfigError(`${file}:${pos.line}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const firstAlias = checkKeys(file, doc, lines);
  let value: unknown;
  try {
    value = doc.toJS() ?? {};
  } catch (err) {
    // yaml refuses aliases that expand too much (an "alias bomb"): a bad config, not a crash.
    const at = firstAlias === undefined ? '' : `:${firstAlias}`;
    throw new ConfigError(`${file}${at}: invalid YAML: aliases expand too much (${(err as Error).message}); write the values out instead`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigError(`${file}:1: expected ${expected}, found ${Array.isArray(value) ? 'a list' : typeof value}`);
  }
  return { source: file, value: value as Record<string, unknown>, doc, lines };
}

type Ranged = { range?: [number, number, number] | null };

/**
 * Walks every mapping of the document once (an explicit stack, so deep nesting cannot overflow):
 * refuses duplicate keys and prototype keys, naming the file, line and key path. Returns the line
 * of the first alias, if any.
 */
function checkKeys(file: string, doc: Document, lines: LineCounter): number | undefined {
  const lineAt = (n: unknown) => {
    const r = (n as Ranged).range;
    return r ? lines.linePos(r[0]).line : 1;
  };
  let firstAlias: number | undefined;
  const stack: { node: unknown; path: Path }[] = [{ node: doc.contents, path: [] }];
  while (stack.length > 0) {
    const { node, path } = stack.pop()!;
    if (isAlias(node)) {
      firstAlias = Math.min(firstAlias ?? Infinity, lineAt(node));
    } else if (isMap(node)) {
      const seen = new Map<string, number>();
      for (const pair of node.items) {
        checkWork.scanned++;
        if (!isScalar(pair.key)) {
          if (pair.value) stack.push({ node: pair.value, path: [...path, '?'] });
          continue;
        }
        const key = pair.key.value === null ? '' : String(pair.key.value);
        const line = lineAt(pair.key);
        const keyPath = [...path, key];
        if (isForbiddenKey(key)) {
          throw new ConfigError(`${file}:${line}: ${formatPath(keyPath)}: the key \`${key}\` is not allowed (it names an object's prototype, not a setting)`);
        }
        const first = seen.get(key);
        if (first !== undefined) throw new ConfigError(`${file}:${line}: ${formatPath(keyPath)}: duplicate key \`${key}\` (first at line ${first})`);
        seen.set(key, line);
        if (pair.value) stack.push({ node: pair.value, path: keyPath });
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => stack.push({ node: item, path: [...path, i] }));
    }
  }
  return firstAlias;
}

/** How far along `p` a file layer goes: the depth reached, the line there, and whether each prefix is a mapping. */
function reach(layer: Layer, p: Path): { depth: number; line?: number; mapAt: boolean[] } {
  const mapAt: boolean[] = [];
  if (!layer.doc || !layer.lines) return { depth: 0, mapAt };
  let node: unknown = layer.doc.contents;
  let line: number | undefined;
  let depth = 0;
  for (const key of p) {
    if (isMap(node)) {
      let found: (typeof node.items)[number] | undefined;
      for (const it of node.items) {
        checkWork.scanned++;
        if (isScalar(it.key) && it.key.value === key) {
          found = it;
          break;
        }
      }
      if (!found) break;
      const r = (found.key as Ranged).range;
      if (r) line = layer.lines.linePos(r[0]).line;
      node = found.value;
    } else if (isSeq(node) && typeof key === 'number' && key < node.items.length) {
      node = node.items[key];
      const r = (node as Ranged).range;
      if (r) line = layer.lines.linePos(r[0]).line;
    } else break;
    depth++;
    mapAt.push(isMap(node));
  }
  return { depth, line, mapAt };
}

/** The depth of the longest prefix of `p` present in a plain value (the --set layer). */
function reachValue(v: unknown, p: Path): number {
  let cur = v;
  let depth = 0;
  for (const k of p) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) break;
    cur = (cur as Record<string | number, unknown>)[k];
    depth++;
  }
  return depth;
}

/**
 * `file:line` of the layer that defined the value at `p` in the merged config (layers in priority
 * order, --set first). Mappings merge key by key, but a list or a scalar replaces the one below it
 * (config/load.ts, deepMerge): once the highest-priority file holding a prefix of `p` has a list
 * there, only that file can hold what lies under it, so an entry of a list the child replaced is
 * never looked for in the base file.
 */
export function locate(layers: Layer[], p: Path): string {
  const files = layers.filter((l) => l.doc);
  const reached = files.map((l) => ({ layer: l, ...reach(l, p) }));
  let candidates = reached;
  for (let d = 1; d <= p.length && candidates.length > 1; d++) {
    const owner = candidates.find((c) => c.depth >= d);
    if (!owner) break;
    if (!owner.mapAt[d - 1]) candidates = [owner];
  }
  const exact = candidates.find((c) => c.depth === p.length);
  const override = layers.find((l) => !l.doc);
  const overrideDepth = override ? reachValue(override.value, p) : 0;
  if (override && overrideDepth === p.length) return override.source;
  if (exact?.line !== undefined) return `${exact.layer.source}:${exact.line}`;
  let best: (typeof reached)[number] | undefined;
  for (const c of candidates) if (c.line !== undefined && (!best || c.depth > best.depth)) best = c;
  if (override && overrideDepth > (best?.depth ?? 0)) return override.source;
  if (best) return `${best.layer.source}:${best.line}`;
  return layers[layers.length - 1]!.source;
}
