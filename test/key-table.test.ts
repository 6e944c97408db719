import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IdBits, KeyTable } from '../src/data/key-table.js';
import { KeyIndex } from '../src/data/encode.js';
import { hashInteger, hashString } from '../src/data/hash.js';
import { Rng } from '../src/base/rng.js';

const SEED = 0x2545f491; // the table's seed (src/data/key-table.ts)

test('KeyTable gives the same dense ids as a Map on 300k random integer and string keys, repeats included', () => {
  const rng = new Rng(17);
  const table = new KeyTable();
  const map = new Map<number | string, number>();
  const keys: (number | string)[] = [];
  for (let i = 0; i < 300_000; i++) {
    const r = rng.int(6);
    let key: number | string;
    if (r === 0 && keys.length) key = keys[rng.int(keys.length)]!; // a repeat
    else if (r === 1) key = rng.int(1 << 20) - (1 << 19); // small, negative too
    else if (r === 2) key = Math.floor(rng.next() * 2 ** 53) * (rng.int(2) ? 1 : -1); // up to 2^53
    else if (r === 3) key = String(rng.int(1 << 20)); // "123": a different key from 123
    else key = Array.from({ length: rng.int(24) }, () => String.fromCharCode(rng.int(0xd800))).join(''); // any length, empty too
    keys.push(key);
    let want = map.get(key);
    if (want === undefined) map.set(key, (want = map.size));
    assert.equal(table.idOf(key), want, `key ${JSON.stringify(key)}`);
  }
  assert.equal(table.size, map.size);
  for (const [key, id] of map) {
    assert.equal(table.find(key), id);
    assert.equal(table.keyOf(id), key);
  }
  assert.equal(table.find('never seen \u0001'), -1);
  assert.equal(table.find(2 ** 53 + 2), -1);
  // The hash is 32 bits: 300k keys hold equal hashes (birthday bound), so exact comparison was exercised.
  const seen = new Map<number, number | string>();
  let collisions = 0;
  for (const key of map.keys()) {
    const h = typeof key === 'string' ? hashString(key, SEED) : hashInteger(key, SEED);
    const other = seen.get(h);
    if (other !== undefined && other !== key) collisions++;
    seen.set(h, key);
  }
  assert.ok(collisions > 0, 'expected at least one pair of distinct keys with the same 32-bit hash');
});

test('KeyTable: two keys with the same hash stay two keys', () => {
  // Find a pair of distinct strings with equal hashes by brute force (birthday search).
  const byHash = new Map<number, string>();
  let a = '';
  let b = '';
  for (let i = 0; !a; i++) {
    const s = `r${i}`;
    const h = hashString(s, SEED);
    const prev = byHash.get(h);
    if (prev !== undefined) (a = prev), (b = s);
    byHash.set(h, s);
  }
  const t = new KeyTable();
  assert.equal(t.idOf(a), 0);
  assert.equal(t.idOf(b), 1);
  assert.equal(t.idOf(a), 0);
  assert.equal(t.idOf(b), 1);
  assert.deepEqual([t.keyOf(0), t.keyOf(1)], [a, b]);
});

test('KeyTable keeps Map semantics: 5 and "5" differ, -0 is 0, NaN is one key', () => {
  const t = new KeyTable();
  assert.equal(t.idOf(5), 0);
  assert.equal(t.idOf('5'), 1);
  assert.equal(t.idOf(0), 2);
  assert.equal(t.idOf(-0), 2);
  assert.equal(t.idOf(NaN), 3);
  assert.equal(t.idOf(NaN), 3);
  assert.equal(t.idOf('null'), 4);
  assert.throws(() => t.keyOf(5), /no key with id 5/);
});

test('KeyIndex: dense ids in first-appearance order and the original keys back', () => {
  const k = new KeyIndex();
  const ids = [30, 'x', 30, 7, 'x', 'y'].map((v) => k.idOf(v));
  assert.deepEqual(ids, [0, 1, 0, 2, 1, 3]);
  assert.equal(k.size, 4);
  assert.deepEqual([0, 1, 2, 3].map((i) => k.keyOf(i)), [30, 'x', 7, 'y']);
});

test('IdBits holds the ids added, as a Set does, growing past its first size', () => {
  const rng = new Rng(3);
  const bits = new IdBits();
  const set = new Set<number>();
  for (let i = 0; i < 20_000; i++) {
    const id = rng.int(1 << (rng.int(2) ? 10 : 22));
    assert.equal(bits.has(id), set.has(id));
    bits.add(id);
    set.add(id);
  }
  for (let id = 0; id < 5000; id++) assert.equal(bits.has(id), set.has(id));
  assert.equal(bits.has(2 ** 30), false);
  assert.throws(() => bits.add(-1), /ids must be integers/);
});
