/**
 * The layering of docs/architecture.md, checked on the source: every relative import in src/ goes to
 * the same room or to a lower one, there is no import cycle, and no source file grows past the size
 * limit unless its folder's README says why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from './helpers/fixtures.js';

/** Rooms from the bottom up; a room may import its own files and any room with a lower rank. */
export const ROOM_RANK: Record<string, number> = {
  base: 0,
  config: 1,
  data: 2,
  kernels: 2,
  metrics: 3,
  models: 4,
  runs: 5,
  eval: 6,
  report: 6,
  export: 6,
  launchers: 6,
  train: 7,
  app: 8,
  cli: 9,
};

const MAX_LINES = 400;
const srcDir = path.join(repoRoot, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

function roomOf(file: string): string {
  return path.relative(srcDir, file).split(path.sep)[0]!;
}

/** Relative imports of a file (static `import ... from`, `export ... from` and dynamic `import()`). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  const re = /(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    found.push(path.resolve(path.dirname(file), m[1]!.replace(/\.js$/, '.ts')));
  }
  return found;
}

const files = sourceFiles(srcDir);
const graph = new Map(files.map((f) => [f, importsOf(f)]));

test('every source file sits in a known room', () => {
  const unknown = files.filter((f) => !(roomOf(f) in ROOM_RANK)).map((f) => path.relative(repoRoot, f));
  assert.deepEqual(unknown, []);
});

test('imports flow one way: to the same room or a lower one', () => {
  const wrong: string[] = [];
  for (const [file, deps] of graph) {
    const from = roomOf(file);
    for (const dep of deps) {
      const to = roomOf(dep);
      if (to !== from && !(ROOM_RANK[to]! < ROOM_RANK[from]!)) {
        wrong.push(`${path.relative(srcDir, file)} -> ${path.relative(srcDir, dep)}`);
      }
    }
  }
  assert.deepEqual(wrong, []);
});

test('the import graph has no cycle', () => {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, trail: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(file)), file].map((f) => path.relative(srcDir, f)).join(' -> '));
      return;
    }
    state.set(file, 'open');
    for (const dep of graph.get(file) ?? []) visit(dep, [...trail, file]);
    state.set(file, 'done');
  };
  for (const f of files) visit(f, []);
  assert.deepEqual(cycles, []);
});

test(`source files stay under ${MAX_LINES} lines unless their folder README says why`, () => {
  const long: string[] = [];
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n').length;
    if (lines <= MAX_LINES) continue;
    const readme = path.join(path.dirname(f), 'README.md');
    const explained = existsSync(readme) && readFileSync(readme, 'utf8').includes(path.basename(f));
    if (!explained) long.push(`${path.relative(repoRoot, f)} (${lines} lines)`);
  }
  assert.deepEqual(long, []);
});

test('comments cite the project\'s own documents only', () => {
  const outside = files.filter((f) => /DESIGN(\.md)?\s*§|\.\.\/shared/.test(readFileSync(f, 'utf8')));
  assert.deepEqual(outside.map((f) => path.relative(repoRoot, f)), []);
});
