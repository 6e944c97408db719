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
import type { NativeLookupArguments } from '../kernels/sparse-native.js';

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

/**
 * Per program, reused buffers for n rows: [the input, op 0's output, op 1's, …]. A fresh array per
 * batch (1.3 MB for the input of 1,024 rows) costs page faults and garbage collection more than the
 * work that fills it (README.md, "Speed against PyTorch").
 */
const scratch = new WeakMap<DenseProgram, Float32Array[]>();

/** Each buffer's width: the input's, then each op's output's. */
export function programWidths(program: DenseProgram): number[] {
  return [program.inDim, ...program.ops.map((op) => op.W.shape[1]!)];
}

function buffersFor(program: DenseProgram, n: number): { bufs: Float32Array[]; widths: number[] } {
  const widths = programWidths(program);
  let bufs = scratch.get(program);
  if (bufs === undefined || bufs.some((b, i) => b.length < n * widths[i]!)) {
    bufs = widths.map((w) => new Float32Array(n * w));
    scratch.set(program, bufs);
  }
  return { bufs, widths };
}

/** A reused buffer for the program's input of n rows: the caller overwrites it whole before runDenseProgram. */
export function programInput(program: DenseProgram, n: number): Float32Array {
  return buffersFor(program, n).bufs[0]!.subarray(0, n * program.inDim);
}

/** The addon, when the native forward pass gives what the tfjs scoring path gives (see above); else null. */
export function nativeScoring(): NativeAddon | null {
  if (tf.getBackend() !== 'wasm' || !nativeMatmulRegistered()) return null;
  const native = loadAddon();
  return native !== null && sgemmHasResidual(native) ? native : null;
}

/**
 * Runs the program on x ([n, inDim], row-major) and returns each task's n logits (views of reused
 * buffers: read them before the next call). Null when a weight is not in the wasm heap. With
 * `lookup`, x's embedding columns are not written yet: the first op that reads x looks them up as
 * it goes (the addon's embeddingSgemm; the same bits as a lookup first).
 */
export function runDenseProgram(program: DenseProgram, native: NativeAddon, x: Float32Array, n: number, lookup: NativeLookupArguments | null = null): Float32Array[] | null {
  const { bufs, widths } = buffersFor(program, n);
  const buffer = (i: number) => (i === 0 ? x : bufs[i]!.subarray(0, n * widths[i]!));
  const threads = nativeMatmulThreads();
  // No wasm allocation happens below, so the heap views stay valid through the calls.
  const views = program.ops.map((op) => ({ W: wasmFloat32View(op.W), b: op.b === null ? null : wasmFloat32View(op.b) }));
  if (views.some((v, i) => v.W === null || (program.ops[i]!.b !== null && v.b === null))) return null;
  let pending = lookup;
  program.ops.forEach((op, i) => {
    const [K, N] = op.W.shape as [number, number];
    if (widths[op.input] !== K) throw new Error(`dense program: op ${i} reads width ${widths[op.input]}, its weights take ${K}`);
    const residual = op.residual === null ? null : buffer(op.residual);
    const { W, b } = views[i]!;
    if (op.input === 0 && pending !== null) {
      const l = pending;
      pending = null;
      if (native.embeddingSgemm === undefined) throw new Error('dense program: a deferred lookup needs the addon\'s embeddingSgemm (native version 6)');
      native.embeddingSgemm(l.weights, l.ids, l.layout, n, x, K, W!, N, buffer(i + 1), threads, b, op.relu ? 1 : 0, residual);
      return;
    }
    native.sgemm(false, false, n, N, K, buffer(op.input), W!, buffer(i + 1), threads, b, op.relu ? 1 : 0, residual);
  });
  return program.logits.map((l) => buffer(l));
}
