/**
 * A small builder for an ONNX graph (docs/serving.md, "The ONNX graph"): initializers from float32
 * weights, nodes of the default opset with generated value names, and the resflow building blocks
 * (dense block, logit layer, softmax gate, mixture of experts) written with the same arithmetic as
 * models/layers.ts and models/common.ts in inference mode.
 */

export const OPSET = 17;
export const IR_VERSION = 8;
export const DTYPE = { float: 1, int64: 7, bool: 9 } as const;

export type AttrValue = number | number[] | { float: number } | { ints: number[] };

export interface TensorInit {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Uint8Array;
}

interface NodeInit {
  op_type: string;
  name: string;
  input: string[];
  output: string[];
  attribute: Record<string, unknown>[];
}

/** Dense-layer options of a model (models/common.ts denseOptions), minus dropout (inference). */
export interface DenseOpts {
  activation: 'relu' | 'prelu';
  batchNorm: boolean;
}

/** Where the trained weights come from: a weight's logical name (`tower_ctr/dense_0/kernel`) to its values and shape. */
export type WeightSource = (name: string) => { values: Float32Array; shape: number[] };

function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  // ONNX raw_data is little-endian; so are the typed arrays on every platform Node supports.
  return new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));
}

export class GraphBuilder {
  readonly nodes: NodeInit[] = [];
  readonly initializers: TensorInit[] = [];
  private readonly names = new Set<string>();
  private readonly constants = new Map<string, string>();
  private count = 0;

  constructor(private readonly weights: WeightSource) {}

  private fresh(hint: string): string {
    let name: string;
    do name = `${hint}:${this.count++}`;
    while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  /** Reserves a name (graph inputs and outputs), so generated names never collide with it. */
  reserve(name: string): string {
    this.names.add(name);
    return name;
  }

  floatTensor(name: string, values: Float32Array, dims: number[]): string {
    this.names.add(name);
    this.initializers.push({ name, dims, data_type: DTYPE.float, raw_data: bytesOf(values) });
    return name;
  }

  /** A trained weight, once per graph, under its logical name. */
  weight(name: string): string {
    if (this.names.has(name)) return name;
    const { values, shape } = this.weights(name);
    return this.floatTensor(name, values, shape);
  }

  /** A float32 constant tensor, shared by every node that uses the same values. */
  constF(values: number[], dims: number[] = values.length === 1 ? [] : [values.length]): string {
    const key = `f${dims.join('x')}:${values.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.floatTensor(this.fresh('const'), Float32Array.from(values), dims);
    this.constants.set(key, name);
    return name;
  }

  constI64(values: number[]): string {
    const key = `i:${values.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = this.fresh('const');
    this.initializers.push({ name, dims: [values.length], data_type: DTYPE.int64, raw_data: bytesOf(BigInt64Array.from(values.map(BigInt))) });
    this.constants.set(key, name);
    return name;
  }

  /** Adds one node; returns the name of its (first) output. */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(opType);
    const attribute = Object.entries(attrs).map(([name, v]) => {
      if (typeof v === 'number') return { name, type: 2, i: v };
      if (Array.isArray(v)) return { name, type: 7, ints: v };
      if ('float' in v) return { name, type: 1, f: v.float };
      return { name, type: 7, ints: v.ints };
    });
    this.nodes.push({ op_type: opType, name: `${opType}_${this.nodes.length}`, input: inputs, output: [out], attribute });
    return out;
  }

  // ---- resflow's layers (models/layers.ts, models/common.ts), inference mode ----

  /** DenseBlock.apply: x·W + b -> (batch norm with the moving averages) -> relu or prelu. Dropout is off. */
  dense(prefix: string, x: string, o: DenseOpts): string {
    let h = this.op('Add', [this.op('MatMul', [x, this.weight(`${prefix}/kernel`)]), this.weight(`${prefix}/bias`)]);
    if (o.batchNorm) {
      // tf.batchNorm: (h - mean) * gamma / sqrt(variance + eps) + beta, eps 1e-3 (layers.ts).
      const gamma = this.weights(`${prefix}/bn_gamma`).values;
      const variance = this.weights(`${prefix}/bn_moving_variance`).values;
      const scale = gamma.map((g, i) => g / Math.sqrt(variance[i]! + 1e-3));
      h = this.op('Sub', [h, this.weight(`${prefix}/bn_moving_mean`)]);
      h = this.op('Mul', [h, this.floatTensor(`${prefix}/bn_scale`, scale, [scale.length])]);
      h = this.op('Add', [h, this.weight(`${prefix}/bn_beta`)]);
    }
    // relu(h) - alpha * relu(-h) is PRelu with slope alpha.
    return o.activation === 'prelu' ? this.op('PRelu', [h, this.weight(`${prefix}/prelu_alpha`)]) : this.op('Relu', [h]);
  }

  /** Mlp.apply: dense blocks `${prefix}/dense_<i>`. */
  mlp(prefix: string, x: string, layers: number, o: DenseOpts): string {
    let h = x;
    for (let i = 0; i < layers; i++) h = this.dense(`${prefix}/dense_${i}`, h, o);
    return h;
  }

  /** LogitLayer.apply: x·W + b as [batch]. */
  logit(prefix: string, x: string): string {
    const z = this.op('Add', [this.op('MatMul', [x, this.weight(`${prefix}/kernel`)]), this.weight(`${prefix}/bias`)]);
    return this.op('Reshape', [z, this.constI64([-1])]);
  }

  /** Tower.apply: `hidden` dense blocks, then the logit `${prefix}/logit`. */
  tower(prefix: string, x: string, hidden: number, o: DenseOpts): string {
    return this.logit(`${prefix}/logit`, this.mlp(prefix, x, hidden, o));
  }

  /** Gate.apply: softmax(x W + b) over the last axis. */
  gate(prefix: string, x: string): string {
    const z = this.op('Add', [this.op('MatMul', [x, this.weight(`${prefix}/kernel`)]), this.weight(`${prefix}/bias`)]);
    return this.op('Softmax', [z], { axis: -1 });
  }

  /** Column e of a [batch, n] tensor as [batch, 1]. */
  column(x: string, e: number): string {
    return this.op('Slice', [x, this.constI64([e]), this.constI64([e + 1]), this.constI64([1])]);
  }

  /** mixture: sum_e gate[:, e] * experts[e]. */
  mixture(gate: string, experts: string[]): string {
    if (experts.length === 1) return this.op('Mul', [gate, experts[0]!]);
    return this.op('Sum', experts.map((h, e) => this.op('Mul', [this.column(gate, e), h])));
  }
}
