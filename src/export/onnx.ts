/**
 * `resflow export --format onnx`: one ONNX graph per run (docs/serving.md). Inputs are the table
 * rows of each sparse feature (hashing stays outside the graph: docs/serving.md, "Id hashing") and
 * the raw numeric features; the graph gathers and pools the embeddings (masking list padding),
 * applies numeric transforms, runs the model's forward pass (onnx-models.ts) and fuses the task
 * probabilities as the config's `fusion` says. `features.json` beside the model describes each input.
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../base/errors.js';
import { version } from '../base/version.js';
import { featureSeed } from '../data/hash.js';
import type { ModelBundle } from '../models/bundle.js';
import { modelDescriptor } from '../models/registry.js';
import type { SchemaIssue } from '../config/schema.js';
import { FUSION_EPS } from '../metrics/fusion.js';
import type { Exporter, ExportedFile } from './exporter.js';
import { DTYPE, GraphBuilder, IR_VERSION, OPSET, type DenseOpts } from './onnx-graph.js';
import { ONNX_MODELS, type ModelParams } from './onnx-models.js';
import { encodeModel } from './onnx-proto.js';

/** protobuf messages cannot exceed 2 GiB; larger models would need ONNX's external data files. */
const PROTOBUF_LIMIT = 2 ** 31 - 1;

type Dim = number | 'batch';

function valueInfo(name: string, elemType: number, dims: Dim[], doc: string) {
  return {
    name,
    doc_string: doc,
    type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (d === 'batch' ? { dim_param: 'batch' } : { dim_value: d })) } } },
  };
}

/** What features.json says about one input (docs/serving.md, "features.json"). */
export interface FeatureInput {
  name: string;
  column: string;
  kind: 'categorical' | 'list' | 'numeric';
  dtype: 'int64' | 'float32';
  shape: Dim[];
  table_rows?: number;
  buckets?: number;
  hash_seed?: number;
  null_row?: number;
  vocab?: { file: string; size: number; out_of_vocabulary_row: 0 };
  max_len?: number;
  pad?: -1;
  pooling?: 'sum' | 'mean';
  transform?: 'none' | 'log1p';
}

export interface FeaturesFile {
  format: 'resflow-features';
  version: 1;
  model: string;
  model_type: string;
  resflow_version: string;
  hash: string;
  inputs: FeatureInput[];
  outputs: { name: string; task?: string; fusion?: { mode: string; weights: Record<string, number> } }[];
}

export function buildOnnx(bundle: ModelBundle, mainName: string): { model: Uint8Array; features: FeaturesFile; vocabs: ExportedFile[] } {
  const { config, plan, tables, params, taskNames } = bundle;
  const emit = ONNX_MODELS[config.model.type];
  if (!emit) throw new UsageError(`model.type ${config.model.type}: no ONNX export for this model; exportable: ${Object.keys(ONNX_MODELS).join(', ')}`);
  const issues: SchemaIssue[] = [];
  const p = modelDescriptor(config.model.type)!.resolve(config.model, ['model'], issues) as unknown as ModelParams;
  const o: DenseOpts = { activation: config.model.activation, batchNorm: config.model.batch_norm };

  const g = new GraphBuilder((name) => {
    const v = params.variables.get(name);
    if (!v) throw new Error(`ONNX export: the model has no weight ${name}`);
    return { values: v.dataSync() as Float32Array, shape: v.shape };
  });
  const outputs = [...taskNames.map((t) => `p_${t}`), 'fused'];
  const inputs: ReturnType<typeof valueInfo>[] = [];
  const described: FeatureInput[] = [];
  const vocabs: ExportedFile[] = [];
  const seen = new Set<string>(outputs);
  const claim = (name: string) => {
    if (seen.has(name)) throw new UsageError(`features: the name \`${name}\` is both a feature and an output (p_<task>, fused) of the ONNX graph; rename the feature`);
    seen.add(name);
    g.reserve(name);
  };
  outputs.forEach((n) => g.reserve(n));

  // Sparse features: gather (and pool) embedding rows, as kernels/sparse-js.ts lookup does.
  const parts: string[] = [];
  plan.sparse.forEach((f, i) => {
    claim(f.name);
    const fc = config.features.find((c) => c.name === f.name)!;
    const table = g.floatTensor(`embedding/${f.name}`, tables.tables[i]!.weights, [f.tableSize, f.dim]);
    const entry: FeatureInput = { name: f.name, column: f.column, kind: f.kind, dtype: 'int64', shape: f.kind === 'list' ? ['batch', f.width] : ['batch'], table_rows: f.tableSize };
    if (fc.vocab !== undefined) {
      const file = `${mainName.replace(/\.onnx$/, '')}.vocab.${f.name}.txt`;
      vocabs.push({ name: file, data: readFileSync(fc.vocab) });
      entry.vocab = { file, size: f.tableSize - 1, out_of_vocabulary_row: 0 };
      entry.null_row = 0;
    } else {
      entry.buckets = fc.buckets!;
      entry.hash_seed = featureSeed(f.name);
      entry.null_row = fc.buckets!;
    }
    if (f.kind === 'categorical') {
      inputs.push(valueInfo(f.name, DTYPE.int64, ['batch'], `table row of ${f.name} (see features.json)`));
      parts.push(g.op('Gather', [table, f.name], { axis: 0 }));
    } else {
      Object.assign(entry, { max_len: f.width, pad: -1, pooling: f.pooling });
      inputs.push(valueInfo(f.name, DTYPE.int64, ['batch', f.width], `table rows of ${f.name}, padded with -1 (see features.json)`));
      // -1 pads: gather row 0 for them and zero it with the mask; mean divides by max(count, 1).
      const mask = g.op('Cast', [g.op('Greater', [f.name, g.constI64([-1])])], { to: DTYPE.float });
      const rows = g.op('Gather', [table, g.op('Max', [f.name, g.constI64([0])])], { axis: 0 });
      const masked = g.op('Mul', [rows, g.op('Unsqueeze', [mask, g.constI64([2])])]);
      let pooled = g.op('ReduceSum', [masked, g.constI64([1])], { keepdims: 0 });
      if (f.pooling === 'mean') {
        const count = g.op('ReduceSum', [mask, g.constI64([1])], { keepdims: 1 });
        pooled = g.op('Div', [pooled, g.op('Max', [count, g.constF([1])])]);
      }
      parts.push(pooled);
    }
    described.push(entry);
  });
  // Numeric features: the raw value (a null reads as 0, the caller's job); log1p(max(v, 0)) in-graph.
  for (const f of plan.numeric) {
    claim(f.name);
    inputs.push(valueInfo(f.name, DTYPE.float, ['batch'], `${f.name}, raw value${f.transform === 'log1p' ? ' (log1p(max(v, 0)) is applied in the graph)' : ''}`));
    let v = f.name;
    if (f.transform === 'log1p') v = g.op('Log', [g.op('Add', [g.op('Max', [v, g.constF([0])]), g.constF([1])])]);
    parts.push(g.op('Unsqueeze', [v, g.constI64([1])]));
    described.push({ name: f.name, column: f.column, kind: 'numeric', dtype: 'float32', shape: ['batch'], transform: f.transform });
  }
  const x = parts.length === 1 ? parts[0]! : g.op('Concat', parts, { axis: 1 });

  const probs = emit(g, p, taskNames, x, o, tables.layout());
  probs.forEach((pr, k) => g.op('Identity', [pr], {}, outputs[k]));

  // Fusion (metrics/fusion.ts): additive sum_t a_t p_t; multiplicative exp(sum_t a_t log clip(p_t)).
  const { mode, weights } = config.fusion;
  const terms = taskNames.flatMap((t, k) => {
    const a = Object.prototype.hasOwnProperty.call(weights, t) ? weights[t]! : 1;
    if (a === 0) return [];
    const v = mode === 'additive' ? probs[k]! : g.op('Log', [g.op('Clip', [probs[k]!, g.constF([FUSION_EPS]), g.constF([1])])]);
    return [a === 1 ? v : g.op('Mul', [v, g.constF([a])])];
  });
  const sum = terms.length === 0 ? g.op('Mul', [probs[0]!, g.constF([0])]) : terms.length === 1 ? terms[0]! : g.op('Sum', terms);
  g.op(mode === 'additive' ? 'Identity' : 'Exp', [sum], {}, 'fused');

  const bytes = g.initializers.reduce((s, t) => s + t.raw_data.length, 0);
  if (bytes > PROTOBUF_LIMIT - (1 << 24)) {
    throw new UsageError(`ONNX export: the model's weights take ${(bytes / 2 ** 30).toFixed(2)} GiB; one ONNX file holds at most 2 GiB (fewer buckets or a smaller embedding_dim)`);
  }
  const model = encodeModel({
    ir_version: IR_VERSION,
    opset_import: [{ domain: '', version: OPSET }],
    producer_name: 'resflow',
    producer_version: version(),
    doc_string: `resflow ${config.model.type} model of experiment ${config.name}; inputs and hashing in features.json and docs/serving.md`,
    graph: {
      name: config.name,
      node: g.nodes,
      initializer: g.initializers,
      input: inputs,
      output: outputs.map((n, k) => valueInfo(n, DTYPE.float, ['batch'], k < taskNames.length ? `probability of task ${taskNames[k]}` : `fused score (fusion: ${mode})`)),
    },
  });
  const features: FeaturesFile = {
    format: 'resflow-features',
    version: 1,
    model: mainName,
    model_type: config.model.type,
    resflow_version: version(),
    hash: 'docs/serving.md, "Id hashing": row = hash(id, hash_seed) mod buckets; null -> null_row',
    inputs: described,
    outputs: [...taskNames.map((t) => ({ name: `p_${t}`, task: t })), { name: 'fused', fusion: { mode, weights: { ...weights } } }],
  };
  return { model, features, vocabs };
}

export const onnxExporter: Exporter = {
  format: 'onnx',
  defaultName: 'model.onnx',
  description: 'one ONNX graph (opset 17) with the embedding tables, and features.json describing its inputs',
  export(bundle, mainName) {
    const { model, features, vocabs } = buildOnnx(bundle, mainName);
    const summary = `${(model.length / 2 ** 20).toFixed(1)} MiB, ${features.inputs.length} inputs, outputs ${features.outputs.map((x) => x.name).join(', ')}`;
    return { files: [{ name: mainName, data: model }, { name: 'features.json', data: `${JSON.stringify(features, null, 2)}\n` }, ...vocabs], summary };
  },
};
