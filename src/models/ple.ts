/**
 * PLE (Progressive Layered Extraction with CGC layers; Tang et al., RecSys 2020).
 *
 * `levels` extraction layers (2), each a CGC layer with `shared_experts` (2) shared experts and
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
import type * as tf from '@tensorflow/tfjs';
import { arr, int } from '../config/schema.js';
import { Mlp, type StateUpdate } from './layers.js';
import { denseOptions, Gate, mixture, SeedBases, Tower } from './common.js';
import { defineModel, modelParams } from './model.js';

export const ple = defineModel({
  name: 'ple',
  schema: modelParams(
    {
      levels: int({ min: 1, default: 2, description: 'Extraction layers (CGC layers); 1 gives a CGC model.' }),
      shared_experts: int({ min: 0, default: 2, description: 'Shared experts per level.' }),
      task_experts: int({ min: 1, default: 2, description: 'Experts of each task per level.' }),
      expert_hidden: arr(int({ min: 1 }), { minItems: 1, default: [128], description: 'Hidden sizes of every expert MLP.' }),
      hidden: arr(int({ min: 1 }), { default: [64], description: 'Task tower layers above the last level.' }),
    },
    "PLE (Tang et al., RecSys 2020): stacked CGC layers; task gates over the task's own and the shared experts, a shared gate over all experts feeding the next level; towers per task.",
  ),
  build(p, inputDim, tasks, params) {
    const opts = denseOptions(p);
    const seeds = new SeedBases();
    const levels = p.levels;
    const nShared = p.shared_experts;
    const nTask = p.task_experts;
    const expertHidden = p.expert_hidden;
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
    const towers = tasks.map((t) => new Tower(params, `tower_${t}`, expertDim, p.hidden, opts, seeds.take()));
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
  },
});
