/**
 * Mixture-of-experts models: OMoE (one gate shared by all tasks), MMoE (one gate per task;
 * Ma et al., KDD 2018) and PLE (Progressive Layered Extraction with CGC layers; Tang et al.,
 * RecSys 2020). Experts are MLPs over the shared input; gates are softmax(x W + b) over experts;
 * each task has a tower (hidden layers, then a logit) over its mixture.
 */
import type * as tf from '@tensorflow/tfjs';
import type { ModelBuilder } from './registry.js';
import { Mlp, type StateUpdate } from './layers.js';
import { count, denseOptions, Gate, mixture, SeedBases, sizes, Tower } from './common.js';

/**
 * OMoE and MMoE. Parameters: `experts` (4), `expert_hidden` ([128]), `hidden` ([64], task towers).
 * Names: `expert_<e>/dense_<l>/*`, `gate/*` (OMoE) or `gate_<task>/*` (MMoE), `tower_<task>/...`.
 * `aux` holds the gate weights [B, experts] under the gates' names.
 */
function mixtureOfExperts(kind: 'omoe' | 'mmoe'): ModelBuilder {
  return (cfg, inputDim, tasks, params) => {
    const opts = denseOptions(cfg);
    const seeds = new SeedBases();
    const n = count(cfg, 'experts', 4);
    const expertHidden = sizes(cfg, 'expert_hidden', [128]);
    const experts = Array.from({ length: n }, (_, e) => new Mlp(params, `expert_${e}`, inputDim, expertHidden, opts, seeds.take()));
    const expertDim = experts[0]!.outDim;
    const gates = kind === 'omoe' ? [new Gate(params, 'gate', inputDim, n)] : tasks.map((t) => new Gate(params, `gate_${t}`, inputDim, n));
    const towers = tasks.map((t) => new Tower(params, `tower_${t}`, expertDim, sizes(cfg, 'hidden', [64]), opts, seeds.take()));
    return {
      type: kind,
      forward(x, ctx) {
        const updates: StateUpdate[] = [];
        const outs = experts.map((e) => e.apply(x, ctx, updates));
        const weights = gates.map((g) => g.apply(x));
        const mixed = weights.map((w) => mixture(w, outs));
        const logits = towers.map((tower, k) => tower.apply(mixed[kind === 'omoe' ? 0 : k]!, ctx, updates));
        const aux: Record<string, tf.Tensor> = {};
        gates.forEach((g, i) => (aux[g.name] = weights[i]!));
        return { logits, own: logits, updates, aux };
      },
    };
  };
}

export const omoe = mixtureOfExperts('omoe');
export const mmoe = mixtureOfExperts('mmoe');

/**
 * PLE: `levels` extraction layers (2), each a CGC layer with `shared_experts` (2) shared experts and
 * `task_experts` (2) experts per task, all MLPs of `expert_hidden` ([128]); towers of `hidden` ([64]).
 *
 * Level l reads one input per task (x at level 0) and a shared input (x at level 0):
 * - task k's experts read task k's input; the shared experts read the shared input;
 * - task k's gate (input: task k's input) weighs [task k's experts..., shared experts...], and the
 *   mixture is task k's input to the next level (or to its tower after the last level);
 * - in all but the last level a shared gate (input: the shared input) weighs every expert of the
 *   level [task 1's..., task 2's..., ..., shared...], giving the next level's shared input.
 * With one level this is exactly a CGC (Customized Gate Control) model.
 *
 * Names: `level_<l>/expert_shared_<i>/dense_<j>/*`, `level_<l>/expert_<task>_<i>/dense_<j>/*`,
 * `level_<l>/gate_<task>/*`, `level_<l>/gate_shared/*`, `tower_<task>/...`; `aux` holds every
 * gate's weights under the gate's name.
 */
export const ple: ModelBuilder = (cfg, inputDim, tasks, params) => {
  const opts = denseOptions(cfg);
  const seeds = new SeedBases();
  const levels = count(cfg, 'levels', 2);
  const nShared = count(cfg, 'shared_experts', 2);
  const nTask = count(cfg, 'task_experts', 2);
  const expertHidden = sizes(cfg, 'expert_hidden', [128]);
  const expertDim = expertHidden[expertHidden.length - 1]!;
  const layers = Array.from({ length: levels }, (_, l) => {
    const inDim = l === 0 ? inputDim : expertDim;
    const pre = `level_${l}`;
    const taskExperts = tasks.map((t) =>
      Array.from({ length: nTask }, (_, i) => new Mlp(params, `${pre}/expert_${t}_${i}`, inDim, expertHidden, opts, seeds.take())),
    );
    const sharedExperts = Array.from({ length: nShared }, (_, i) => new Mlp(params, `${pre}/expert_shared_${i}`, inDim, expertHidden, opts, seeds.take()));
    const taskGates = tasks.map((t) => new Gate(params, `${pre}/gate_${t}`, inDim, nTask + nShared));
    // The next level's shared experts read the shared gate's mixture; without shared experts it has no reader.
    const sharedGate = l < levels - 1 && nShared > 0 ? new Gate(params, `${pre}/gate_shared`, inDim, tasks.length * nTask + nShared) : null;
    return { taskExperts, sharedExperts, taskGates, sharedGate };
  });
  const towers = tasks.map((t) => new Tower(params, `tower_${t}`, expertDim, sizes(cfg, 'hidden', [64]), opts, seeds.take()));
  return {
    type: 'ple',
    forward(x, ctx) {
      const updates: StateUpdate[] = [];
      const aux: Record<string, tf.Tensor> = {};
      let taskIn: tf.Tensor2D[] = tasks.map(() => x);
      let sharedIn = x;
      for (const layer of layers) {
        const sharedOut = layer.sharedExperts.map((e) => e.apply(sharedIn, ctx, updates));
        const taskOut = layer.taskExperts.map((es, k) => es.map((e) => e.apply(taskIn[k]!, ctx, updates)));
        const nextTaskIn = layer.taskGates.map((g, k) => {
          const w = g.apply(taskIn[k]!);
          aux[g.name] = w;
          return mixture(w, [...taskOut[k]!, ...sharedOut]);
        });
        if (layer.sharedGate) {
          const w = layer.sharedGate.apply(sharedIn);
          aux[layer.sharedGate.name] = w;
          sharedIn = mixture(w, [...taskOut.flat(), ...sharedOut]);
        }
        taskIn = nextTaskIn;
      }
      const logits = towers.map((tower, k) => tower.apply(taskIn[k]!, ctx, updates));
      return { logits, own: logits, updates, aux };
    },
  };
};
