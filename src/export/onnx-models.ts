/**
 * Each model of the registry as ONNX nodes: the forward pass of src/models/<model>.ts in inference
 * mode, on the same weights (by their logical names), from the concatenated input x [batch, D] to
 * one probability [batch] per task. A model type missing here cannot be exported (exit 2).
 */
import type { GraphBuilder, DenseOpts } from './onnx-graph.js';
import { columnRuns } from '../models/common.js';
import { TOWERS } from '../models/two-tower.js';
import type { InputLayout } from '../models/registry.js';

/** A model's resolved parameters (the run's config.yaml has every default filled in). */
export type ModelParams = Record<string, unknown>;

type Emit = (g: GraphBuilder, p: ModelParams, tasks: string[], x: string, o: DenseOpts, layout: InputLayout) => string[];

const list = (p: ModelParams, key: string): number[] => p[key] as number[];
const num = (p: ModelParams, key: string): number => p[key] as number;
const sigmoid = (g: GraphBuilder, z: string) => g.op('Sigmoid', [z]);

/** resflow.ts: o_k^l = f_k^l(o_k^{l-1}) + o_{k-1}^l; z_k = g_k(o_k^L) + z_{k-1}. */
const resflow: Emit = (g, p, tasks, x, o) => {
  const residual = p.residual as string;
  const featureRes = residual === 'both' || residual === 'feature';
  const logitRes = residual === 'both' || residual === 'logit';
  const hidden = list(p, 'hidden');
  const logits: string[] = [];
  let prev: string[] | null = null;
  tasks.forEach((t, k) => {
    const outputs: string[] = [];
    let h = x;
    hidden.forEach((_, l) => {
      h = g.dense(`tower_${t}/dense_${l}`, h, o);
      if (featureRes && prev) h = g.op('Add', [h, prev[l]!]);
      outputs.push(h);
    });
    const z = g.logit(`tower_${t}/logit`, h);
    logits.push(logitRes && k > 0 ? g.op('Add', [z, logits[k - 1]!]) : z);
    prev = outputs;
  });
  return logits.map((z) => sigmoid(g, z));
};

/** shared-bottom.ts: bottom MLP, then a tower per task. */
const sharedBottom: Emit = (g, p, tasks, x, o) => {
  const shared = g.mlp('bottom', x, list(p, 'bottom').length, o);
  return tasks.map((t) => sigmoid(g, g.tower(`tower_${t}`, shared, list(p, 'hidden').length, o)));
};

/** moe.ts: expert MLPs, one gate (OMoE) or one per task (MMoE), a tower per task over its mixture. */
const moe =
  (kind: 'omoe' | 'mmoe'): Emit =>
  (g, p, tasks, x, o) => {
    const experts = Array.from({ length: num(p, 'experts') }, (_, e) => g.mlp(`expert_${e}`, x, list(p, 'expert_hidden').length, o));
    const mixed = kind === 'omoe' ? [g.mixture(g.gate('gate', x), experts)] : tasks.map((t) => g.mixture(g.gate(`gate_${t}`, x), experts));
    return tasks.map((t, k) => sigmoid(g, g.tower(`tower_${t}`, mixed[kind === 'omoe' ? 0 : k]!, list(p, 'hidden').length, o)));
  };

/** ple.ts: stacked CGC levels with task and shared gates, then towers. */
const ple: Emit = (g, p, tasks, x, o) => {
  const levels = num(p, 'levels');
  const nShared = num(p, 'shared_experts');
  const nTask = num(p, 'task_experts');
  const depth = list(p, 'expert_hidden').length;
  let taskIn = tasks.map(() => x);
  let sharedIn = x;
  for (let l = 0; l < levels; l++) {
    const pre = `level_${l}`;
    // The same order of expert construction as ple.ts (names make the order irrelevant here).
    const taskOut = tasks.map((t, k) => Array.from({ length: nTask }, (_, i) => g.mlp(`${pre}/expert_${t}_${i}`, taskIn[k]!, depth, o)));
    const sharedOut = Array.from({ length: nShared }, (_, i) => g.mlp(`${pre}/expert_shared_${i}`, sharedIn, depth, o));
    const nextTaskIn = tasks.map((t, k) => g.mixture(g.gate(`${pre}/gate_${t}`, taskIn[k]!), [...taskOut[k]!, ...sharedOut]));
    if (l < levels - 1 && nShared > 0) sharedIn = g.mixture(g.gate(`${pre}/gate_shared`, sharedIn), [...taskOut.flat(), ...sharedOut]);
    taskIn = nextTaskIn;
  }
  return tasks.map((t, k) => sigmoid(g, g.tower(`tower_${t}`, taskIn[k]!, list(p, 'hidden').length, o)));
};

/** esmm.ts: pCTR = sigmoid(z_ctr); pCTCVR = pCTR x pCVR (the model's logit of the product, through sigmoid). */
const esmm: Emit = (g, p, _tasks, x, o) => {
  const depth = list(p, 'hidden').length;
  const pCtr = sigmoid(g, g.tower('tower_ctr', x, depth, o));
  const pCvr = sigmoid(g, g.tower('tower_cvr', x, depth, o));
  return [pCtr, g.op('Mul', [pCtr, pCvr])];
};

/** aitm.ts: towers q_k; for k >= 2 the AIT attention over {h_{k-1}(z_{k-1}), q_k}; a logit on z_k. */
const aitm: Emit = (g, p, tasks, x, o) => {
  const depth = list(p, 'hidden').length;
  const scale = g.constF([1 / Math.sqrt(num(p, 'attention_dim'))]);
  const probs: string[] = [];
  let prev: string | null = null;
  tasks.forEach((t, k) => {
    const q = g.mlp(`tower_${t}`, x, depth, o);
    let z = q;
    if (k > 0 && prev) {
      const name = `ait_${t}`;
      const pT = g.dense(`${name}/transfer`, prev, o);
      const score = (u: string) => g.op('ReduceSum', [g.op('Mul', [g.op('MatMul', [u, g.weight(`${name}/query/kernel`)]), g.op('MatMul', [u, g.weight(`${name}/key/kernel`)])]), g.constI64([1])], { keepdims: 1 });
      const w = g.op('Softmax', [g.op('Mul', [g.op('Concat', [score(pT), score(q)], { axis: 1 }), scale])], { axis: -1 });
      const V = g.weight(`${name}/value/kernel`);
      z = g.op('Add', [g.op('Mul', [g.column(w, 0), g.op('MatMul', [pT, V])]), g.op('Mul', [g.column(w, 1), g.op('MatMul', [q, V])])]);
    }
    probs.push(sigmoid(g, g.logit(`tower_${t}/logit`, z)));
    prev = z;
  });
  return probs;
};

/** two-tower.ts: each tower over its features' columns; z_t = u_t · v_t + b_t. */
const twoTower: Emit = (g, p, tasks, x, o, layout) => {
  const [user, item] = TOWERS.map((side) => {
    const tower = p[side] as { features: string[]; hidden: number[] };
    const parts = columnRuns(layout, tower.features).map(([s, e]) => g.op('Slice', [x, g.constI64([s]), g.constI64([e]), g.constI64([1])]));
    const input = parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: 1 });
    const h = g.mlp(side, input, tower.hidden.length, o);
    return tasks.map((t) => g.op('Add', [g.op('MatMul', [h, g.weight(`${side}/out_${t}/kernel`)]), g.weight(`${side}/out_${t}/bias`)]));
  }) as [string[], string[]];
  return tasks.map((t, k) => {
    const dot = g.op('ReduceSum', [g.op('Mul', [user[k]!, item[k]!]), g.constI64([1])], { keepdims: 0 });
    return sigmoid(g, g.op('Add', [dot, g.weight(`score_${t}/bias`)]));
  });
};

/** cold.ts: the input holds only its features (the export's inputs are those); a shared MLP, a logit per task. */
const cold: Emit = (g, p, tasks, x, o) => {
  const h = g.mlp('mlp', x, list(p, 'hidden').length, o);
  return tasks.map((t) => sigmoid(g, g.logit(`logit_${t}`, h)));
};

/** Model type -> its ONNX emitter (every model of models/registry.ts). */
export const ONNX_MODELS: Record<string, Emit> = {
  resflow,
  shared_bottom: sharedBottom,
  omoe: moe('omoe'),
  mmoe: moe('mmoe'),
  ple,
  esmm,
  aitm,
  two_tower: twoTower,
  cold,
};
