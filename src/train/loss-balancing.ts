/**
 * Multi-task loss balancing (`train.loss_balancing`; README.md, "Regularisation and schedules"):
 *
 *   fixed        total = sum_t w_t L_t, w_t = tasks[].weight (the loop's own code path, untouched)
 *   uncertainty  total = sum_t exp(-s_t) w_t L_t + s_t, s_t = log sigma_t^2 learned with the dense
 *                weights by the dense optimizer (Kendall et al. 2018 in its classification form:
 *                1 / sigma^2 without the 1/2); d total / d s_t = -exp(-s_t) w_t L_t + 1
 *   gradnorm     total = sum_t g_t L_t with learned weights g_t (Chen et al. 2018), started at
 *                tasks[].weight scaled to sum to T (the number of tasks); see gradnormStep
 *
 * The learned values live in the trainer's checkpoint state, so a resumed run continues them exactly.
 */
import * as tf from '@tensorflow/tfjs';
import type { ExperimentConfig } from '../config/experiment.js';
import type { HistoryRow } from './callbacks.js';
import { DataError } from '../base/errors.js';
import { readTensors } from '../kernels/read-back.js';
import type { MultiTaskModel } from '../models/model.js';

/** What a checkpoint keeps of the balancing (runs/checkpoint.ts stores it in state.json). */
export interface BalancingState {
  /** uncertainty: s_t per task. */
  logVars?: number[];
  /** gradnorm: the weights g_t and the task losses of the first step, L_t(0). */
  weights?: number[];
  initialLosses?: number[] | null;
}

/**
 * One GradNorm update of the task weights, in doubles. `gradNorms[t]` = |grad_W L_t| (unweighted),
 * so the weighted task's gradient norm is G_t = w_t |grad_W L_t|. With the loss ratios
 * r~_t = L_t / L_t(0) (1 where L_t(0) is 0) and r_t = r~_t / mean(r~), the target is
 * mean(G) r_t^alpha, held constant; the GradNorm loss sum_t |G_t - target_t| has the gradient
 * sign(G_t - target_t) |grad_W L_t| in w_t. One plain gradient-descent step of rate `lr`, weights
 * kept above 1e-6, then renormalised to sum to T.
 */
export function gradnormStep(weights: readonly number[], gradNorms: readonly number[], losses: readonly number[], initialLosses: readonly number[], alpha: number, lr: number): number[] {
  const T = weights.length;
  const G = weights.map((w, t) => w * gradNorms[t]!);
  const meanG = G.reduce((a, b) => a + b, 0) / T;
  const ratio = losses.map((l, t) => (initialLosses[t]! > 0 ? l / initialLosses[t]! : 1));
  const meanRatio = ratio.reduce((a, b) => a + b, 0) / T;
  const stepped = weights.map((w, t) => {
    const target = meanG * Math.pow(meanRatio > 0 ? ratio[t]! / meanRatio : 1, alpha);
    return Math.max(w - lr * Math.sign(G[t]! - target) * gradNorms[t]!, 1e-6);
  });
  const sum = stepped.reduce((a, b) => a + b, 0);
  return stepped.map((w) => (w * T) / sum);
}

export class LossBalancer {
  readonly mode: ExperimentConfig['train']['loss_balancing'];
  /** uncertainty: the s_t variables, trained with the dense weights. */
  readonly variables: tf.Variable[] = [];
  private weights: number[] = [];
  private initialLosses: number[] | null = null;

  constructor(private readonly config: ExperimentConfig) {
    this.mode = config.train.loss_balancing;
    const T = config.tasks.length;
    if (this.mode === 'uncertainty') for (let t = 0; t < T; t++) this.variables.push(tf.variable(tf.scalar(0), true));
    if (this.mode === 'gradnorm') {
      const sum = config.tasks.reduce((a, t) => a + t.weight, 0);
      this.weights = config.tasks.map((t) => (sum > 0 ? (t.weight * T) / sum : 1));
    }
  }

  /** The total of the task losses (inside the gradient tape). Not used for `fixed`. */
  combine(taskLosses: readonly tf.Scalar[]): tf.Scalar {
    let total: tf.Scalar = tf.scalar(0);
    taskLosses.forEach((l, t) => {
      if (this.mode === 'uncertainty') {
        const s = this.variables[t]!;
        total = tf.add(total, tf.add(tf.mul(tf.exp(tf.neg(s)), tf.mul(l, this.config.tasks[t]!.weight)), s));
      } else total = tf.add(total, tf.mul(l, this.weights[t]!));
    });
    return total;
  }

  /** gradnorm: updates the weights after a step from its task losses and their gradient norms. */
  updateWeights(losses: readonly number[], gradNorms: readonly number[]): void {
    this.initialLosses ??= [...losses];
    const train = this.config.train;
    this.weights = gradnormStep(this.weights, gradNorms, losses, this.initialLosses, train.gradnorm_alpha, train.balancing_lr ?? train.optimizer.lr);
  }

  /** The learned values per task as history columns: `log_var_<task>` or `weight_<task>`. */
  historyColumns(): HistoryRow {
    const row: HistoryRow = {};
    this.config.tasks.forEach((t, k) => {
      if (this.mode === 'uncertainty') row[`log_var_${t.name}`] = this.variables[k]!.dataSync()[0]!;
      else if (this.mode === 'gradnorm') row[`weight_${t.name}`] = this.weights[k]!;
    });
    return row;
  }

  state(): BalancingState | undefined {
    if (this.mode === 'uncertainty') return { logVars: this.variables.map((v) => v.dataSync()[0]!) };
    if (this.mode === 'gradnorm') return { weights: [...this.weights], initialLosses: this.initialLosses };
    return undefined;
  }

  /** Takes back what state() gave (a checkpoint of the same config). */
  restore(s: BalancingState | undefined): void {
    if (s === undefined) return;
    if (s.logVars) s.logVars.forEach((v, t) => this.variables[t]?.assign(tf.scalar(v)));
    if (s.weights) this.weights = [...s.weights];
    if (s.initialLosses !== undefined) this.initialLosses = s.initialLosses === null ? null : [...s.initialLosses];
  }
}

/** The checkpoint's loss-balancing state, checked against the config (a checkpoint never loads half). */
export function checkedBalancing(state: { balancing?: BalancingState }, mode: string, tasks: number, file: string): BalancingState | undefined {
  if (mode === 'fixed') return undefined;
  const b = state.balancing;
  const list = (v: unknown) => Array.isArray(v) && v.length === tasks && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  const ok = b !== undefined && (mode === 'uncertainty' ? list(b.logVars) : list(b.weights) && (b.initialLosses === null || list(b.initialLosses)));
  if (!ok) throw new DataError(`${file}: balancing: expected the learned ${mode === 'uncertainty' ? 'log-variances' : 'GradNorm weights'} of ${tasks} tasks (train.loss_balancing is ${mode})`);
  return b;
}

/**
 * gradnorm: |grad_x L_t| per task, where x is the embeddings' output, the last layer every model
 * shares (the paper's "last shared layer"; resflow's models share their input embeddings, while
 * what comes after differs by model); one more forward and backward pass per task, with the
 * step's dropout masks. `taskLoss` computes L_t from the task's logits.
 */
export async function taskGradientNorms(model: MultiTaskModel, x: tf.Tensor2D, dropoutSeed: number, tasks: number, taskLoss: (logits: tf.Tensor1D, k: number) => tf.Scalar): Promise<number[]> {
  const norms: number[] = [];
  for (let k = 0; k < tasks; k++) {
    const n = tf.tidy(() => {
      let stateUpdates: [tf.Variable, tf.Tensor][] = [];
      const g = tf.engine().gradients(
        () => {
          const out = model.forward(x, { training: true, dropoutSeed });
          stateUpdates = out.updates;
          return taskLoss(out.logits[k]!, k);
        },
        [x],
      ).grads[0]!;
      tf.dispose(stateUpdates.map((u) => u[1]));
      return tf.sqrt(tf.sum(tf.square(g)));
    });
    await readTensors([n]);
    norms.push(n.dataSync()[0]!);
    n.dispose();
  }
  return norms;
}
