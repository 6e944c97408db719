/**
 * Building blocks for the dense part of every model, written on tfjs ops so that initialisation
 * is seeded from resflow's own RNG (identical across backends) and every weight has a stable name
 * for saving, loading and tests.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../base/rng.js';
import type { DenseOp } from './dense-program.js';
import { nativeDenseGradRegistered, nativeMatmulRegistered } from '../kernels/native-matmul.js';
import { DENSE_GRAD } from '../kernels/native-dense-grad.js';

export interface ForwardContext {
  training: boolean;
  /** Base seed for dropout masks of this step (differs per step, fixed per config seed). */
  dropoutSeed: number;
}

/** Moving-average updates collected during a training forward pass, applied after the step. */
export type StateUpdate = [tf.Variable, tf.Tensor];

let storeCount = 0;

export class ParamStore {
  /** Variables by their logical name (`tower_ctr/dense_0/kernel`), as saved and loaded. */
  readonly variables = new Map<string, tf.Variable>();
  private readonly trainableNames: string[] = [];
  /** tfjs variable names are global to the process; a per-store prefix keeps models apart. */
  readonly prefix = `m${storeCount++}/`;

  constructor(private readonly rng: Rng) {}

  logicalName(tfName: string): string {
    return tfName.startsWith(this.prefix) ? tfName.slice(this.prefix.length) : tfName;
  }

  get trainable(): tf.Variable[] {
    return this.trainableNames.map((n) => this.variables.get(n)!);
  }

  private add(name: string, shape: number[], values: Float32Array, trainable: boolean): tf.Variable {
    if (this.variables.has(name)) throw new Error(`parameter ${name} defined twice`);
    const v = tf.variable(tf.tensor(values, shape, 'float32'), trainable, this.prefix + name);
    this.variables.set(name, v);
    if (trainable) this.trainableNames.push(name);
    return v;
  }

  /** Glorot-uniform matrix. */
  matrix(name: string, rows: number, cols: number): tf.Variable {
    const limit = Math.sqrt(6 / (rows + cols));
    const values = new Float32Array(rows * cols);
    for (let i = 0; i < values.length; i++) values[i] = (this.rng.next() * 2 - 1) * limit;
    return this.add(name, [rows, cols], values, true);
  }

  constant(name: string, shape: number[], value: number, trainable = true): tf.Variable {
    const size = shape.reduce((a, b) => a * b, 1);
    return this.add(name, shape, new Float32Array(size).fill(value), trainable);
  }

  dispose(): void {
    for (const v of this.variables.values()) v.dispose();
    this.variables.clear();
  }
}

/**
 * The gradients of act(x·W + b) from dy: x's, W's and b's (see linearWithGradient); `y` is the output
 * of a relu layer (its gradient first masks dy with step(y)), absent for a linear one. With the
 * native matmul on wasm, one native kernel computes the same GEMMs on the same operands
 * (src/kernels/native-dense-grad.ts), so the same bits, without tfjs's intermediate tensors.
 */
function linearGrads(dy: tf.Tensor2D, xs: tf.Tensor2D, Ws: tf.Tensor2D, y?: tf.Tensor2D): tf.Tensor[] {
  if (nativeDenseGradRegistered()) return tf.engine().runKernel(DENSE_GRAD, y ? { dy, x: xs, W: Ws, y } : { dy, x: xs, W: Ws }) as tf.Tensor[];
  const dz = y ? (tf.mul(dy, tf.cast(tf.step(y), 'float32')) as tf.Tensor2D) : dy;
  const [inDim, outDim] = Ws.shape;
  // A one-wide (logit) layer takes its weight gradient as a row, dzᵀ·x, reshaped: no transpose of x.
  const dW = outDim === 1 ? tf.reshape(tf.matMul(dz, xs, true, false), [inDim, 1]) : tf.matMul(xs, dz, true, false);
  const db = tf.reshape(tf.matMul(tf.ones([1, dz.shape[0]]), dz), [outDim]);
  return [tf.matMul(dz, Ws, false, true), dW, db];
}

/**
 * x·W + b with an explicit gradient, because two parts of tfjs's default one are slow on wasm: the
 * bias gradient (a column sum, ~2 ms for a 1024x256 batch) becomes ones[1,B]·dy (~0.06 ms), and
 * the weight gradient of a one-wide (logit) layer is taken as the row dyᵀ·x instead of xᵀ·dy
 * (0.9 ms -> 0.03 ms on wasm). Same values, other summation order, so results agree with the default
 * to float rounding.
 */
const linearWithGradient = tf.customGrad((...args: unknown[]) => {
  const [x, W, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, W]);
  return {
    value: tf.add(tf.matMul(x, W), b),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => linearGrads(dy as tf.Tensor2D, saved[0] as tf.Tensor2D, saved[1] as tf.Tensor2D),
  };
}) as unknown as (x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/**
 * relu(x·W + b) as one fused kernel in the forward pass (the native GEMM adds the bias and applies
 * the relu in its epilogue: the same bits as a separate Add and Relu, native/README.md), with the
 * gradient tfjs's Relu would give (dy·step(y); y > 0 exactly where x·W + b > 0) followed by
 * linearWithGradient's. Two kernels and two full passes over the layer's output fewer per layer.
 * Used only when the native matmul is the wasm matmul kernel: other kernels may fuse the bias with
 * another rounding.
 */
const linearReluWithGradient = tf.customGrad((...args: unknown[]) => {
  const [x, W, b, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  // The kernel itself: under a gradient tape tf.fused.matMul would split into MatMul, Add and Relu.
  const y = tf.engine().runKernel('_FusedMatMul', { a: x, b: W, bias: b }, { transposeA: false, transposeB: false, activation: 'relu' }) as tf.Tensor2D;
  save([x, W, y]);
  return {
    value: y,
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [xs, Ws, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      return linearGrads(dy as tf.Tensor2D, xs, Ws, ys);
    },
  };
}) as unknown as (x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor2D;

/** relu(x·W + b) as separate kernels under a gradient tape (what `linear` ran before fusing; for tests). */
export function linearReluUnfused(x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.relu(linearWithGradient(x, W, b)) as tf.Tensor2D;
}

/** Whether tfjs is recording operations for a gradient (tf.grad / engine().gradients is running). */
function recordingGradients(): boolean {
  // Internal engine state; if a tfjs version lacks it, take the gradient path, which is always right.
  const depth = (tf.engine() as unknown as { state?: { gradientDepth?: unknown } }).state?.gradientDepth;
  return depth !== 0;
}

/**
 * act(x·W + b). Under a gradient tape: the explicit gradient above, then the activation (fused with
 * it when the native matmul runs the wasm matmuls). Otherwise (scoring) one fused
 * matmul-bias-activation kernel, which the native matmul runs in one pass (no separate Add and Relu
 * tensors).
 */
export function linear(x: tf.Tensor2D, W: tf.Tensor2D, b: tf.Tensor1D, activation: 'relu' | 'linear' = 'linear'): tf.Tensor2D {
  if (!recordingGradients()) return tf.fused.matMul({ a: x, b: W, bias: b, activation }) as tf.Tensor2D;
  if (activation === 'relu' && tf.getBackend() === 'wasm' && nativeMatmulRegistered()) return linearReluWithGradient(x, W, b);
  const z = linearWithGradient(x, W, b);
  return activation === 'relu' ? (tf.relu(z) as tf.Tensor2D) : z;
}

export type Activation = 'relu' | 'prelu' | 'none';

export interface DenseOptions {
  activation: Activation;
  batchNorm: boolean;
  dropout: number;
}

/** Linear -> (batch norm) -> activation -> (dropout). */
export class DenseBlock {
  private readonly W: tf.Variable;
  private readonly b: tf.Variable;
  private readonly alpha?: tf.Variable;
  private readonly bn?: { gamma: tf.Variable; beta: tf.Variable; mean: tf.Variable; variance: tf.Variable };

  constructor(
    params: ParamStore,
    readonly name: string,
    inDim: number,
    readonly outDim: number,
    private readonly opts: DenseOptions,
    private readonly seedOffset: number,
  ) {
    this.W = params.matrix(`${name}/kernel`, inDim, outDim);
    this.b = params.constant(`${name}/bias`, [outDim], 0);
    if (opts.activation === 'prelu') this.alpha = params.constant(`${name}/prelu_alpha`, [outDim], 0.25);
    if (opts.batchNorm) {
      this.bn = {
        gamma: params.constant(`${name}/bn_gamma`, [outDim], 1),
        beta: params.constant(`${name}/bn_beta`, [outDim], 0),
        mean: params.constant(`${name}/bn_moving_mean`, [outDim], 0, false),
        variance: params.constant(`${name}/bn_moving_variance`, [outDim], 1, false),
      };
    }
  }

  /**
   * This block's scoring pass as a dense-program op (dense-program.ts), or null when it is more than
   * act(x·W + b) (batch norm, prelu); `residual` is added after the activation.
   */
  scoringOp(input: number, residual: number | null): DenseOp | null {
    if (this.bn || this.opts.activation === 'prelu') return null;
    return { input, W: this.W, b: this.b, relu: this.opts.activation === 'relu', residual };
  }

  apply(x: tf.Tensor2D, ctx: ForwardContext, updates: StateUpdate[]): tf.Tensor2D {
    // Without batch norm in between, the relu goes into the linear layer (fused when scoring).
    const fuseRelu = !this.bn && this.opts.activation === 'relu';
    let h = linear(x, this.W as tf.Tensor2D, this.b as tf.Tensor1D, fuseRelu ? 'relu' : 'linear');
    if (this.bn) {
      // Training uses batch statistics and updates moving averages (momentum 0.99);
      // inference uses the moving averages.
      const eps = 1e-3;
      if (ctx.training && h.shape[0] > 1) {
        const { mean, variance } = tf.moments(h, 0);
        updates.push([this.bn.mean, tf.keep(tf.add(tf.mul(this.bn.mean, 0.99), tf.mul(mean, 0.01)))]);
        updates.push([this.bn.variance, tf.keep(tf.add(tf.mul(this.bn.variance, 0.99), tf.mul(variance, 0.01)))]);
        h = tf.batchNorm(h, mean, variance, this.bn.beta, this.bn.gamma, eps) as tf.Tensor2D;
      } else {
        h = tf.batchNorm(h, this.bn.mean, this.bn.variance, this.bn.beta, this.bn.gamma, eps) as tf.Tensor2D;
      }
    }
    if (this.opts.activation === 'relu' && !fuseRelu) h = tf.relu(h);
    else if (this.opts.activation === 'prelu') h = tf.sub(tf.relu(h), tf.mul(this.alpha!, tf.relu(tf.neg(h)))) as tf.Tensor2D;
    if (ctx.training && this.opts.dropout > 0) h = tf.dropout(h, this.opts.dropout, undefined, ctx.dropoutSeed + this.seedOffset) as tf.Tensor2D;
    return h;
  }
}

/** A final linear layer to one logit per row. */
export class LogitLayer {
  private readonly W: tf.Variable;
  private readonly b: tf.Variable;
  constructor(params: ParamStore, name: string, inDim: number) {
    this.W = params.matrix(`${name}/kernel`, inDim, 1);
    this.b = params.constant(`${name}/bias`, [1], 0);
  }
  /** The scoring pass as a dense-program op: x·w + b (+ residual). */
  scoringOp(input: number, residual: number | null): DenseOp {
    return { input, W: this.W, b: this.b, relu: false, residual };
  }
  apply(x: tf.Tensor2D): tf.Tensor1D {
    return tf.reshape(linear(x, this.W as tf.Tensor2D, this.b as tf.Tensor1D), [-1]) as tf.Tensor1D;
  }
}

/** A stack of dense blocks. */
export class Mlp {
  readonly blocks: DenseBlock[];
  constructor(params: ParamStore, name: string, inDim: number, sizes: number[], opts: DenseOptions, seedBase: number) {
    this.blocks = [];
    let d = inDim;
    sizes.forEach((size, i) => {
      this.blocks.push(new DenseBlock(params, `${name}/dense_${i}`, d, size, opts, seedBase + i));
      d = size;
    });
  }
  get outDim(): number {
    return this.blocks.length ? this.blocks[this.blocks.length - 1]!.outDim : 0;
  }
  apply(x: tf.Tensor2D, ctx: ForwardContext, updates: StateUpdate[]): tf.Tensor2D {
    return this.blocks.reduce((h, b) => b.apply(h, ctx, updates), x);
  }
}
