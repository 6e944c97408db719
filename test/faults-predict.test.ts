import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { cli, tempDir, tinyDir, trainTiny } from './helpers/fixtures.js';

const dir = tempDir();
let run = '';

test('setup: a tiny run', () => {
  run = trainTiny(dir);
});

/** A copy of the run damaged by `damage`; predict must exit 2 naming `file` and write nothing. */
function refuses(name: string, damage: (copy: string) => void, file: string, what: RegExp): void {
  const copy = path.join(dir, name);
  cpSync(run, copy, { recursive: true });
  damage(copy);
  const before = new Map(['config.yaml', 'run.json', 'model/model.json'].filter((f) => existsSync(path.join(copy, f))).map((f) => [f, readFileSync(path.join(copy, f))]));
  const out = path.join(dir, `${name}.parquet`);
  const r = cli(['-q', 'predict', copy, '--data', `${tinyDir}/eval.parquet`, '--out', out]);
  assert.equal(r.code, 2, r.stderr);
  assert.ok(r.stderr.includes(path.join(copy, file)), `${r.stderr} names ${file}`);
  assert.match(r.stderr, what);
  assert.equal(r.stderr.trim().split('\n').length, 1, 'one line, no stack trace');
  assert.ok(!existsSync(out), 'no output written');
  for (const [f, bytes] of before) assert.ok(readFileSync(path.join(copy, f)).equals(bytes), `${f} untouched`);
}

test('predict on a run without model/weights.bin: exit 2 naming it', () => {
  refuses('no-weights', (c) => rmSync(path.join(c, 'model/weights.bin')), 'model/weights.bin', /missing/);
});

test('predict on a run with a truncated embeddings.bin: exit 2 naming it and the recorded size', () => {
  refuses('short-emb', (c) => {
    const f = path.join(c, 'model/embeddings.bin');
    truncateSync(f, statSync(f).size - 64);
  }, 'model/embeddings.bin', /records [\d,]+ bytes/);
});

test('predict on a run whose config.yaml was edited: exit 2 naming config.yaml', () => {
  const edit = (c: string, from: string, to: string) => {
    const f = path.join(c, 'config.yaml');
    writeFileSync(f, readFileSync(f, 'utf8').replace(from, to));
  };
  // run.json records config.yaml's size and SHA-256: any edit is refused by the integrity check.
  refuses('edited-dim', (c) => edit(c, 'embedding_dim: 8', 'embedding_dim: 12'), 'config.yaml', /records [\d,]+ bytes/);
  // A run written before config.yaml was recorded: the config is still checked against the model and the schema.
  const unrecorded = (c: string) => {
    const info = path.join(c, 'run.json');
    const doc = JSON.parse(readFileSync(info, 'utf8')) as { files: Record<string, unknown> };
    assert.ok(doc.files['config.yaml'], 'run.json records config.yaml');
    delete doc.files['config.yaml'];
    writeFileSync(info, JSON.stringify(doc, null, 2));
  };
  refuses('edited-dim-old', (c) => (unrecorded(c), edit(c, 'embedding_dim: 8', 'embedding_dim: 12')), 'config.yaml', /no longer describes the trained model/);
  refuses('edited-bad-old', (c) => (unrecorded(c), edit(c, 'epochs: 1', 'epochs: lots')), 'config.yaml', /train\.epochs: expected an integer/);
});
