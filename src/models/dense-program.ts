/**
 * A model's scoring pass as a list of dense layers, run by the native GEMM directly on Float32Arrays:
 * no tfjs dispatch, no tensor per layer, no copy of the input into the wasm heap, and each layer's
 * bias, relu and residual add applied in the GEMM's epilogue while the block is in cache
 * (native/README.md). Scoring uses it (bundle.ts `predict`) when the native matmul is the wasm
 * backend's matmul kernel: tfjs would then call the same GEMM with the same bias and relu for each
 * layer, and add the residual with one float add per element, so the logits are the same bits.
 *
 * Buffer 0 is the input [n, inDim]; op i reads buffer `input`, writes buffer i + 1:
 *   out = act(in · W + b) + residual      (act: relu or none; b and residual optional)
 */
import * as tf from '@tensorflow/tfjs';
import { loadAddon } from '../kernels/addon.js';
import { sgemmHasResidual, type NativeAddon } from '../kernels/native-api.js';
import { nativeMatmulRegistered, nativeMatmulThreads } from '../kernels/native-matmul.js';
import { wasmFloat32View } from '../kernels/wasm-heap.js';

export interface DenseOp {
  input: number;
  W: tf.Variable;
  b: tf.Variable | null;
  relu: boolean;
  /** A buffer of the output's shape added after the activation, or null. */
  residual: number | null;
}

export interface DenseProgram {
  inDim: number;
  ops: DenseOp[];
  /** The buffer holding each task's logit (width 1), in task order. */
  logits: number[];
}

/** A program's ops and logits as a builder appends them; `add` returns the op's output buffer. */
export class ProgramBuilder {
  readonly ops: DenseOp[] = [];
  constructor(readonly inDim: number) {}
  add(op: DenseOp): number {
    this.ops.push(op);
    return this.ops.length;
  }
  build(logits: number[]): DenseProgram {
    return { inDim: this.inDim, ops: this.ops, logits };
  }
}

const scratch = new WeakMap<DenseProgram, Float32Array[]>();
const inputs = new WeakMap<DenseProgram, Float32Array>();

/**
 * A reused buffer of at least `length` floats for the program's input: a fresh 1.3 MB array per batch
 * of 1,024 costs page faults and garbage collection more than the lookup that fills it (README.md,
 * "Speed against PyTorch"). The caller overwrites it whole and reads it before the next call.
 */
export function programInput(program: DenseProgram, length: number): Float32Array {
  let x = inputs.get(program);
  if (x === undefined || x.length < length) {
    x = new Float32Array(length);
    inputs.set(program, x);
  }
  return x.subarray(0, length);
}

/** The addon, when the native forward pass gives what the tfjs scoring path gives (see above); else null. */
export function nativeScoring(): NativeAddon | null {
  if (tf.getBackend() !== 'wasm' || !nativeMatmulRegistered()) return null;
  const native = loadAddon();
  return native !== null && sgemmHasResidual(native) ? native : null;
}

/**
 * Runs the program on x ([n, inDim], row-major) and returns each task's n logits (views of reused
 * buffers: read them before the next call). Null when a weight is not in the wasm heap.
 */
export function runDenseProgram(program: DenseProgram, native: NativeAddon, x: Float32Array, n: number): Float32Array[] | null {
  const widths = [program.inDim, ...program.ops.map((op) => op.W.shape[1]!)];
  let bufs = scratch.get(program);
  if (bufs === undefined || bufs.some((b, i) => b.length < n * widths[i + 1]!)) {
    bufs = program.ops.map((_, i) => new Float32Array(n * widths[i + 1]!));
    scratch.set(program, bufs);
  }
  const buffer = (i: number) => (i === 0 ? x : bufs![i - 1]!.subarray(0, n * widths[i]!));
  const threads = nativeMatmulThreads();
  // No wasm allocation happens below, so the heap views stay valid through the calls.
  const views = program.ops.map((op) => ({ W: wasmFloat32View(op.W), b: op.b === null ? null : wasmFloat32View(op.b) }));
  if (views.some((v, i) => v.W === null || (program.ops[i]!.b !== null && v.b === null))) return null;
  program.ops.forEach((op, i) => {
    const [K, N] = op.W.shape as [number, number];
    if (widths[op.input] !== K) throw new Error(`dense program: op ${i} reads width ${widths[op.input]}, its weights take ${K}`);
    const residual = op.residual === null ? null : buffer(op.residual);
    native.sgemm(false, false, n, N, K, buffer(op.input), views[i]!.W!, buffer(i + 1), threads, views[i]!.b, op.relu ? 1 : 0, residual);
  });
  return program.logits.map((l) => buffer(l));
}
