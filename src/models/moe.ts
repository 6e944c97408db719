/**
 * The mixture of experts shared by OMoE (one gate shared by all tasks, omoe.ts) and MMoE (one gate
 * per task; Ma et al., KDD 2018, mmoe.ts): expert MLPs over the shared input, gates softmax(x W + b)
 * over the experts, and per task a tower (hidden layers, then a logit) over its mixture.
 */
import type * as tf from '@tensorflow/tfjs';
import { arr, int, type Infer } from '../config/schema.js';
import { Mlp, type ParamStore, type StateUpdate } from './layers.js';
import { denseOptions, Gate, mixture, SeedBases, Tower } from './common.js';
import { modelParams, type MultiTaskModel } from './model.js';

/** The parameters of OMoE and MMoE. */
export function moeParams(description: string) {
  return modelParams(
    {
      experts: int({ min: 1, default: 4, description: 'Number of expert MLPs.' }),
      expert_hidden: arr(int({ min: 1 }), { minItems: 1, default: [128], description: 'Hidden sizes of every expert MLP.' }),
      hidden: arr(int({ min: 1 }), { default: [64], description: 'Task tower layers above the mixture.' }),
    },
    description,
  );
}
export type MoeParams = Infer<ReturnType<typeof moeParams>>;

/**
 * OMoE and MMoE. Parameters: `experts` (4), `expert_hidden` ([128]), `hidden` ([64], task towers).
 * Names: `expert_<e>/dense_<l>/*`, `gate/*` (OMoE) or `gate_<task>/*` (MMoE), `tower_<task>/...`.
 * `aux` holds the gate weights [B, experts] under the gates' names.
 */
export function buildMixtureOfExperts(kind: 'omoe' | 'mmoe', p: MoeParams, inputDim: number, tasks: string[], params: ParamStore): MultiTaskModel {
  const opts = denseOptions(p);
  const seeds = new SeedBases();
  const n = p.experts;
  const experts = Array.from({ length: n }, (_, e) => new Mlp(params, `expert_${e}`, inputDim, p.expert_hidden, opts, seeds.take()));
  const expertDim = experts[0]!.outDim;
  const gates = kind === 'omoe' ? [new Gate(params, 'gate', inputDim, n)] : tasks.map((t) => new Gate(params, `gate_${t}`, inputDim, n));
  const towers = tasks.map((t) => new Tower(params, `tower_${t}`, expertDim, p.hidden, opts, seeds.take()));
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
}

