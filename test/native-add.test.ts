/**
 * The native element-wise add (native/src/add.cc) and the wasm Add kernel built on it
 * (src/kernels/native-add.ts): sums against values worked out by hand and against float32
 * rounding of the exact sum, the same bits on any thread count, and tfjs's own Add (with the kernel
 * restored) for what it handles; what it does not handle reaches the kernel it replaced. Skipped,
 * with the reason, without the addon or on a build before version 5.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { loadAddon, addonUnavailableReason } from '../src/kernels/addon.js';
import { NATIVE_MATMUL, nativeMatmulThreads, registerNativeMatmulKernels } from '../src/kernels/native-matmul.js';
import { NATIVE_ADD_MIN_SIZE } from '../src/kernels/native-add.js';
import { currentOwner, restoreKernel } from '../src/kernels/overrides.js';
import { assertSameBits, randomFloats } from './helpers/bits.js';

const native = loadAddon();
const skip = native === null ? `native addon not available: ${addonUnavailableReason()}` : native.addArrays === undefined ? `native build ${native.info().version} predates addArrays (version 5)` : false;

before(async () => {
  await initBackend('wasm');
});

test('addArrays: sums worked by hand (signed zeros, infinities, overflow, rounding), in place, on 1-3 threads', { skip }, () => {
  const add = native!.addArrays!;
  const a = new Float32Array([1.5, -0, -0, 0, Infinity, Infinity, 3.4e38, 1, NaN, -2.5]);
  const b = new Float32Array([2.25, -0, 0, -0, -Infinity, 1, 3.4e38, 2 ** -24, 1, 2.5]);
  // 1 + 2^-24 lies halfway between 1 and the next float32: ties to even gives 1; -2.5 + 2.5 is +0.
  const expected = [3.75, -0, 0, 0, NaN, Infinity, Infinity, 1, NaN, 0];
  const out = new Float32Array(a.length).fill(7);
  add(a, b, out);
  expected.forEach((e, i) => assert.ok(Object.is(out[i], e), `element ${i}: ${out[i]} vs ${e}`));

  // 100,003 random values (ranges of 16-float multiples and a ragged end): float32 rounding of
  // the sum computed in double (exact for two float32s' sum rounded once more: 53 >= 2 x 24 + 2).
  const n = 100_003;
  const x = randomFloats(n, 1);
  const y = randomFloats(n, 2).map((v, i) => (i % 89 === 0 ? -x[i]! : v * 2 ** ((i % 40) - 20)));
  const want = Float32Array.from(x, (v, i) => Math.fround(v + y[i]!));
  for (const threads of [1, 2, 3]) {
    const got = new Float32Array(n).fill(NaN);
    add(x, y, got, threads);
    assertSameBits(got, want, `${threads} threads`);
  }
  const inPlace = Float32Array.from(x);
  add(inPlace, y, inPlace, 2);
  assertSameBits(inPlace, want, 'out = a');
  const shared = new Float32Array(n + 1);
  assert.throws(() => add(shared.subarray(0, n), y, shared.subarray(1)), /overlap/);
  assert.throws(() => add(x, y.subarray(1), new Float32Array(n)), /needs at least/);
});

test('the wasm Add kernel adds large same-shape float32 tensors natively, with tfjs\'s bits; broadcasts, small and int32 adds go to tfjs', { skip }, () => {
  assert.equal(currentOwner('Add', 'wasm'), NATIVE_MATMUL);
  const add = native!.addArrays!;
  let nativeCalls = 0;
  native!.addArrays = (...args) => {
    nativeCalls++;
    add(...args);
  };
  const cases: [string, number[], number[], tf.DataType, boolean][] = [
    ['[1024, 64] + [1024, 64]', [1024, 64], [1024, 64], 'float32', true],
    ['[4, 256, 64] + [4, 256, 64]', [4, 256, 64], [4, 256, 64], 'float32', true],
    ['[1024, 64] + [64] (broadcast)', [1024, 64], [64], 'float32', false],
    ['[1024, 64] + [1024, 1] (broadcast)', [1024, 64], [1024, 1], 'float32', false],
    [`[${NATIVE_ADD_MIN_SIZE - 1}] (below the size)`, [NATIVE_ADD_MIN_SIZE - 1], [NATIVE_ADD_MIN_SIZE - 1], 'float32', false],
    ['int32 [1024, 64]', [1024, 64], [1024, 64], 'int32', false],
  ];
  try {
    let seed = 10;
    for (const [what, sa, sb, dtype, nativeExpected] of cases) {
      const size = (s: number[]) => s.reduce((p, d) => p * d, 1);
      const av = randomFloats(size(sa), seed++).map((v) => (dtype === 'int32' ? Math.round(v * 1000) : v));
      const bv = randomFloats(size(sb), seed++).map((v) => (dtype === 'int32' ? Math.round(v * 1000) : v));
      const run = () => tf.tidy(() => Float32Array.from(tf.add(tf.tensor(av, sa, dtype), tf.tensor(bv, sb, dtype)).dataSync()));
      const before = nativeCalls;
      const got = run();
      assert.equal(nativeCalls - before, nativeExpected ? 1 : 0, `${what}: native add ran`);
      restoreKernel('Add', 'wasm', NATIVE_MATMUL);
      let tfjs: Float32Array;
      try {
        assert.equal(currentOwner('Add', 'wasm'), null);
        tfjs = run();
      } finally {
        registerNativeMatmulKernels(native!, { threads: nativeMatmulThreads() });
      }
      assertSameBits(got, tfjs, `${what}: against tfjs's Add`);
      // and the sums themselves (broadcasting b over a's rows where b is smaller)
      const bAt = (i: number) => (size(sb) === size(sa) ? bv[i]! : sb.length === 1 ? bv[i % sb[0]!]! : bv[Math.floor(i / sa[sa.length - 1]!)]!);
      for (let i = 0; i < got.length; i += 101) assert.equal(got[i], Math.fround(av[i]! + bAt(i)), `${what}: element ${i}`);
    }
  } finally {
    native!.addArrays = add;
  }
});
