/**
 * The optional native matmul (src/kernels/native-matmul.ts, native/). Skipped, with the reason, when
 * the module is not built or does not load; the RESFLOW_NO_NATIVE test runs either way.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { registerWasmKernels } from '../src/kernels/wasm-kernels.js';
import { loadAddon, addonUnavailableReason, type NativeAddon } from '../src/kernels/addon.js';
import { sgemmHasResidual } from '../src/kernels/native-api.js';
import {
  registerNativeMatmulKernels,
  unregisterNativeMatmulKernels,
  nativeMatmulRegistered,
  nativeMatmulStats,
  isNativeMatmulKernel,
} from '../src/kernels/native-matmul.js';
import { Rng } from '../src/base/rng.js';
import { runOn, type BackendResult } from './helpers/backends.js';

const native: NativeAddon | null = loadAddon();
const skip = native === null ? `native matmul not available: ${addonUnavailableReason()}` : false;
/** The native module, in tests that only run when it is there. */
const nat = (): NativeAddon => native!;

const SIZES = [1, 3, 7, 17, 64, 100, 257, 1024];
const COMBOS: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

function randomValues(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.next() - 0.5;
  return out;
}

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** op(A)·op(B) in double precision. */
function reference(ta: boolean, tb: boolean, M: number, N: number, K: number, A: Float32Array, B: Float32Array): Float64Array {
  const C = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let k = 0; k < K; k++) {
      const a = ta ? A[k * M + i]! : A[i * K + k]!;
      if (a === 0) continue;
      const o = i * N;
      if (tb) for (let j = 0; j < N; j++) C[o + j]! += a * B[j * K + k]!;
      else for (let j = 0; j < N; j++) C[o + j]! += a * B[k * N + j]!;
    }
  }
  return C;
}

/** Normwise closeness: max |x - y| <= tol * max(1, max |y|) (1e-4: absolute for O(1) values, else relative). */
function assertClose(x: ArrayLike<number>, y: ArrayLike<number>, label: string, tol = 1e-4): void {
  assert.equal(x.length, y.length, `${label}: length`);
  let scale = 1;
  let worst = 0;
  for (let i = 0; i < y.length; i++) {
    scale = Math.max(scale, Math.abs(y[i]!));
    const d = Math.abs(x[i]! - y[i]!);
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
  }
  assert.ok(worst <= tol * scale, `${label}: max abs diff ${worst} > ${tol} x ${scale}`);
}



/**
 * Runs f on wasm (native kernels registered) and on cpu, compares; asserts that the native path
 * ran (at least `minCalls` native calls and no fallback) unless `expectFallback`.
 */
async function compare(label: string, f: () => tf.Tensor | tf.Tensor[], opts: { minCalls?: number; expectFallback?: boolean } = {}): Promise<BackendResult[]> {
  const s0 = nativeMatmulStats();
  const w = await runOn('wasm', f);
  const s1 = nativeMatmulStats();
  const c = await runOn('cpu', f);
  assert.equal(s1.errors, s0.errors, `${label}: native errors (${s1.lastError})`);
  if (opts.expectFallback) assert.ok(s1.fallbacks > s0.fallbacks, `${label}: expected a fallback`);
  else {
    assert.equal(s1.fallbacks, s0.fallbacks, `${label}: unexpected fallback`);
    assert.ok(s1.calls - s0.calls >= (opts.minCalls ?? 1), `${label}: native kernel not used`);
  }
  assert.equal(w.length, c.length, label);
  for (let i = 0; i < w.length; i++) {
    assert.deepEqual(w[i]!.shape, c[i]!.shape, `${label}: output ${i} shape`);
    assertClose(w[i]!.values, c[i]!.values, `${label}: output ${i}`);
  }
  return w;
}

let originalKernels: Map<string, tf.KernelFunc>;

before(async () => {
  await initBackend('wasm');
  // initBackend may have registered the native kernels already (backend.ts does when the module
  // loads): record the wasm kernels underneath them.
  unregisterNativeMatmulKernels();
  registerWasmKernels();
  originalKernels = new Map(['BatchMatMul', '_FusedMatMul'].map((n) => [n, tf.getKernel(n, 'wasm')!.kernelFunc as tf.KernelFunc]));
  if (native !== null) assert.equal(registerNativeMatmulKernels(native, { threads: 2 }), true);
});

after(() => {
  unregisterNativeMatmulKernels();
});

test('RESFLOW_NO_NATIVE=1: loadAddon() returns null and says why', () => {
  const mod = fileURLToPath(new URL('../src/kernels/addon.js', import.meta.url));
  const out = execFileSync(
    process.execPath,
    ['--input-type=module', '-e', `import { loadAddon, addonUnavailableReason } from ${JSON.stringify(mod)}; console.log(JSON.stringify([loadAddon(), addonUnavailableReason()]));`],
    { env: { ...process.env, RESFLOW_NO_NATIVE: '1' }, encoding: 'utf8' },
  );
  assert.deepEqual(JSON.parse(out), [null, 'RESFLOW_NO_NATIVE=1']);
});

test('native: info() describes the kernel', { skip }, () => {
  const info = nat().info();
  assert.equal(typeof info.simd, 'string');
  assert.ok(info.mr >= 1 && info.nr >= 1 && info.kc >= 1 && info.threads >= 1, JSON.stringify(info));
});

test('native sgemm: argument checks', { skip }, () => {
  const { sgemm } = nat();
  const A = new Float32Array(6);
  const B = new Float32Array(6);
  const C = new Float32Array(4);
  assert.throws(() => sgemm(false, false, 2, 2, 3, A, B, new Float32Array(3)), RangeError);
  assert.throws(() => sgemm(false, false, 2, 2, 3, new Float32Array(5), B, C), RangeError);
  assert.throws(() => sgemm(false, false, 2, 2, 3, A, new Float32Array(5), C), RangeError);
  assert.throws(() => sgemm(false, false, 2.5, 2, 3, A, B, C), RangeError);
  assert.throws(() => sgemm(false, false, -1, 2, 3, A, B, C), RangeError);
  assert.throws(() => sgemm(false, false, 2, 2, 3, A, B, C, 0), RangeError);
  assert.throws(() => sgemm(false, false, 2, 2, 3, A, B, C, 65), RangeError);
  assert.throws(() => sgemm(1 as unknown as boolean, false, 2, 2, 3, A, B, C), TypeError);
  assert.throws(() => sgemm(false, false, 2, 2, 3, new Float64Array(6) as unknown as Float32Array, B, C), TypeError);
  assert.throws(() => (sgemm as unknown as (...a: unknown[]) => void)(false, false, 2, 2, 3, A, B), TypeError);
  // C overlapping A or B
  const big = new Float32Array(20);
  assert.throws(() => sgemm(false, false, 2, 2, 3, big.subarray(0, 6), B, big.subarray(4, 8)), RangeError);
  assert.throws(() => sgemm(false, false, 2, 2, 3, A, big.subarray(0, 6), big.subarray(5, 9)), RangeError);
  sgemm(false, false, 2, 2, 3, big.subarray(0, 6), B, big.subarray(6, 10)); // adjacent is fine
  // a view of a detached buffer (what a wasm memory growth does to old views)
  const ab = new ArrayBuffer(64);
  const stale = new Float32Array(ab, 0, 6);
  structuredClone(ab, { transfer: [ab] });
  assert.throws(() => sgemm(false, false, 2, 2, 3, stale, B, C), TypeError);
  // longer arrays than needed: only the first M*N elements of C are written
  const C2 = new Float32Array(6).fill(7);
  sgemm(false, false, 2, 2, 3, Float32Array.of(1, 2, 3, 4, 5, 6), Float32Array.of(1, 0, 0, 1, 1, 1), C2);
  assert.deepEqual(Array.from(C2), [4, 5, 10, 11, 7, 7]);
});

test('native sgemm: empty and K = 0 products', { skip }, () => {
  const { sgemm } = nat();
  const C = new Float32Array(6).fill(5);
  sgemm(false, false, 2, 3, 0, new Float32Array(0), new Float32Array(0), C);
  assert.deepEqual(Array.from(C), [0, 0, 0, 0, 0, 0]);
  sgemm(true, true, 0, 3, 4, new Float32Array(0), new Float32Array(12), new Float32Array(0));
  sgemm(false, false, 3, 0, 4, new Float32Array(12), new Float32Array(0), new Float32Array(0));
});

test('native sgemm matches a double-precision reference: every transpose combination, sizes 1..1024', { skip }, () => {
  const { sgemm } = nat();
  let seed = 1;
  let cases = 0;
  const shapes: [number, number, number][] = [];
  for (const M of SIZES) for (const N of SIZES) for (const K of SIZES) if (M * N * K <= 2 ** 21) shapes.push([M, N, K]);
  shapes.push([1024, 1024, 100], [1024, 257, 1024], [100, 1024, 1024]);
  for (const [M, N, K] of shapes) {
    for (const [ta, tb] of COMBOS) {
      const A = randomValues(M * K, seed++);
      const B = randomValues(K * N, seed++);
      const C = new Float32Array(M * N).fill(NaN);
      sgemm(ta, tb, M, N, K, A, B, C, 2);
      assertClose(C, reference(ta, tb, M, N, K, A, B), `sgemm M=${M} N=${N} K=${K} tA=${ta} tB=${tb}`);
      cases++;
    }
  }
  assert.ok(cases > 1000);
});

test('native sgemm: signed zeros, infinities and NaN give the sums of products started from +0.0', { skip }, () => {
  // Small integers, so every product and partial sum is exact and the order of the additions cannot
  // matter: each C[i][j] must then be the double-precision sum from +0.0, sign of zero included
  // (a -0.0 operand must not turn a zero result into -0.0, whatever path or broadcast computes it).
  const { sgemm } = nat();
  const values = [-0, 0, 1, -2, 3, -0, -0, 0.5];
  const shapes: [number, number, number][] = [
    [50, 70, 40], // the packed path, edge tiles included
    [30, 40, 800], // three K blocks
    [1, 90, 33], // M == 1: matrix-vector
    [90, 1, 33], // N == 1: matrix-vector
    [60, 45, 1], // K == 1: one product per element (the outer-product path)
    [1024, 40, 1], // the same on both threads
  ];
  let seed = 77;
  const pick = () => values[(seed = (seed * 1103515245 + 12345) >>> 0) % values.length]!;
  for (const [M, N, K] of shapes) {
    for (const [ta, tb] of COMBOS) {
      for (const special of [false, true]) {
        const A = Float32Array.from({ length: M * K }, pick);
        const B = Float32Array.from({ length: K * N }, pick);
        const ai = (i: number, k: number) => (ta ? k * M + i : i * K + k);
        const bi = (k: number, j: number) => (tb ? j * K + k : k * N + j);
        // row 0 of op(A) all -0.0 and column 0 of op(B) all 1: C[0][0] sums only -0.0 products,
        // which is +0.0 from a +0.0 start (and would be -0.0 from a -0.0 one)
        for (let k = 0; k < K; k++) A[ai(0, k)] = -0, B[bi(k, 0)] = 1;
        if (special && M > 1 && N > 2) A[ai(1, K - 1)] = Infinity, B[bi(0, N - 1)] = -Infinity, B[bi(K - 1, 1)] = NaN;
        const a = (i: number, k: number) => A[ai(i, k)]!;
        const b = (k: number, j: number) => B[bi(k, j)]!;
        for (const threads of [1, 2]) {
          const C = new Float32Array(M * N).fill(7);
          sgemm(ta, tb, M, N, K, A, B, C, threads);
          for (let i = 0; i < M; i++) {
            for (let j = 0; j < N; j++) {
              let sum = 0;
              for (let k = 0; k < K; k++) sum += a(i, k) * b(k, j);
              const got = C[i * N + j]!;
              const ok = Number.isNaN(sum) ? Number.isNaN(got) : Object.is(got, Math.fround(sum));
              if (!ok) assert.fail(`C[${i}][${j}] = ${Object.is(got, -0) ? '-0' : got}, expected ${Object.is(sum, -0) ? '-0' : sum} (M=${M} N=${N} K=${K} tA=${ta} tB=${tb} special=${special} threads=${threads})`);
            }
          }
        }
      }
    }
  }
});

test('native sgemm: 1 and 2 threads give bit-identical results', { skip }, () => {
  const { sgemm } = nat();
  const shapes: [number, number, number][] = [
    [1024, 256, 320],
    [320, 256, 1024],
    [1024, 320, 256],
    [257, 1024, 100],
    [1024, 1, 1024],
    [1, 1024, 1024],
    [1, 4000, 700],
    [3000, 1, 700],
    [100, 3000, 2000],
    [17, 17, 17],
    // Few multiply-adds but a large C (a one-wide layer's input gradient): threaded by C's size.
    [1024, 128, 1],
    [257, 300, 3],
  ];
  let seed = 500;
  for (const [M, N, K] of shapes) {
    for (const [ta, tb] of COMBOS) {
      const A = randomValues(M * K, seed++);
      const B = randomValues(K * N, seed++);
      const results = [1, 2, 3, 2, 1].map((threads) => {
        const C = new Float32Array(M * N);
        sgemm(ta, tb, M, N, K, A, B, C, threads);
        return new Uint32Array(C.buffer);
      });
      for (const r of results.slice(1)) {
        assert.ok(Buffer.compare(Buffer.from(r.buffer), Buffer.from(results[0]!.buffer)) === 0, `M=${M} N=${N} K=${K} tA=${ta} tB=${tb}: threads change the result`);
      }
    }
  }
});

test('native sgemm: a row of C has the same bits whether its rows of A are read in place or packed', { skip }, () => {
  // Full micro-kernel panels read A where it lies; a last partial panel is packed first
  // (native/README.md, "The GEMM"). Rotating the rows of op(A) moves each row between the
  // two paths; every row of C must keep its bits. M = 25: two full panels of 12 and one packed row
  // (for any panel height that does not divide 25); K = 700: two K blocks; N = 70: edge columns.
  const { sgemm } = nat();
  const [M, N, K] = [25, 70, 700];
  let seed = 900;
  for (const [ta, tb] of COMBOS) {
    const A = randomValues(M * K, seed++);
    const B = randomValues(K * N, seed++);
    for (const shift of [1, 12, 13]) {
      const at = (i: number, k: number) => (ta ? k * M + i : i * K + k);
      const rotated = new Float32Array(M * K);
      for (let i = 0; i < M; i++) for (let k = 0; k < K; k++) rotated[at((i + shift) % M, k)] = A[at(i, k)]!;
      for (const threads of [1, 2]) {
        const C = new Float32Array(M * N);
        const R = new Float32Array(M * N);
        sgemm(ta, tb, M, N, K, A, B, C, threads);
        sgemm(ta, tb, M, N, K, rotated, B, R, threads);
        for (let i = 0; i < M; i++) {
          const row = new Uint32Array(C.buffer, i * N * 4, N);
          const moved = new Uint32Array(R.buffer, ((i + shift) % M) * N * 4, N);
          assert.deepEqual(moved, row, `row ${i} moved to ${(i + shift) % M} (tA=${ta} tB=${tb} threads=${threads})`);
        }
      }
    }
  }
});

test('native sgemm epilogue: bias and relu give the bits of a separate bias add and relu', { skip }, () => {
  const { sgemm } = nat();
  const shapes: [number, number, number][] = [
    [1024, 256, 320], // the packed path, threaded
    [37, 23, 29],
    [1, 300, 40], // M == 1: matrix-vector, output as a row
    [300, 1, 40], // N == 1: matrix-vector, output as a column
    [5, 7, 0], // K == 0: the bias alone
  ];
  let seed = 900;
  for (const [M, N, K] of shapes) {
    for (const [ta, tb] of COMBOS) {
      const A = randomValues(M * K, seed++).map((x) => x * 3);
      const B = randomValues(K * N, seed++);
      const bias = randomValues(N, seed++);
      const plain = new Float32Array(M * N);
      sgemm(ta, tb, M, N, K, A, B, plain, 2);
      const withBias = Float32Array.from(plain, (c, i) => c + bias[i % N]!);
      const withRelu = withBias.map((c) => (c < 0 ? 0 : c));
      for (const threads of [1, 2]) {
        for (const [activation, expected] of [[0, withBias], [1, withRelu]] as const) {
          const C = new Float32Array(M * N).fill(NaN);
          sgemm(ta, tb, M, N, K, A, B, C, threads, bias, activation);
          const what = `M=${M} N=${N} K=${K} tA=${ta} tB=${tb} threads=${threads} activation=${activation}`;
          assert.equal(Buffer.compare(Buffer.from(C.buffer), Buffer.from(expected.buffer)), 0, what);
        }
      }
      const reluOnly = new Float32Array(M * N);
      sgemm(ta, tb, M, N, K, A, B, reluOnly, 2, null, 1);
      assert.deepEqual(Array.from(reluOnly), Array.from(plain, (c) => (c < 0 ? 0 : c)));
    }
  }
  // NaN passes through the relu (a diverging run must still be seen as one)
  const C = new Float32Array(1);
  sgemm(false, false, 1, 1, 1, Float32Array.of(NaN), Float32Array.of(1), C, 1, Float32Array.of(0), 1);
  assert.ok(Number.isNaN(C[0]));
  // argument checks
  const A = new Float32Array(6);
  const B = new Float32Array(6);
  assert.throws(() => sgemm(false, false, 2, 2, 3, A, B, new Float32Array(4), 1, new Float32Array(1)), /bias has 1 elements, needs at least 2/);
  const big = new Float32Array(8);
  assert.throws(() => sgemm(false, false, 2, 2, 3, A, B, big.subarray(0, 4), 1, big.subarray(3, 5)), /C must not overlap the bias/);
  assert.throws(() => sgemm(false, false, 2, 2, 3, A, B, new Float32Array(4), 1, null, 2), /activation must be an integer in \[0, 1\]/);
});

test('native sgemm epilogue: applied once, after the last K block, on full and edge tiles, with zeros, infinities and NaN', { skip }, () => {
  const { sgemm } = nat();
  const withResidual = sgemmHasResidual(nat());
  // K = 777 and 1,000 take 3 K blocks (the epilogue must see the finished sum, not a block's);
  // 50 x 45 leaves edge tiles in both directions, 1024 x 64 only full ones; K = 1 is an outer product.
  let seed = 4100;
  for (const [M, N, K] of [[50, 45, 777], [1024, 64, 1000], [37, 23, 29], [1024, 70, 1]] as const) {
    for (const [ta, tb] of COMBOS) {
      const A = randomValues(M * K, seed++);
      const B = randomValues(K * N, seed++);
      // A row of zeros (sums of +0, then a bias of -0 and residuals of -0), and an infinity and a NaN
      // in other rows, which reach the relu and the residual add.
      const at = (i: number, k: number) => (ta ? k * M + i : i * K + k);
      for (let k = 0; k < K; k++) A[at(0, k)] = 0;
      A[at(1, 3)] = Infinity;
      A[at(2, 5)] = NaN;
      A[at(3, 7)] = -Infinity;
      const bias = randomValues(N, seed++);
      bias[0] = -0;
      bias[1] = Infinity;
      const R = randomValues(M * N, seed++);
      R[N + 2] = -Infinity;
      R[2 * N] = -0;
      const plain = new Float32Array(M * N);
      sgemm(ta, tb, M, N, K, A, B, plain, 1);
      for (const activation of [0, 1]) {
        // the separate passes, in float32: bias add, relu (NaN stays NaN), residual add
        const biased = Float32Array.from(plain, (c, i) => c + bias[i % N]!);
        const activated = activation === 1 ? biased.map((c) => (c < 0 ? 0 : c)) : biased;
        const residualAdded = Float32Array.from(activated, (c, i) => c + R[i]!);
        for (const threads of [1, 2]) {
          const what = `M=${M} N=${N} K=${K} tA=${ta} tB=${tb} activation=${activation} threads=${threads}`;
          const C = new Float32Array(M * N).fill(NaN);
          sgemm(ta, tb, M, N, K, A, B, C, threads, bias, activation);
          assert.equal(Buffer.compare(Buffer.from(C.buffer), Buffer.from(activated.buffer)), 0, what);
          if (!withResidual) continue;
          sgemm(ta, tb, M, N, K, A, B, C.fill(NaN), threads, bias, activation, R);
          assert.equal(Buffer.compare(Buffer.from(C.buffer), Buffer.from(residualAdded.buffer)), 0, `${what} +residual`);
        }
      }
    }
  }
});

test('native sgemm works on views of wasm memory, and after it grows', { skip }, () => {
  const { sgemm } = nat();
  const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer; grow(pages: number): number } } }).WebAssembly.Memory;
  const memory = new WasmMemory({ initial: 1, maximum: 200 });
  const M = 40, N = 30, K = 20;
  const A = randomValues(M * K, 900);
  const B = randomValues(K * N, 901);
  const place = () => {
    const heap = memory.buffer;
    const a = new Float32Array(heap, 0, M * K);
    const b = new Float32Array(heap, a.byteLength, K * N);
    const c = new Float32Array(heap, a.byteLength + b.byteLength, M * N);
    a.set(A);
    b.set(B);
    return { a, b, c };
  };
  let v = place();
  sgemm(false, false, M, N, K, v.a, v.b, v.c);
  const first = Float32Array.from(v.c);
  assertClose(first, reference(false, false, M, N, K, A, B), 'wasm memory views');
  memory.grow(10); // detaches the old buffer
  assert.throws(() => sgemm(false, false, M, N, K, v.a, v.b, v.c), TypeError);
  v = place();
  sgemm(false, false, M, N, K, v.a, v.b, v.c);
  assert.deepEqual(Array.from(v.c), Array.from(first));
});

test('wasm kernels: native kernels are registered and used by tf.matMul', { skip }, () => {
  assert.equal(nativeMatmulRegistered(), true);
  assert.equal(isNativeMatmulKernel(tf.getKernel('BatchMatMul', 'wasm')!.kernelFunc as tf.KernelFunc), true);
  assert.equal(isNativeMatmulKernel(tf.getKernel('_FusedMatMul', 'wasm')!.kernelFunc as tf.KernelFunc), true);
  // idempotent
  assert.equal(registerNativeMatmulKernels(nat(), { threads: 2 }), true);
  assert.equal(nativeMatmulRegistered(), true);
});

test('wasm + native: an output that makes the wasm heap grow is still right', { skip }, async () => {
  await tf.setBackend('wasm');
  const be = tf.backend() as unknown as { wasm: { HEAPU8: Uint8Array } };
  const heapBefore = be.wasm.HEAPU8.buffer;
  // An output larger than the whole heap now: allocating it must grow the memory, which detaches
  // every view taken before the allocation.
  const N = 1024, K = 3;
  const M = Math.ceil(heapBefore.byteLength / 4 / N) + 16;
  const av = randomValues(M * K, 7001);
  const bv = randomValues(K * N, 7002);
  const s0 = nativeMatmulStats();
  const got = tf.tidy(() => tf.matMul(tf.tensor2d(av, [M, K]), tf.tensor2d(bv, [K, N])).dataSync() as Float32Array);
  assert.ok(nativeMatmulStats().calls > s0.calls);
  assert.notEqual(be.wasm.HEAPU8.buffer, heapBefore, 'the heap did not grow');
  // check a sample of rows against the reference
  for (const i of [0, 1, Math.floor(M / 2), M - 1]) {
    const ref = reference(false, false, 1, N, K, av.subarray(i * K, i * K + K), bv);
    assertClose(got.subarray(i * N, i * N + N), ref, `row ${i}`);
  }
});

test('wasm + native matMul matches cpu: every transpose combination and odd sizes', { skip }, async () => {
  let seed = 2000;
  const shapes: [number, number, number][] = [];
  for (const M of SIZES) for (const N of SIZES) for (const K of SIZES) if (M * N * K <= 2 ** 16 || (M * N * K <= 2 ** 20 && (M + N + K) % 5 === 0)) shapes.push([M, N, K]);
  shapes.push([1024, 256, 320], [1024, 128, 256]);
  for (const [M, N, K] of shapes) {
    for (const [ta, tb] of COMBOS) {
      const a = ta ? [K, M] : [M, K];
      const b = tb ? [N, K] : [K, N];
      const av = randomValues(size(a), seed++);
      const bv = randomValues(size(b), seed++);
      const [r] = await compare(`matMul M=${M} N=${N} K=${K} tA=${ta} tB=${tb}`, () => tf.matMul(tf.tensor(av, a), tf.tensor(bv, b), ta, tb));
      assert.deepEqual(r!.shape, [M, N]);
    }
  }
});

test('wasm + native matMul matches cpu: batched and broadcast batch dimensions', { skip }, async () => {
  let seed = 3000;
  const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean; out: number[] }[] = [
    { a: [4, 33, 17], b: [4, 17, 29], ta: false, tb: false, out: [4, 33, 29] },
    { a: [4, 17, 33], b: [4, 29, 17], ta: true, tb: true, out: [4, 33, 29] },
    { a: [1, 33, 17], b: [5, 17, 29], ta: false, tb: false, out: [5, 33, 29] },
    { a: [5, 33, 17], b: [1, 29, 17], ta: false, tb: true, out: [5, 33, 29] },
    { a: [3, 16, 8], b: [12, 8], ta: false, tb: true, out: [3, 16, 12] },
    { a: [16, 8], b: [3, 8, 12], ta: false, tb: false, out: [3, 16, 12] },
    { a: [2, 3, 7, 5], b: [2, 3, 5, 9], ta: false, tb: false, out: [2, 3, 7, 9] },
    { a: [2, 3, 5, 7], b: [3, 5, 9], ta: true, tb: false, out: [2, 3, 7, 9] },
    { a: [6, 100, 257], b: [6, 257, 64], ta: false, tb: false, out: [6, 100, 64] },
    { a: [2, 1, 64], b: [2, 64, 1024], ta: false, tb: false, out: [2, 1, 1024] },
    { a: [1, 2, 9, 4], b: [2, 5, 9], ta: true, tb: true, out: [1, 2, 4, 5] },
  ];
  for (const { a, b, ta, tb, out } of cases) {
    const av = randomValues(size(a), seed++);
    const bv = randomValues(size(b), seed++);
    const [r] = await compare(`matMul a=[${a}] b=[${b}] tA=${ta} tB=${tb}`, () => tf.matMul(tf.tensor(av, a), tf.tensor(bv, b), ta, tb));
    assert.deepEqual(r!.shape, out);
  }
});

test('wasm + native: a batch broadcast that tfjs flattens differently goes to the previous kernel', { skip }, async () => {
  // a [3,1,..] x b [1,2,..]: numpy broadcasting gives batch [3,2]; tfjs's kernels index the
  // flattened batches modulo their sizes. The native kernel leaves such calls to tfjs.
  const av = randomValues(3 * 4 * 5, 77);
  const bv = randomValues(2 * 5 * 6, 78);
  const s0 = nativeMatmulStats();
  const w = await runOn('wasm', () => tf.matMul(tf.tensor(av, [3, 1, 4, 5]), tf.tensor(bv, [1, 2, 5, 6])));
  const s1 = nativeMatmulStats();
  assert.ok(s1.fallbacks > s0.fallbacks);
  assert.equal(s1.calls, s0.calls);
  assert.deepEqual(w[0]!.shape, [3, 2, 4, 6]);
});

test('wasm + native: int32 matMul falls back to the previous kernel (and its error)', { skip }, async () => {
  await tf.setBackend('wasm');
  const s0 = nativeMatmulStats();
  assert.throws(() => tf.tidy(() => tf.matMul(tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32'), tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32')).dataSync()), /float32/);
  assert.ok(nativeMatmulStats().fallbacks > s0.fallbacks);
});

test('wasm + native fused matMul matches cpu: bias and every activation', { skip }, async () => {
  const M = 37, K = 29, N = 23;
  let seed = 4000;
  const activations = ['linear', 'relu', 'relu6', 'prelu', 'leakyrelu', 'sigmoid', 'elu'] as const;
  for (const [ta, tb] of COMBOS) {
    for (const activation of activations) {
      for (const biasShape of [null, [N], [1, N], [M, N], [1]] as (number[] | null)[]) {
        for (const preluShape of activation === 'prelu' ? [[N], [1], [M, N]] : [null]) {
          const a = ta ? [K, M] : [M, K];
          const b = tb ? [N, K] : [K, N];
          // scale so that relu6 clips and sigmoid/elu see large inputs too
          const av = randomValues(size(a), seed++).map((x) => x * 4);
          const bv = randomValues(size(b), seed++).map((x) => x * 4);
          const biasV = biasShape ? randomValues(size(biasShape), seed++) : null;
          const preluV = preluShape ? randomValues(size(preluShape), seed++) : null;
          await compare(`fused ${activation} bias=[${biasShape ?? '-'}] prelu=[${preluShape ?? '-'}] tA=${ta} tB=${tb}`, () =>
            tf.fused.matMul({
              a: tf.tensor2d(av, a as [number, number]),
              b: tf.tensor2d(bv, b as [number, number]),
              transposeA: ta,
              transposeB: tb,
              bias: biasV && biasShape ? tf.tensor(biasV, biasShape) : undefined,
              activation,
              preluActivationWeights: preluV && preluShape ? tf.tensor(preluV, preluShape) : undefined,
              leakyreluAlpha: 0.3,
            }),
          );
        }
      }
    }
  }
  // batched fused matmul with a rank-1 bias
  const av = randomValues(3 * 17 * 9, seed++);
  const bv = randomValues(3 * 9 * 11, seed++);
  const biasV = randomValues(11, seed++);
  const [r] = await compare('fused batched relu', () =>
    tf.fused.matMul({ a: tf.tensor3d(av, [3, 17, 9]), b: tf.tensor3d(bv, [3, 9, 11]), bias: tf.tensor1d(biasV), activation: 'relu' }),
  );
  assert.deepEqual(r!.shape, [3, 17, 11]);
});

test('wasm + native: dense-layer gradients match cpu', { skip }, async () => {
  const B = 256, I = 100, O = 64;
  const x = randomValues(B * I, 5001);
  const w = randomValues(I * O, 5002);
  const bias = randomValues(O, 5003);
  const r = randomValues(B * O, 5004);
  for (const activation of ['linear', 'relu', 'sigmoid'] as const) {
    await compare(
      `dense grads (fused, ${activation})`,
      () => {
        const f = (xt: tf.Tensor, wt: tf.Tensor, bt: tf.Tensor) =>
          tf.sum(tf.mul(tf.fused.matMul({ a: xt as tf.Tensor2D, b: wt as tf.Tensor2D, bias: bt, activation }), tf.tensor2d(r, [B, O])));
        return tf.grads(f)([tf.tensor2d(x, [B, I]), tf.tensor2d(w, [I, O]), tf.tensor1d(bias)]);
      },
      { minCalls: 3 },
    );
  }
  // two layers, unfused, as resflow's models compute them
  const w2 = randomValues(O * 1, 5005);
  await compare(
    'two-layer MLP grads',
    () => {
      const f = (xt: tf.Tensor, w1t: tf.Tensor, w2t: tf.Tensor) =>
        tf.sum(tf.sigmoid(tf.matMul(tf.relu(tf.add(tf.matMul(xt as tf.Tensor2D, w1t as tf.Tensor2D), tf.tensor1d(bias))), w2t as tf.Tensor2D)));
      return tf.grads(f)([tf.tensor2d(x, [B, I]), tf.tensor2d(w, [I, O]), tf.tensor2d(w2, [O, 1])]);
    },
    { minCalls: 5 },
  );
});

test('wasm + native: kernel results do not depend on the thread count', { skip }, async () => {
  const av = randomValues(1024 * 320, 6001);
  const bv = randomValues(320 * 256, 6002);
  const run = async (threads: number) => {
    registerNativeMatmulKernels(nat(), { threads });
    return (await runOn('wasm', () => [tf.matMul(tf.tensor2d(av, [1024, 320]), tf.tensor2d(bv, [320, 256])), tf.matMul(tf.tensor2d(av, [1024, 320]), tf.tensor2d(bv, [256, 320]), false, true)]));
  };
  try {
    const one = await run(1);
    const two = await run(2);
    for (let i = 0; i < one.length; i++) assert.deepEqual(Buffer.from(two[i]!.values.buffer), Buffer.from(one[i]!.values.buffer));
  } finally {
    registerNativeMatmulKernels(nat(), { threads: 2 });
  }
});

test('unregistering puts the previous wasm kernels back', { skip }, async () => {
  unregisterNativeMatmulKernels();
  try {
    for (const [name, f] of originalKernels) assert.equal(tf.getKernel(name, 'wasm')!.kernelFunc, f, `${name} restored`);
    assert.equal(nativeMatmulRegistered(), false);
    const s0 = nativeMatmulStats();
    await runOn('wasm', () => tf.matMul(tf.ones([64, 64]), tf.ones([64, 64])));
    assert.equal(nativeMatmulStats().calls, s0.calls, 'native kernel still used');
    unregisterNativeMatmulKernels(); // a second call is harmless
    for (const [name, f] of originalKernels) assert.equal(tf.getKernel(name, 'wasm')!.kernelFunc, f);
  } finally {
    registerNativeMatmulKernels(nat(), { threads: 2 });
  }
  assert.equal(nativeMatmulRegistered(), true);
});
