/**
 * The optimizer of the dense (tfjs) weights. tfjs's own, except that on the wasm backend with the
 * native addon Adam's step runs as one native pass per variable instead of eight tfjs kernels
 * (with a dispatch cost each, ~2 ms of a ~13 ms training step for the benchmark model). The native
 * pass repeats tfjs's float32 operations in order (native/src/adam.cc), so weights, moments and
 * checkpoints are the same bits either way; that is checked once per process against tfjs before
 * it is used, and the tests check it too.
 */
import * as tf from '@tensorflow/tfjs';
import type { OptimizerConfig } from '../config/experiment.js';
import { loadAddon, type AdamStepFn } from '../kernels/addon.js';
import { wasmFloat32View } from '../kernels/wasm-heap.js';
import { nativeMatmulThreads } from '../kernels/native-matmul.js';

/** What Optimizer.applyGradients takes. */
type VariableGradients = Parameters<tf.AdamOptimizer['applyGradients']>[0];

/** tfjs AdamOptimizer state that TypeScript marks private; the layout of tfjs-core 4.x. */
interface AdamState {
  accBeta1: tf.Variable;
  accBeta2: tf.Variable;
  accumulatedFirstMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
  accumulatedSecondMoment: ({ originalName: string; variable: tf.Variable } | undefined)[];
}

/** tfjs's Adam, with each step run by the addon's adamStep when every tensor is in the wasm heap. */
export class NativeStepAdam extends tf.AdamOptimizer {
  private readonly constants = new Float32Array(8);
  /** Steps run natively and by tfjs (for tests and benchmarks). */
  readonly counts = { native: 0, tfjs: 0 };

  constructor(
    private readonly adamStep: AdamStepFn,
    learningRate: number,
    beta1: number,
    beta2: number,
    epsilon: number,
  ) {
    super(learningRate, beta1, beta2, epsilon);
  }

  override applyGradients(variableGradients: VariableGradients): void {
    if (this.nativeStep(variableGradients)) this.counts.native++;
    else {
      this.counts.tfjs++;
      super.applyGradients(variableGradients);
    }
  }

  /** The native step; false, having changed nothing that tfjs's step would not, when it cannot run. */
  private nativeStep(variableGradients: VariableGradients): boolean {
    const state = this as unknown as AdamState;
    const list = Array.isArray(variableGradients) ? variableGradients : Object.entries(variableGradients).map(([name, tensor]) => ({ name, tensor }));
    const registered = tf.engine().registeredVariables;
    // Moments first, exactly as tfjs creates them: allocating may grow the wasm heap, which would
    // detach views taken before.
    list.forEach(({ name }, i) => {
      const value = registered[name];
      if (value === undefined) return;
      state.accumulatedFirstMoment[i] ??= { originalName: `${name}/m`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
      state.accumulatedSecondMoment[i] ??= { originalName: `${name}/v`, variable: tf.tidy(() => tf.zerosLike(value).variable(false)) };
    });
    const work: [Float32Array, Float32Array, Float32Array, Float32Array][] = [];
    for (let i = 0; i < list.length; i++) {
      const { name, tensor } = list[i]!;
      const value = registered[name];
      if (value === undefined) return false;
      if (tensor == null) continue; // tfjs skips variables without a gradient
      const views = [value, state.accumulatedFirstMoment[i]!.variable, state.accumulatedSecondMoment[i]!.variable, tensor].map((t) => wasmFloat32View(t));
      if (views.some((v) => v === null || v.length !== value.size)) return false;
      work.push(views as [Float32Array, Float32Array, Float32Array, Float32Array]);
    }
    // Adam's running beta powers, read and updated in place like the moments (no kernel, no read-back).
    const acc1 = wasmFloat32View(state.accBeta1);
    const acc2 = wasmFloat32View(state.accBeta2);
    if (acc1 === null || acc2 === null) return false;
    // The float32 scalars tfjs's kernels would see.
    const c = this.constants;
    c[0] = this.beta1;
    c[1] = 1 - this.beta1;
    c[2] = this.beta2;
    c[3] = 1 - this.beta2;
    c[4] = 1 - acc1[0]!;
    c[5] = 1 - acc2[0]!;
    c[6] = this.epsilon;
    c[7] = -this.learningRate;
    const threads = nativeMatmulThreads(); // the addon's pool, as the matmuls use it (same bits on any count)
    for (const [value, m, v, grad] of work) this.adamStep(value, m, v, grad, c, threads);
    // tfjs's accBeta.assign(mul(accBeta, beta)): one float32 product (the store rounds it)
    acc1[0] = acc1[0]! * Math.fround(this.beta1);
    acc2[0] = acc2[0]! * Math.fround(this.beta2);
    this.incrementIterations();
    return true;
  }
}

let nativeAdam: AdamStepFn | null | undefined;

/**
 * The addon's adamStep when it is loaded and agrees with tfjs's Adam bit for bit (checked once per
 * process); null otherwise, and off the wasm backend, whose heap the step works in.
 */
function nativeAdamStep(): AdamStepFn | null {
  if (tf.getBackend() !== 'wasm') return null;
  if (nativeAdam === undefined) {
    const fn = loadAddon()?.adamStep ?? null;
    nativeAdam = fn !== null && agreesWithTfjs(fn) ? fn : null;
  }
  return nativeAdam;
}

function agreesWithTfjs(adamStep: AdamStepFn): boolean {
  try {
    return compareWithTfjsAdam(adamStep) === null;
  } catch {
    return false;
  }
}

/**
 * Three steps of tfjs's Adam and of NativeStepAdam on the same random variables; null when
 * weights and moments agree bit for bit, else what differed.
 */
export function compareWithTfjsAdam(adamStep: AdamStepFn, shapes: number[][] = [[37, 23], [23], [300, 1]]): string | null {
  const make = () => tf.tidy(() => shapes.map((s, k) => tf.variable(tf.randomUniform(s, -1, 1, 'float32', 11 + k))));
  const a = make();
  const b = make();
  const reference = tf.train.adam(0.01, 0.9, 0.999, 1e-7);
  const candidate = new NativeStepAdam(adamStep, 0.01, 0.9, 0.999, 1e-7);
  try {
    for (let step = 0; step < 3; step++) {
      const grads = shapes.map((s, k) => tf.randomNormal(s, 0, 1, 'float32', 100 * step + k));
      reference.applyGradients(a.map((v, k) => ({ name: v.name, tensor: grads[k]! })));
      candidate.applyGradients(b.map((v, k) => ({ name: v.name, tensor: grads[k]! })));
      tf.dispose(grads);
    }
    if (candidate.counts.native !== 3) return 'the native step did not run';
    for (let k = 0; k < shapes.length; k++) {
      const x = a[k]!.dataSync();
      const y = b[k]!.dataSync();
      for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return `variable ${k} differs at ${i}: ${x[i]} vs ${y[i]}`;
    }
    return null;
  } finally {
    reference.dispose();
    candidate.dispose();
    tf.dispose([...a, ...b]);
  }
}

export function makeDenseOptimizer(o: OptimizerConfig): tf.Optimizer {
  if (o.type === 'adam') {
    const step = nativeAdamStep();
    return step !== null ? new NativeStepAdam(step, o.lr, o.beta1, o.beta2, o.epsilon) : tf.train.adam(o.lr, o.beta1, o.beta2, o.epsilon);
  }
  if (o.type === 'adagrad') return tf.train.adagrad(o.lr, o.initial_accumulator);
  return tf.train.sgd(o.lr);
}

/** An optimizer's current learning rate (tfjs keeps it in `learningRate`). */
export function learningRateOf(optimizer: tf.Optimizer): number {
  return (optimizer as unknown as { learningRate: number }).learningRate;
}

/**
 * Sets a tfjs optimizer's learning rate for its next step. Adam, Adagrad and NativeStepAdam read
 * `learningRate` at every step; SGD keeps a scalar of it, which setLearningRate renews.
 */
export function setLearningRate(optimizer: tf.Optimizer, lr: number): void {
  const opt = optimizer as unknown as { learningRate: number; setLearningRate?: (lr: number) => void };
  if (opt.learningRate === lr) return;
  if (opt.setLearningRate) opt.setLearningRate(lr);
  else opt.learningRate = lr;
}

/**
 * Decoupled weight decay (train.optimizer.weight_decay, AdamW-style): each weight with a gradient
 * this step is multiplied by `keep` = 1 - lr x weight_decay (lr: the current, scheduled one, in
 * float32) before the optimizer's update, which never sees the decay.
 */
export function decayWeights(weights: readonly tf.Variable[], grads: readonly (tf.Tensor | undefined)[], keep: number): void {
  tf.tidy(() => {
    weights.forEach((v, i) => {
      if (grads[i]) v.assign(tf.mul(v, keep));
    });
  });
}
