/**
 * The embedding tables' memory (src/kernels/table-memory.ts): arenas laid out without overlap on
 * 64-byte lines, the addon's huge-page advice (native/src/huge_pages.cc), and tables whose values
 * do not depend on the layout. The addon's tests skip, with the reason, without it; the check that
 * the kernel really maps huge pages skips where the system has none to give.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { allocateTableArrays, HUGE_PAGE_BYTES, ARENA_MIN_BYTES } from '../src/kernels/table-memory.js';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';
import { validate, type SchemaIssue } from '../src/config/schema.js';
import { experimentSchema, type ExperimentConfig } from '../src/config/experiment.js';
import { buildBundle } from '../src/models/bundle.js';
import { Rng } from '../src/base/rng.js';

const native = loadAddon();
const skipNative = native === null ? `native addon not available: ${addonUnavailableReason()}` : native.adviseHugePages === undefined ? 'native addon predates adviseHugePages (version 7)' : false;

/** [first byte, end) of each array within its buffer, grouped by buffer. */
function spans(arrays: Float32Array[]): Map<ArrayBufferLike, [number, number][]> {
  const by = new Map<ArrayBufferLike, [number, number][]>();
  for (const a of arrays) {
    const list = by.get(a.buffer) ?? by.set(a.buffer, []).get(a.buffer)!;
    list.push([a.byteOffset, a.byteOffset + a.byteLength]);
  }
  return by;
}

test('tables smaller than an arena keep an array each, zero-filled', () => {
  const { arrays, hugePageBytes } = allocateTableArrays([10, 3, 1000], { native: null });
  assert.deepEqual(arrays.map((a) => a.length), [10, 3, 1000]);
  assert.equal(new Set(arrays.map((a) => a.buffer)).size, 3);
  assert.ok(arrays.every((a) => a.every((v) => v === 0)));
  assert.equal(hugePageBytes, 0);
  assert.ok(ARENA_MIN_BYTES > 4 * 1013, 'these lengths are below the arena threshold');
});

test('arenas: every table its own bytes, on 64-byte lines, up to the arena size; a larger table alone', () => {
  // Lengths that are not multiples of 16 floats, so that the 64-byte rounding shows.
  const lengths = [1000, 17, 4096, 5, 20_000, 33];
  const { arrays } = allocateTableArrays(lengths, { native: null, minBytes: 0, maxBytes: 40_000 });
  assert.deepEqual(arrays.map((a) => a.length), lengths);
  const by = spans(arrays);
  // 1,000, 17, 4,096 and 5 floats (4,032 + 128 + 16,384 + 64 bytes) share an arena of at most 40,000;
  // the 20,000-float table (80,000 bytes) is larger than an arena, so alone; the 33 floats start another.
  assert.deepEqual([...by.values()].map((s) => s.length), [4, 1, 1]);
  for (const list of by.values()) {
    for (let i = 0; i < list.length; i++) {
      assert.equal((list[i]![0] - list[0]![0]) % 64, 0, 'each table starts a 64-byte line after the arena start');
      if (i > 0) assert.ok(list[i]![0] >= list[i - 1]![1], 'tables do not overlap');
    }
  }
  arrays.forEach((a, i) => a.fill(i + 1));
  arrays.forEach((a, i) => assert.ok(a.every((v) => v === i + 1), `table ${i} kept its values`));
});

test('adviseHugePages: the first 2 MiB boundary and the whole pages after it; argument checks', { skip: skipNative }, () => {
  const advise = native!.adviseHugePages!;
  const small = new ArrayBuffer(4096);
  const s = advise(small);
  assert.equal(s.bytes, 0, 'no whole 2 MiB page inside 4 KiB');
  assert.ok(s.offset >= 0 && s.offset <= 4096);
  const big = new ArrayBuffer(3 * HUGE_PAGE_BYTES + 12_345);
  const b = advise(big);
  assert.ok(b.offset >= 0 && b.offset < HUGE_PAGE_BYTES, `offset ${b.offset}`);
  assert.equal(b.bytes % HUGE_PAGE_BYTES, 0);
  assert.ok(b.offset + b.bytes <= big.byteLength);
  // Either the system took the advice for every whole page from the boundary on, or none (not Linux, no THP).
  assert.ok(b.bytes === 0 || b.bytes === Math.floor((big.byteLength - b.offset) / HUGE_PAGE_BYTES) * HUGE_PAGE_BYTES, `bytes ${b.bytes}`);
  // The contents stay.
  const view = new Uint8Array(big);
  view[12_345] = 7;
  advise(big);
  assert.equal(view[12_345], 7);
  assert.throws(() => advise(new Float32Array(8) as unknown as ArrayBuffer), /ArrayBuffer/);
  assert.throws(() => (advise as unknown as () => void)(), /needs at least 1 argument/);
});

/** Why this system cannot show huge pages being mapped, or null if it can. */
function hugePagesUnavailable(): string | null {
  const setting = '/sys/kernel/mm/transparent_hugepage/enabled';
  if (!existsSync(setting) || !existsSync('/proc/self/smaps_rollup')) return 'no transparent huge pages here (not Linux, or no THP in the kernel)';
  const mode = /\[(\w+)\]/.exec(readFileSync(setting, 'utf8'))?.[1];
  return mode === 'never' ? `transparent huge pages set to "never" (${setting})` : null;
}
const anonHugeKiB = () => Number(/AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1] ?? 0);
const thpFallbacks = () => Number(/^thp_fault_fallback (\d+)$/m.exec(readFileSync('/proc/vmstat', 'utf8'))?.[1] ?? 0);

test('advised arenas are mapped with huge pages once written', { skip: skipNative || hugePagesUnavailable() || false }, (t) => {
  const before = anonHugeKiB();
  const fallbacks = thpFallbacks();
  const { arrays, hugePageBytes } = allocateTableArrays([3_000_000, 1_000_000]); // 16 MB
  assert.ok(hugePageBytes >= 7 * HUGE_PAGE_BYTES, `advised ${hugePageBytes} bytes`);
  for (const a of arrays) a.fill(1);
  const gained = (anonHugeKiB() - before) * 1024;
  if (gained === 0 && thpFallbacks() > fallbacks) return t.skip('the kernel had no free huge pages (thp_fault_fallback grew)');
  assert.ok(gained >= 4 * HUGE_PAGE_BYTES, `huge pages mapped: ${gained} bytes`);
  assert.equal(arrays[0]![2_999_999], 1);
});

test("the tables' values do not depend on their layout: the seeded stream, table after table", () => {
  const raw = {
    name: 'layout',
    data: { train: 'unused', columns: { labels: { click: 'click' } } },
    features: Array.from({ length: 12 }, (_, i) => ({ name: `f${i}`, buckets: 8_000 + i })),
    tasks: [{ name: 'ctr', label: 'click' }],
    model: { type: 'resflow', embedding_dim: 16, hidden: [8], activation: 'relu' },
    runtime: { seed: 11 },
  };
  const issues: SchemaIssue[] = [];
  const config = validate(experimentSchema, raw, [], issues) as ExperimentConfig;
  assert.deepEqual(issues, []);
  const { tables } = buildBundle(config).tables;
  const bytes = tables.reduce((s, t) => s + t.weights.byteLength, 0);
  assert.ok(bytes >= ARENA_MIN_BYTES, `${bytes} bytes of weights take the arena path`);
  assert.equal(new Set(tables.map((t) => t.weights.buffer)).size, 1, 'one arena');
  // Independently: the same stream (seed, stream 1) into separate arrays.
  const rng = new Rng(11, 1);
  for (const t of tables) {
    const expected = new Float32Array(t.weights.length);
    rng.fillSymmetric(expected, 0.05);
    assert.deepEqual(new Uint32Array(t.weights.buffer, t.weights.byteOffset, t.weights.length), new Uint32Array(expected.buffer));
  }
});
