/**
 * Optional native matmul for the `wasm` backend (native/README.md).
 *
 * native/ holds an N-API addon with a blocked single-precision GEMM (register-blocked AVX-512 /
 * AVX2 micro-kernel, packing, K blocking, a small thread pool); `npm run prepare` tries to build it
 * (scripts/build-native.mjs) and carries on without it when it cannot. This module loads it when
 * it is there and works, and registers tfjs kernels for `BatchMatMul` and `_FusedMatMul` on the
 * `wasm` backend that run it directly on the tensors' bytes in the wasm heap (no copies). Anything
 * it does not handle (non-float32, a batch broadcast that tfjs flattens differently, a bias that
 * does not broadcast) goes to the kernel that was registered before, and so does any failure.
 *
 * Results match tfjs's own kernels to float rounding (a different summation order), and do not
 * depend on the thread count: each output element is always summed in the same order.
 *
 * Environment: RESFLOW_NO_NATIVE=1 makes loadNativeMatmul() return null.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { quietlySync } from './tf-quiet.js';

/** What the addon's info() returns. */
export interface NativeMatmulInfo {
  /** Instruction set of the micro-kernel: 'avx512', 'avx2', 'avx', 'sse', 'neon' or 'generic'. */
  simd: string;
  vectorBytes: number;
  /** Micro-kernel rows x columns. */
  mr: number;
  nr: number;
  /** Largest K and M blocks. */
  kc: number;
  mc: number;
  /** Most threads one call may use. */
  maxThreads: number;
  /** Threads the machine has (capped at maxThreads): the default for sgemm. */
  threads: number;
  hardwareThreads: number;
  compiler: string;
  version: string;
}

export interface NativeMatmul {
  /**
   * C[M,N] = op(A)·op(B), row-major; op transposes when its flag is set. A holds M*K floats
   * ([M,K], or [K,M] when transA), B K*N ([K,N] or [N,K]); C (M*N floats, written in place) must
   * not overlap them. Views into wasm memory are fine. Throws on bad arguments.
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    A: Float32Array,
    B: Float32Array,
    C: Float32Array,
    threads?: number,
    /** Added to every row of C (N floats), or null. */
    bias?: Float32Array | null,
    /** Applied after the bias: 0 none, 1 relu. */
    activation?: number,
  ): void;
  info(): NativeMatmulInfo;
  /** The .node file it was loaded from. */
  readonly path: string;
  /** The module's exports, for its other kernels (src/models/sparse-kernels.ts). */
  readonly exports: Readonly<Record<string, unknown>>;
}

const MODULE_FILE = path.join('native', 'build', 'Release', 'resflow_native.node');
const STAMP_FILE = path.join('native', 'build', 'Release', 'resflow_native.json');

let loaded: { native: NativeMatmul | null; reason: string } | null = null;

/** The package root (the folder with resflow's package.json), searched upwards from this file. */
function packageRoot(): string | null {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 8; i++) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, 'utf8')) as { name?: string }).name === 'resflow') return dir;
      } catch {
        /* not ours */
      }
    }
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return null;
}

/**
 * A module built with -march=native runs only on a CPU with the build CPU's instruction sets;
 * on another it would die of SIGILL (which cannot be caught). The build records the build CPU's
 * flags; refuse the module if this CPU lacks any (Linux; elsewhere there is nothing to compare).
 */
function cpuMismatch(stampPath: string): string | null {
  if (!existsSync(stampPath)) return null;
  let stamp: { cpuFlags?: unknown };
  try {
    stamp = JSON.parse(readFileSync(stampPath, 'utf8')) as { cpuFlags?: unknown };
  } catch {
    return 'its build record is unreadable';
  }
  if (!Array.isArray(stamp.cpuFlags) || process.platform !== 'linux') return null;
  let line: string | undefined;
  try {
    line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => /^(flags|Features)\s*:/.test(l));
  } catch {
    return null;
  }
  if (line === undefined) return null;
  const have = new Set(line.split(':')[1]!.trim().split(/\s+/));
  const missing = (stamp.cpuFlags as unknown[]).filter((f) => typeof f === 'string' && !have.has(f));
  return missing.length ? `built for a CPU with ${missing.slice(0, 4).join(', ')}${missing.length > 4 ? ', ...' : ''}, which this one lacks` : null;
}

/** A quick check that the module multiplies correctly and deterministically; null when it does. */
function selfCheck(native: NativeMatmul): string | null {
  // Small integers: every product and sum is exact in float32, so the answer must be exact.
  const M = 13, N = 37, K = 19;
  const A = new Float32Array(M * K).map((_, i) => ((i * 7919) % 13) - 6);
  const B = new Float32Array(K * N).map((_, i) => ((i * 104729) % 11) - 5);
  const C = new Float32Array(M * N);
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    C.fill(NaN);
    native.sgemm(ta, tb, M, N, K, A, B, C, 1);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += (ta ? A[k * M + i]! : A[i * K + k]!) * (tb ? B[j * K + k]! : B[k * N + j]!);
        if (C[i * N + j] !== s) return `wrong product (transA=${ta}, transB=${tb}) at [${i},${j}]: ${C[i * N + j]} != ${s}`;
      }
    }
  }
  // Large enough for the threaded path: 1 and 2 threads must agree bit for bit.
  const n = 160;
  const X = new Float32Array(n * n).map((_, i) => Math.sin(i) * 0.5);
  const Y = new Float32Array(n * n).map((_, i) => Math.cos(i * 0.7) * 0.5);
  const C1 = new Float32Array(n * n);
  const C2 = new Float32Array(n * n);
  native.sgemm(false, true, n, n, n, X, Y, C1, 1);
  native.sgemm(false, true, n, n, n, X, Y, C2, 2);
  for (let i = 0; i < C1.length; i++) {
    if (!Object.is(C1[i], C2[i])) return `1 and 2 threads disagree at ${i}`;
  }
  return null;
}

/**
 * Loads native/build/Release/resflow_native.node once per process. Null (with the reason in
 * nativeMatmulUnavailableReason()) when RESFLOW_NO_NATIVE=1, when it is not built, was built for
 * a CPU with instruction sets this one lacks, fails to load, or fails a quick self-check.
 */
export function loadNativeMatmul(): NativeMatmul | null {
  if (loaded !== null) return loaded.native;
  const fail = (reason: string): null => {
    loaded = { native: null, reason };
    return null;
  };
  if (process.env['RESFLOW_NO_NATIVE'] === '1') return fail('RESFLOW_NO_NATIVE=1');
  const root = packageRoot();
  if (root === null) return fail("resflow's package folder not found");
  const file = path.join(root, MODULE_FILE);
  if (!existsSync(file)) return fail('not built (npm run prepare builds it)');
  const mismatch = cpuMismatch(path.join(root, STAMP_FILE));
  if (mismatch !== null) return fail(`${mismatch}; rebuild with npm run prepare`);
  let mod: { sgemm?: unknown; info?: unknown } & Record<string, unknown>;
  try {
    mod = createRequire(import.meta.url)(file) as { sgemm?: unknown; info?: unknown } & Record<string, unknown>;
  } catch (e) {
    return fail(`failed to load: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
  }
  if (typeof mod.sgemm !== 'function' || typeof mod.info !== 'function') return fail('the module lacks sgemm/info');
  const native: NativeMatmul = {
    sgemm: mod.sgemm as NativeMatmul['sgemm'],
    info: mod.info as NativeMatmul['info'],
    path: file,
    exports: mod,
  };
  let problem: string | null;
  try {
    problem = selfCheck(native);
  } catch (e) {
    problem = e instanceof Error ? e.message : String(e);
  }
  if (problem !== null) return fail(`self-check failed: ${problem}`);
  loaded = { native, reason: '' };
  return native;
}

/** Why loadNativeMatmul() returned null ('' when it loaded, or before the first call). */
export function nativeMatmulUnavailableReason(): string {
  return loaded?.reason ?? '';
}

// ---------------------------------------------------------------------------------------------
// tfjs kernels
// ---------------------------------------------------------------------------------------------

/** The parts of tfjs-backend-wasm's BackendWasm used here. */
interface WasmBackendLike {
  wasm: { HEAPU8: Uint8Array };
  dataIdMap: { get(dataId: object): { memoryOffset: number | null } | undefined };
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  disposeData(dataId: object, force?: boolean): boolean;
}

const MATMUL_KERNELS = ['BatchMatMul', '_FusedMatMul'] as const;
type MatMulKernel = (typeof MATMUL_KERNELS)[number];

/** Kernel functions registered here (for idempotence and for telling them apart). */
const ourKernels = new WeakSet<tf.KernelFunc>();
/** The kernels that ours replaced, for unregisterNativeMatmulKernels(). */
const previous = new Map<MatMulKernel, tf.KernelConfig>();
/**
 * What our kernels fall back to: the kernels they last replaced. Kept after unregistering, in
 * case something still calls our function (e.g. a wrapper registered on top of ours).
 */
const fallbackKernels = new Map<MatMulKernel, tf.KernelConfig>();
let current: NativeMatmul | null = null;
let threads = 1;

const stats = { calls: 0, fallbacks: 0, errors: 0, lastError: '' };

/** Counts since the process started: calls run natively, calls passed to the previous kernel, native errors. */
export function nativeMatmulStats(): { calls: number; fallbacks: number; errors: number; lastError: string } {
  return { ...stats };
}

/** Whether `f` is one of the kernel functions registered by this module. */
export function isNativeMatmulKernel(f: tf.KernelFunc | undefined): boolean {
  return f !== undefined && ourKernels.has(f);
}

/** Whether the native kernels are the registered wasm matmul kernels now. */
export function nativeMatmulRegistered(): boolean {
  return MATMUL_KERNELS.every((name) => isNativeMatmulKernel(lookupKernel(name)?.kernelFunc));
}

/** Threads each native matmul may use (results do not depend on it). */
export function nativeMatmulThreads(): number {
  return threads;
}

function lookupKernel(name: string): tf.KernelConfig | undefined {
  return (tf.getKernel(name, 'wasm') as tf.KernelConfig | undefined) ?? undefined;
}

function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** numpy broadcast of two shapes, or null when they do not broadcast. */
function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | null {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return null;
    out[i] = x === 1 ? y : x;
  }
  return out;
}

interface Plan {
  M: number;
  N: number;
  K: number;
  /** Output batch size, and per output batch the batch of a and of b (null: the same index). */
  batch: number;
  batchA: number;
  batchB: number;
  indexA: Int32Array | null;
  indexB: Int32Array | null;
  outShape: number[];
}

/**
 * Per output batch (row-major over `outer`), the flat batch index of an operand with outer shape
 * `shape` under numpy broadcasting; null when that is the identity.
 */
function batchIndex(outer: readonly number[], shape: readonly number[], batch: number): Int32Array | null {
  const R = outer.length;
  const aligned = [...new Array<number>(R - shape.length).fill(1), ...shape];
  const strides = new Array<number>(R);
  let s = 1;
  for (let i = R - 1; i >= 0; i--) {
    strides[i] = aligned[i] === 1 ? 0 : s;
    s *= aligned[i]!;
  }
  const out = new Int32Array(batch);
  const idx = new Array<number>(R).fill(0);
  let base = 0;
  let identity = true;
  for (let b = 0; b < batch; b++) {
    out[b] = base;
    if (base !== b) identity = false;
    for (let d = R - 1; d >= 0; d--) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < outer[d]!) break;
      base -= strides[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
  return identity ? null : out;
}

/**
 * The product's dimensions, or null when the native path does not take it: non-float32 inputs,
 * rank < 2, mismatched inner dimensions (the previous kernel then throws tfjs's own error), or
 * batch dimensions whose numpy broadcast differs from what tfjs's kernels compute (they index
 * flattened batches as bi % batchA; e.g. [3,1] against [1,2] differs, [2,3] against [3] does not).
 */
function plan(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): Plan | null {
  if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
  const ra = a.shape.length;
  const rb = b.shape.length;
  if (ra < 2 || rb < 2) return null;
  const M = transposeA ? a.shape[ra - 1]! : a.shape[ra - 2]!;
  const Ka = transposeA ? a.shape[ra - 2]! : a.shape[ra - 1]!;
  const Kb = transposeB ? b.shape[rb - 1]! : b.shape[rb - 2]!;
  const N = transposeB ? b.shape[rb - 2]! : b.shape[rb - 1]!;
  if (Ka !== Kb) return null;
  if (![M, N, Ka].every((d) => Number.isInteger(d) && d >= 0 && d < 2 ** 31)) return null;
  const outerA = a.shape.slice(0, -2);
  const outerB = b.shape.slice(0, -2);
  const outer = broadcastShapes(outerA, outerB);
  if (outer === null) return null;
  const batchA = sizeOf(outerA);
  const batchB = sizeOf(outerB);
  const batch = sizeOf(outer);
  const plain = { M, N, K: Ka, batch, batchA, batchB, indexA: null, indexB: null, outShape: [...outer, M, N] };
  if (batch <= 1 || ((batchA === batch || batchA === 1) && (batchB === batch || batchB === 1))) {
    return {
      ...plain,
      indexA: batchA === 1 && batch > 1 ? new Int32Array(batch) : null,
      indexB: batchB === 1 && batch > 1 ? new Int32Array(batch) : null,
    };
  }
  const indexA = batchIndex(outer, outerA, batch);
  const indexB = batchIndex(outer, outerB, batch);
  for (let i = 0; i < batch; i++) {
    if ((indexA ? indexA[i]! : i) !== i % batchA || (indexB ? indexB[i]! : i) !== i % batchB) return null;
  }
  return { ...plain, indexA, indexB };
}

/**
 * A Float32Array over a tensor's bytes in the wasm heap. Derive views only after the last
 * allocation of the kernel: growing wasm memory detaches the old ArrayBuffer.
 */
function heapView(be: WasmBackendLike, t: tf.TensorInfo, size: number): Float32Array {
  const buffer = be.wasm.HEAPU8.buffer;
  const offset = be.dataIdMap.get(t.dataId)?.memoryOffset;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0 || offset % 4 !== 0) {
    throw new Error(`native matmul: tensor has no usable wasm memory offset (${String(offset)})`);
  }
  if (offset + size * 4 > buffer.byteLength) {
    throw new Error(`native matmul: tensor [${t.shape}] at ${offset} runs past the wasm heap (${buffer.byteLength} bytes)`);
  }
  return new Float32Array(buffer, offset, size);
}

/**
 * A Float32Array over a float32 tensor's data where it lives in the wasm backend's heap (writes go
 * to the tensor), or null when the active backend is not wasm or the tensor is not there. Take it
 * after the last allocation of the caller: a growing wasm heap detaches older views.
 */
export function wasmFloat32View(t: tf.Tensor): Float32Array | null {
  if (tf.getBackend() !== 'wasm' || t.dtype !== 'float32' || t.isDisposed) return null;
  const be = tf.backend() as unknown as WasmBackendLike;
  if (be?.wasm?.HEAPU8 === undefined || !viewable(be, t)) return null;
  return heapView(be, t, t.size);
}

/** Whether a tensor's data can be viewed (it lives in the wasm heap at a float-aligned offset). */
function viewable(be: WasmBackendLike, t: tf.TensorInfo): boolean {
  const offset = be.dataIdMap.get(t.dataId)?.memoryOffset;
  return typeof offset === 'number' && Number.isInteger(offset) && offset >= 0 && offset % 4 === 0;
}

/** C = act(op(A)·op(B) + bias) for every batch (batch dims of size 1 broadcast). */
function runGemm(
  native: NativeMatmul,
  p: Plan,
  A: Float32Array,
  B: Float32Array,
  C: Float32Array,
  transposeA: boolean,
  transposeB: boolean,
  bias: Float32Array | null = null,
  activation = 0,
): void {
  const { M, N, K } = p;
  if (p.batch === 1) {
    native.sgemm(transposeA, transposeB, M, N, K, A, B, C, threads, bias, activation);
    return;
  }
  const sa = M * K;
  const sb = K * N;
  const sc = M * N;
  for (let i = 0; i < p.batch; i++) {
    const ai = p.indexA ? p.indexA[i]! : i;
    const bi = p.indexB ? p.indexB[i]! : i;
    native.sgemm(
      transposeA,
      transposeB,
      M,
      N,
      K,
      A.subarray(ai * sa, ai * sa + sa),
      B.subarray(bi * sb, bi * sb + sb),
      C.subarray(i * sc, i * sc + sc),
      threads,
      bias,
      activation,
    );
  }
}

/**
 * For an operand broadcast against `outShape` (numpy rules, operand rank <= output rank): per
 * output row (all dimensions but the last), the operand's offset, and its step along the last
 * dimension (0 or 1). Null when it does not broadcast.
 */
function broadcastRows(outShape: readonly number[], opShape: readonly number[]): { rowBase: Int32Array | Float64Array; step: number } | null {
  const R = outShape.length;
  if (opShape.length > R) return null;
  const aligned = [...new Array<number>(R - opShape.length).fill(1), ...opShape];
  for (let i = 0; i < R; i++) if (aligned[i] !== 1 && aligned[i] !== outShape[i]) return null;
  const strides = new Array<number>(R);
  let s = 1;
  for (let i = R - 1; i >= 0; i--) {
    strides[i] = aligned[i] === 1 ? 0 : s;
    s *= aligned[i]!;
  }
  const N = outShape[R - 1]!;
  const rows = N === 0 ? 0 : sizeOf(outShape) / N;
  const rowBase = s < 2 ** 31 ? new Int32Array(rows) : new Float64Array(rows);
  // Mixed-radix counter over the leading R-1 dimensions.
  const idx = new Array<number>(Math.max(0, R - 1)).fill(0);
  let base = 0;
  for (let r = 0; r < rows; r++) {
    rowBase[r] = base;
    for (let d = R - 2; d >= 0; d--) {
      idx[d]!++;
      base += strides[d]!;
      if (idx[d]! < outShape[d]!) break;
      base -= strides[d]! * idx[d]!;
      idx[d] = 0;
    }
  }
  return { rowBase, step: strides[R - 1]! };
}

/** Whether a bias of this shape is one value per output column, the same for every row ([N], [1, N], ...). */
function isRowVector(shape: readonly number[], N: number): boolean {
  return shape.length >= 1 && shape[shape.length - 1] === N && shape.every((d, i) => i === shape.length - 1 || d === 1);
}

type Activation = 'linear' | 'relu' | 'relu6' | 'prelu' | 'leakyrelu' | 'sigmoid' | 'elu';
const ACTIVATIONS = new Set<string>(['linear', 'relu', 'relu6', 'prelu', 'leakyrelu', 'sigmoid', 'elu']);

/**
 * out = act(out + bias), in place, with tfjs cpu's formulas (computed in double, stored as
 * float32, as the cpu backend does).
 */
function epilogue(
  out: Float32Array,
  N: number,
  bias: { vals: Float32Array; rows: { rowBase: Int32Array | Float64Array; step: number } } | null,
  act: Activation,
  prelu: { vals: Float32Array; rows: { rowBase: Int32Array | Float64Array; step: number } } | null,
  alpha: number,
): void {
  const rows = N === 0 ? 0 : out.length / N;
  if (bias !== null) {
    const { vals, rows: br } = bias;
    for (let r = 0; r < rows; r++) {
      const o = r * N;
      const b0 = br.rowBase[r]!;
      if (br.step === 1) for (let j = 0; j < N; j++) out[o + j]! += vals[b0 + j]!;
      else {
        const bv = vals[b0]!;
        for (let j = 0; j < N; j++) out[o + j]! += bv;
      }
    }
  }
  const n = out.length;
  switch (act) {
    case 'linear':
      return;
    case 'relu':
      for (let i = 0; i < n; i++) out[i] = Math.max(0, out[i]!);
      return;
    case 'relu6':
      for (let i = 0; i < n; i++) out[i] = Math.min(Math.max(0, out[i]!), 6);
      return;
    case 'leakyrelu':
      for (let i = 0; i < n; i++) {
        const x = out[i]!;
        out[i] = x < 0 ? alpha * x : x;
      }
      return;
    case 'sigmoid':
      for (let i = 0; i < n; i++) out[i] = 1 / (1 + Math.exp(-out[i]!));
      return;
    case 'elu':
      for (let i = 0; i < n; i++) {
        const x = out[i]!;
        out[i] = x >= 0 ? x : Math.exp(x) - 1;
      }
      return;
    case 'prelu': {
      const { vals, rows: pr } = prelu!;
      for (let r = 0; r < rows; r++) {
        const o = r * N;
        const p0 = pr.rowBase[r]!;
        for (let j = 0; j < N; j++) {
          const x = out[o + j]!;
          if (x < 0) out[o + j] = vals[p0 + j * pr.step]! * x;
        }
      }
      return;
    }
  }
}

interface MatMulAttrs {
  transposeA?: boolean;
  transposeB?: boolean;
  activation?: string;
  leakyreluAlpha?: number;
}

function makeKernel(name: MatMulKernel): tf.KernelFunc {
  const fused = name === '_FusedMatMul';
  const kernelFunc: tf.KernelFunc = (args) => {
    const prev = fallbackKernels.get(name);
    const native = current;
    const fallback = () => {
      if (prev === undefined) throw new Error(`native matmul: no previous ${name} kernel to fall back to`);
      stats.fallbacks++;
      return prev.kernelFunc(args);
    };
    if (native === null) return fallback();
    const be = args.backend as unknown as WasmBackendLike;
    const inputs = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo; bias?: tf.TensorInfo | null; preluActivationWeights?: tf.TensorInfo | null };
    const attrs = (args.attrs ?? {}) as MatMulAttrs;
    const transposeA = attrs.transposeA === true;
    const transposeB = attrs.transposeB === true;
    const { a, b } = inputs;
    if (a == null || b == null || be?.wasm?.HEAPU8 === undefined || typeof be.makeOutput !== 'function') return fallback();
    const p = plan(a, b, transposeA, transposeB);
    if (p === null || !viewable(be, a) || !viewable(be, b)) return fallback();

    let act: Activation = 'linear';
    const bias = fused ? inputs.bias ?? null : null;
    const preluW = fused ? inputs.preluActivationWeights ?? null : null;
    let biasRows: ReturnType<typeof broadcastRows> = null;
    let preluRows: ReturnType<typeof broadcastRows> = null;
    if (fused) {
      const actName = attrs.activation ?? 'linear';
      if (!ACTIVATIONS.has(actName)) return fallback();
      act = actName as Activation;
      if (bias !== null) {
        if (bias.dtype !== 'float32' || !viewable(be, bias)) return fallback();
        biasRows = broadcastRows(p.outShape, bias.shape);
        if (biasRows === null) return fallback();
      }
      if (act === 'prelu') {
        if (preluW === null || preluW.dtype !== 'float32' || !viewable(be, preluW)) return fallback();
        preluRows = broadcastRows(p.outShape, preluW.shape);
        if (preluRows === null) return fallback();
      }
    }

    // The addon applies a per-column bias and relu itself, block by block while C is in cache;
    // other epilogues run in JS after the product.
    const nativeEpilogue = fused && (act === 'linear' || act === 'relu') && (bias === null || isRowVector(bias.shape, p.N));
    const sizeA = p.batchA * p.M * p.K;
    const sizeB = p.batchB * p.K * p.N;
    // The one allocation; every heap view is taken after it.
    const out = be.makeOutput(p.outShape, 'float32');
    try {
      const C = heapView(be, out, p.batch * p.M * p.N);
      const A = heapView(be, a, sizeA);
      const B = heapView(be, b, sizeB);
      if (nativeEpilogue) {
        const biasVals = bias !== null ? heapView(be, bias, p.N) : null;
        runGemm(native, p, A, B, C, transposeA, transposeB, biasVals, act === 'relu' ? 1 : 0);
      } else runGemm(native, p, A, B, C, transposeA, transposeB);
      if (fused && !nativeEpilogue && (bias !== null || act !== 'linear')) {
        epilogue(
          C,
          p.N,
          bias !== null ? { vals: heapView(be, bias, sizeOf(bias.shape)), rows: biasRows! } : null,
          act,
          preluW !== null && act === 'prelu' ? { vals: heapView(be, preluW, sizeOf(preluW.shape)), rows: preluRows! } : null,
          attrs.leakyreluAlpha ?? 0.2,
        );
      }
    } catch (e) {
      be.disposeData(out.dataId, true);
      stats.errors++;
      stats.lastError = e instanceof Error ? e.message : String(e);
      return fallback();
    }
    stats.calls++;
    return out;
  };
  ourKernels.add(kernelFunc);
  return kernelFunc;
}


/**
 * Registers the native kernels as the wasm backend's BatchMatMul and _FusedMatMul, keeping the
 * kernels they replace (tfjs's, or resflow's transposing wrappers from backend.ts) to fall back
 * to and to restore. Call it after registerWasmKernels(). Idempotent (a second call only updates
 * `threads`). Returns false, registering nothing, when the wasm kernels are not registered.
 * Works before or after the wasm backend is initialised (the replaced kernels' setupFunc is kept).
 */
export function registerNativeMatmulKernels(native: NativeMatmul, opts: { threads?: number | null } = {}): boolean {
  const wanted = opts.threads ?? Math.min(os.availableParallelism(), native.info().maxThreads);
  if (!Number.isInteger(wanted) || wanted < 1) throw new Error(`native matmul threads must be a positive integer, got ${wanted}`);
  if (MATMUL_KERNELS.some((name) => lookupKernel(name) === undefined)) return false;
  threads = Math.min(wanted, 64);
  current = native;
  quietlySync(() => {
    for (const name of MATMUL_KERNELS) {
      const k = lookupKernel(name)!;
      if (ourKernels.has(k.kernelFunc)) continue;
      previous.set(name, k);
      fallbackKernels.set(name, k);
      tf.unregisterKernel(name, 'wasm');
      tf.registerKernel({ ...k, kernelFunc: makeKernel(name) });
    }
  });
  return true;
}

/**
 * Puts back the kernels that registerNativeMatmulKernels() replaced (where ours are still the
 * registered ones). Safe to call when nothing is registered.
 */
export function unregisterNativeMatmulKernels(): void {
  quietlySync(() => {
    for (const [name, prev] of previous) {
      const k = lookupKernel(name);
      if (k !== undefined && ourKernels.has(k.kernelFunc)) {
        tf.unregisterKernel(name, 'wasm');
        tf.registerKernel(prev);
      } else if (k === undefined) {
        tf.registerKernel(prev);
      }
    }
    previous.clear();
  });
}
