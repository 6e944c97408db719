/**
 * A model's dense program (dense-program.ts) as one differentiable op for training: the forward pass
 * and the whole backward pass each run as a handful of native calls on Float32Arrays, instead of a
 * tfjs kernel, a tape node and a gradient function per layer, residual add and gradient sum
 * (docs/performance-log.md: tfjs's JavaScript was a quarter of a training step).
 *
 * The arithmetic is the one the per-layer tfjs path runs with the native kernels registered, call for
 * call, so the losses, gradients and weights are the same bits (test/dense-program-train.test.ts,
 * scripts/fingerprint.sh):
 * - forward, per op: the GEMM with bias and relu in its epilogue (tfjs's `_FusedMatMul`), then the
 *   residual as one float add per element (tfjs's `Add`);
 * - backward, per op from the last: the residual passes the output's gradient through; then the
 *   dense gradient kernel's calls (native-dense-grad.ts): dz = dy·step(y) for relu, dx = dz·Wᵀ,
 *   dW = xᵀ·dz (dzᵀ·x one wide), db = ones·dz;
 * - a buffer read by several ops sums their gradients in the order tfjs's tape does: the op recorded
 *   last first, and within an op the residual before the input. Programs are built in the order the
 *   model's forward records its ops, so walking the ops backwards gives that order.
 */
import * as tf from '@tensorflow/tfjs';
import { loadAddon } from '../kernels/addon.js';
import { sgemmHasResidual, type NativeAddon } from '../kernels/native-api.js';
import { nativeDenseGradRegistered, nativeMatmulThreads } from '../kernels/native-matmul.js';
import { denseLayerGrads, reluBackward } from '../kernels/native-dense-grad.js';
import { filledWasmTensors, wasmFloat32View } from '../kernels/wasm-heap.js';
import { programWidths, type DenseProgram } from './dense-program.js';
import type { ForwardResult, MultiTaskModel } from './model.js';

/** The addon, when the native kernels are what tfjs's training path would run (see above); else null. */
export function nativeTraining(): NativeAddon | null {
  if (!nativeDenseGradRegistered()) return null;
  const native = loadAddon();
  return native !== null && sgemmHasResidual(native) && native.addArrays !== undefined && native.reluBackward !== undefined ? native : null;
}

/** Per program, buffers for n rows, reused from step to step (fresh arrays cost page faults). */
interface Scratch {
  rows: number;
  /** Each buffer's width (programWidths). */
  widths: number[];
  /** Each op's output (buffer i + 1), after its residual. */
  out: Float32Array[];
  /** A relu op with a residual: its output before the residual (the relu's gradient mask); else null. */
  act: (Float32Array | null)[];
  /** Gradient sums per buffer (index 0 unused: x's gradient is written into its output tensor). */
  grad: Float32Array[];
  /** dz of the op being differentiated, and an input gradient waiting to be added to a sum. */
  dz: Float32Array;
  dx: Float32Array;
  /** Counts forward passes, so that a backward pass can tell that its activations were overwritten. */
  generation: number;
}

const scratches = new WeakMap<DenseProgram, Scratch>();

function scratchFor(program: DenseProgram, n: number): Scratch {
  let s = scratches.get(program);
  if (s === undefined || s.rows < n) {
    const widths = programWidths(program);
    const most = Math.max(...widths);
    s = {
      rows: n,
      widths,
      out: program.ops.map((_, i) => new Float32Array(n * widths[i + 1]!)),
      act: program.ops.map((op, i) => (op.relu && op.residual !== null ? new Float32Array(n * widths[i + 1]!) : null)),
      grad: widths.map((w, j) => new Float32Array(j === 0 ? 0 : n * w)),
      dz: new Float32Array(n * most),
      dx: new Float32Array(n * most),
      generation: s?.generation ?? 0,
    };
    scratches.set(program, s);
  }
  return s;
}

/** The buffers of a program's activations: x's view for buffer 0, else op j - 1's output, for n rows. */
function activations(s: Scratch, xs: Float32Array, n: number): (j: number) => Float32Array {
  return (j) => (j === 0 ? xs : s.out[j - 1]!.subarray(0, n * s.widths[j]!));
}

/** Per program, whether every buffer but the logits is read by some op (else tfjs would give its weights no gradient). */
const everyRead = new WeakMap<DenseProgram, boolean>();

function everyBufferRead(program: DenseProgram): boolean {
  const known = everyRead.get(program);
  if (known !== undefined) return known;
  const read = new Set<number>(program.logits);
  for (const op of program.ops) {
    read.add(op.input);
    if (op.residual !== null) read.add(op.residual);
  }
  const all = program.ops.every((_, i) => read.has(i + 1)) && read.has(0);
  everyRead.set(program, all);
  return all;
}

/**
 * The program's logits for a training step, one [n] tensor per task, differentiable with respect to x
 * and every op's W and b; null when the native path does not apply (then the model's own forward
 * pass runs, with the same results).
 */
export function trainingLogits(program: DenseProgram, x: tf.Tensor2D): tf.Tensor1D[] | null {
  const stacked = stackedTrainingLogits(program, x);
  if (stacked === null) return null;
  // One task: a reshape, since tfjs's gradient of a one-output Unpack fails ("Argument tensors passed
  // to stack must be a `Tensor[]`"): a single-task model could not train on this path.
  return stacked.shape[0] === 1 ? [tf.reshape(stacked, [stacked.shape[1]]) as tf.Tensor1D] : (tf.unstack(stacked) as tf.Tensor1D[]);
}

/** trainingLogits as the op gives them: one [tasks, n] tensor, task k's logits in row k. */
export function stackedTrainingLogits(program: DenseProgram, x: tf.Tensor2D): tf.Tensor2D | null {
  const native = nativeTraining();
  if (native === null || !programApplies(program, x)) return null;
  return programOp(program, native)(x, ...programParams(program)) as tf.Tensor2D;
}

/** Whether the native pass can run the program on x. */
function programApplies(program: DenseProgram, x: tf.Tensor2D): boolean {
  return x.shape[1] === program.inDim && wasmFloat32View(x) !== null && everyBufferRead(program);
}

/** The program's weights in the op's input order after x: W0, b0, W1, … (no b of an op without bias). */
export function programParams(program: DenseProgram): tf.Variable[] {
  return program.ops.flatMap((op) => (op.b === null ? [op.W] : [op.W, op.b]));
}

/**
 * One training pass of the program outside any gradient tape: the logits [tasks, n] now, and
 * `backward(dy)` for the logits' gradient, which returns the gradients of x and of programParams in
 * that order. The same native calls as the op's forward and gradient (so the same bits), without
 * the tape's bookkeeping: the trainer's step (train/program-step.ts) takes this when the whole
 * objective's gradient is written out too.
 */
export interface ProgramPass {
  logits: tf.Tensor2D;
  backward(dy: tf.Tensor): tf.Tensor[];
}

export function programPass(program: DenseProgram, x: tf.Tensor2D): ProgramPass | null {
  const native = nativeTraining();
  if (native === null || !programApplies(program, x)) return null;
  return passOf(program, native, x);
}

function passOf(program: DenseProgram, native: NativeAddon, x: tf.Tensor2D): ProgramPass {
  const n = x.shape[0];
  const s = scratchFor(program, n);
  const generation = ++s.generation;
  const logits = forward(program, native, s, x, n) as tf.Tensor2D;
  return {
    logits,
    backward: (dy) => {
      if (s.generation !== generation) throw new Error('dense program: another forward pass ran before this one\'s gradient');
      return backward(program, native, s, x, dy, n);
    },
  };
}

/** The op over (x, W0, b0, W1, …): its value is [tasks, n], each task's logits in a row. */
function programOp(program: DenseProgram, native: NativeAddon): (x: tf.Tensor, ...params: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad((...args: unknown[]) => {
    const pass = passOf(program, native, args[0] as tf.Tensor2D);
    return { value: pass.logits, gradFunc: (dy: tf.Tensor) => pass.backward(dy) };
  }) as unknown as (x: tf.Tensor, ...params: tf.Tensor[]) => tf.Tensor;
}

/** The weights' heap views, taken after the caller's last allocation. */
function weightViews(program: DenseProgram): { W: Float32Array; b: Float32Array | null }[] {
  return program.ops.map((op, i) => {
    const W = wasmFloat32View(op.W);
    const b = op.b === null ? null : wasmFloat32View(op.b);
    if (W === null || (op.b !== null && b === null)) throw new Error(`dense program: op ${i}'s weights are not in the wasm heap`);
    return { W, b };
  });
}

function forward(program: DenseProgram, native: NativeAddon, s: Scratch, x: tf.Tensor2D, n: number): tf.Tensor {
  const threads = nativeMatmulThreads();
  return filledWasmTensors([[program.logits.length, n]], ([value]) => {
    const views = weightViews(program);
    const buffer = activations(s, wasmFloat32View(x)!, n);
    program.ops.forEach((op, i) => {
      const [K, N] = op.W.shape as [number, number];
      const out = buffer(i + 1);
      const act = s.act[i];
      if (act === null) {
        // No relu mask to keep: the residual goes into the epilogue (a float add after the activation, as tfjs's Add).
        native.sgemm(false, false, n, N, K, buffer(op.input), views[i]!.W, out, threads, views[i]!.b, op.relu ? 1 : 0, op.residual === null ? null : buffer(op.residual));
      } else {
        const y = act.subarray(0, n * N);
        native.sgemm(false, false, n, N, K, buffer(op.input), views[i]!.W, y, threads, views[i]!.b, 1, null);
        native.addArrays!(y, buffer(op.residual!), out, threads);
      }
    });
    program.logits.forEach((l, t) => value!.set(buffer(l), t * n));
  })![0]!;
}

function backward(program: DenseProgram, native: NativeAddon, s: Scratch, x: tf.Tensor2D, dy: tf.Tensor, n: number): tf.Tensor[] {
  const threads = nativeMatmulThreads();
  const widths = s.widths;
  // The gradients in the op's input order: x, then W and b of each op.
  const shapes: number[][] = [[n, program.inDim]];
  const slots = program.ops.map((op) => {
    const W = shapes.push(op.W.shape) - 1;
    return { W, b: op.b === null ? null : shapes.push(op.b.shape) - 1 };
  });
  // Every output is allocated before any view is taken: an allocation may grow (and detach) the heap.
  const outputs = filledWasmTensors(shapes, (outs) => {
    const dys = wasmFloat32View(dy)!;
    const views = weightViews(program);
    const buffer = activations(s, wasmFloat32View(x)!, n);
    // Each buffer's own sum array, one view each: the sums below are told apart by identity.
    const owns = widths.map((w, j) => (j === 0 ? outs[0]! : s.grad[j]!.subarray(0, n * w)));
    const own = (j: number) => owns[j]!;
    // A buffer's gradient sum so far: absent, or an array holding it (its own, or one it took over
    // whole from a buffer no op writes again: see accumulate).
    const sum: (Float32Array | undefined)[] = new Array(widths.length);
    program.logits.forEach((l, t) => (sum[l] = dys.subarray(t * n, (t + 1) * n)));
    /** Adds a gradient to buffer j's sum (taking the array itself when it is the first). */
    const accumulate = (j: number, g: Float32Array) => {
      const cur = sum[j];
      if (cur === undefined) sum[j] = j === 0 ? (outs[0]!.set(g), outs[0]!) : g;
      else native.addArrays!(cur, g, (sum[j] = own(j)), threads);
    };
    for (let i = program.ops.length - 1; i >= 0; i--) {
      const op = program.ops[i]!;
      const [K, N] = op.W.shape as [number, number];
      const g = sum[i + 1];
      if (g === undefined) throw new Error(`dense program: op ${i}'s output has no gradient`);
      // Buffer i + 1 is read by ops after i only, all done: g is final, and its array is never written again.
      if (op.residual !== null) accumulate(op.residual, g);
      let dz = g;
      if (op.relu) {
        dz = s.dz.subarray(0, n * N);
        reluBackward(native, g, (s.act[i] ?? s.out[i]!).subarray(0, n * N), dz, threads);
      }
      // dx goes into the input's own sum array: alone when it is the first gradient there, else with
      // the sum so far (held in another array) added by the GEMM as it stores (the same float add as
      // accumulate's). Only a sum already in its own array takes dx in scratch and an add after.
      const cur = sum[op.input];
      const inPlace = cur === own(op.input);
      const dx = inPlace ? s.dx.subarray(0, n * K) : own(op.input);
      const dW = outs[slots[i]!.W]!;
      denseLayerGrads(native, threads, n, K, N, dz, buffer(op.input), views[i]!.W, dx, dW, op.b === null ? null : outs[slots[i]!.b!]!, inPlace ? null : cur ?? null);
      if (inPlace) accumulate(op.input, dx);
      else sum[op.input] = dx;
    }
    if (sum[0] !== outs[0]) throw new Error('dense program: the input has no gradient');
  });
  return outputs!;
}

/**
 * A model's training pass through its training program, when it has one and the native path applies
 * (the same logits and gradients as `model.forward` with training true); else null.
 */
export function programForward(model: MultiTaskModel, x: tf.Tensor2D): Pick<ForwardResult, 'logits' | 'updates' | 'extraLoss'> | null {
  const program = model.trainingProgram;
  const logits = program ? trainingLogits(program, x) : null;
  return logits === null ? null : { logits, updates: [] };
}
