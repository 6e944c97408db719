/**
 * The id hashing published in docs/serving.md ("Id hashing") is the one resflow uses: every golden
 * vector of that page is checked against src/data/hash.ts (and the encoder's table row), and against
 * test/independent/hash_spec.py, an implementation written from the page alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { featureSeed, hashId } from '../src/data/hash.js';
import { repoRoot } from './helpers/fixtures.js';

interface Golden {
  feature: string;
  seed: number;
  buckets: number;
  id: number | string;
  hash: number;
  row: number;
}

const page = readFileSync(path.join(repoRoot, 'docs/serving.md'), 'utf8');

function goldenVectors(): Golden[] {
  const block = page.split('<!-- golden:begin -->')[1]!.split('<!-- golden:end -->')[0]!;
  return block
    .split('\n')
    .filter((l) => l.startsWith('| `'))
    .map((l) => {
      const [feature, seed, buckets, kind, id, hash, row] = l.split('|').slice(1, -1).map((c) => c.trim());
      const value = JSON.parse(id!) as number | string;
      assert.equal(typeof value === 'number' ? 'int' : 'string', kind, `kind column of ${l}`);
      return { feature: feature!.slice(1, -1), seed: Number(seed), buckets: Number(buckets), id: value, hash: Number(hash), row: Number(row) };
    });
}

test('docs/serving.md golden vectors: integer and string ids of several features hash as src/data/hash.ts does', () => {
  const golden = goldenVectors();
  assert.ok(golden.length >= 20, `${golden.length} vectors`);
  assert.ok(new Set(golden.map((g) => g.feature)).size >= 4, 'several features');
  assert.ok(golden.some((g) => typeof g.id === 'number') && golden.some((g) => typeof g.id === 'string'));
  for (const g of golden) {
    assert.equal(featureSeed(g.feature), g.seed, `seed of ${g.feature}`);
    const h = hashId(g.id, g.seed);
    assert.equal(h, g.hash, `hash of ${JSON.stringify(g.id)} in ${g.feature}`);
    assert.equal(h % g.buckets, g.row, `row of ${JSON.stringify(g.id)} in ${g.feature}`);
  }
  // The page's own claims: "123" hashes as 123, "42" as 42; seeds of the seed table.
  const of = (f: string, id: number | string) => golden.find((g) => g.feature === f && g.id === id)!.hash;
  assert.equal(of('user_id', '42'), of('user_id', 42));
  for (const m of page.matchAll(/^\| `([^`]*)`(?: \(empty\))? \| (\d+) \|$/gm)) assert.equal(featureSeed(m[1]!), Number(m[2]), `seed table: ${m[1]}`);
});

const python = ['/usr/bin/python3', 'python3'].find((p) => spawnSync(p, ['--version']).status === 0);

test('an implementation written from docs/serving.md alone (Python) reproduces every golden vector and 300 random ids', { skip: python ? false : 'no python3' }, () => {
  // The golden vectors, then ids drawn at random (ints up to 2^53, numeric-looking and unicode strings).
  let x = 12345;
  const next = () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const alphabet = ['0', '1', '7', '-', 'a', 'Z', ' ', 'é', '日', '😀', 'e', '+'];
  const drawn: Golden[] = Array.from({ length: 300 }, (_, i) => {
    const id =
      i % 3 === 0 ? Math.round((next() - 0.5) * 2 ** (1 + Math.floor(next() * 53)))
      : i % 3 === 1 ? String(Math.round((next() - 0.3) * 10 ** Math.floor(next() * 17)))
      : Array.from({ length: Math.floor(next() * 8) }, () => alphabet[Math.floor(next() * alphabet.length)]).join('');
    const feature = ['user_id', 'item_id', 'f', `feature_${i}`][i % 4]!;
    const seed = featureSeed(feature);
    const hash = hashId(id, seed);
    return { feature, seed, buckets: 1000, id, hash, row: hash % 1000 };
  });
  const golden = [...goldenVectors(), ...drawn];
  const input = golden.map((g) => JSON.stringify({ feature: g.feature, buckets: g.buckets, id: g.id })).join('\n');
  const r = spawnSync(python!, [path.join(repoRoot, 'test/independent/hash_spec.py')], { input, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seed: number; hash: number; row: number });
  golden.forEach((g, i) => assert.deepEqual(out[i], { seed: g.seed, hash: g.hash, row: g.row }, `${g.feature} ${JSON.stringify(g.id)}`));
});
