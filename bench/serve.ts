/**
 * Serving latency (README "Serving"): for one request of 1,000 candidates (the pre-ranking unit of
 * work) and for batches of 10 such requests, p50 / p99 latency and throughput of
 *   (a) resflow's own scoring path (embedding lookup + the forward pass, models/bundle.ts predict: ResFlow's
 *       native dense program when the native matmul is on, else tfjs)
 *   (b) onnxruntime-node on the model `resflow export --format onnx` writes (tensors in, outputs out)
 * for ResFlow (configs/quickstart.yaml) and PLE (configs/models/ple.yaml), the heaviest baseline.
 * Both start from table rows (hashing is outside both: docs/serving.md) and score the same candidates
 * of the tiny eval split. Each measurement is repeated --repeats times; the medians are printed.
 *
 *   npm run bench:serve [-- --iterations 200 --repeats 5 --ort-threads N]
 * (--ort-threads: onnxruntime's intra-op threads; default: its own choice, one per core)
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadExperiment } from '../src/app/load-experiment.js';
import { setupBackend } from '../src/app/backend.js';
import { silentReporter } from '../src/app/reporter.js';
import { buildBundle, disposeBundle, predict } from '../src/models/bundle.js';
import { BatchEncoder, openSplit, type EncodedBatch } from '../src/data/encode.js';
import { readBatches } from '../src/data/reader.js';
import type { RawBatch } from '../src/data/raw-batch.js';
import { buildOnnx, type FeaturesFile } from '../src/export/onnx.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { values: args } = parseArgs({ options: { iterations: { type: 'string', default: '200' }, repeats: { type: 'string', default: '5' }, 'ort-threads': { type: 'string' } } });
const ITER = Number(args.iterations);
const REPEATS = Number(args.repeats);
const CANDIDATES = 1000;

interface OrtTensor {
  data: unknown;
}
interface Ort {
  Tensor: new (type: 'int64' | 'float32', data: BigInt64Array | Float32Array, dims: number[]) => OrtTensor;
  InferenceSession: { create(model: Uint8Array, opts?: Record<string, unknown>): Promise<{ run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>; release(): Promise<void> }> };
}
const ORT_MODULE = 'onnxruntime-node';
const ORT_THREADS = args['ort-threads'] ? Number(args['ort-threads']) : undefined;
const ort = await import(ORT_MODULE)
  .then((m: { default?: Ort } & Ort) => (m.InferenceSession ? m : m.default!))
  .catch((err: Error) => {
    console.log(`onnxruntime-node cannot be loaded (${err.message.split('\n')[0]}); only resflow's path is measured`);
    return null;
  });

function feeds(o: Ort, features: FeaturesFile, batch: EncodedBatch, numeric: Map<string, Float32Array>): Record<string, OrtTensor> {
  const out: Record<string, OrtTensor> = {};
  let s = 0;
  for (const f of features.inputs) {
    if (f.kind === 'numeric') out[f.name] = new o.Tensor('float32', numeric.get(f.column)!, [batch.length]);
    else out[f.name] = new o.Tensor('int64', BigInt64Array.from(batch.ids[s++]!, (x) => BigInt(x)), f.kind === 'list' ? [batch.length, f.max_len!] : [batch.length]);
  }
  return out;
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
const median = (xs: number[]) => quantile(xs, 0.5);

async function measure(call: () => unknown, rows: number, iterations: number): Promise<{ p50: number; p99: number; rps: number }> {
  for (let i = 0; i < Math.max(5, iterations / 10); i++) await call(); // warm-up
  const times: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) {
    const s = performance.now();
    await call();
    times.push(performance.now() - s);
  }
  const total = (performance.now() - t0) / 1000;
  return { p50: quantile(times, 0.5), p99: quantile(times, 0.99), rps: (rows * iterations) / total };
}

const lines: string[] = [];
let backend = '';
for (const [label, file] of [['ResFlow', 'configs/quickstart.yaml'], ['PLE', 'configs/models/ple.yaml']] as const) {
  const { config } = loadExperiment(path.join(root, file));
  backend = await setupBackend(config, silentReporter);
  const bundle = buildBundle(config);
  const { model, features } = buildOnnx(bundle, 'model.onnx');
  // 10 requests' worth of candidates from the eval split, with the raw numeric values for ONNX.
  const opened = await openSplit(config, 'eval');
  const encoder = new BatchEncoder(config, bundle.plan);
  const raw: RawBatch = (await readBatches(opened.tables[0]!, opened.needs, 10 * CANDIDATES).next()).value as RawBatch;
  const all = encoder.encode(raw, opened.tables[0]!.file);
  // The eval split has 9,004 rows: the candidates are its rows, repeated where more are needed.
  const slice = (n: number): { batch: EncodedBatch; numeric: Map<string, Float32Array> } => {
    const ids = all.ids.map((src, i) => {
      const w = bundle.plan.sparse[i]!.width;
      return Int32Array.from({ length: n * w }, (_, j) => src[((Math.floor(j / w) % all.length) * w) + (j % w)]!);
    });
    const numeric = new Map(bundle.plan.numeric.map((f) => {
      const c = raw.columns.get(f.column)!;
      return [f.column, Float32Array.from({ length: n }, (_, i) => (c.type === 'number' && !(c.valid && !c.valid[i % all.length]) ? c.values[i % all.length]! : 0))];
    }));
    const numericEncoded = Float32Array.from({ length: n * bundle.plan.numeric.length }, (_, j) => all.numeric[j % all.numeric.length]!);
    return { batch: { ...all, length: n, ids, numeric: numericEncoded }, numeric };
  };
  const session = ort ? await ort.InferenceSession.create(model, ORT_THREADS ? { intraOpNumThreads: ORT_THREADS, interOpNumThreads: 1 } : {}) : null;
  for (const [what, requests] of [['1 request', 1], ['10 requests', 10]] as const) {
    const n = requests * CANDIDATES;
    const { batch, numeric } = slice(n);
    const iterations = requests === 1 ? ITER : Math.max(20, ITER / 5);
    const runs = { resflow: [] as { p50: number; p99: number; rps: number }[], onnx: [] as { p50: number; p99: number; rps: number }[] };
    for (let r = 0; r < REPEATS; r++) {
      runs.resflow.push(await measure(() => predict(bundle, batch), n, iterations));
      // The int64 input tensors are made once, as a server holding int64 rows would pass them.
      const input = session ? feeds(ort!, features, batch, numeric) : null;
      if (session) runs.onnx.push(await measure(() => session.run(input!), n, iterations));
    }
    for (const [path_, rs] of Object.entries(runs)) {
      if (rs.length === 0) continue;
      const line = `| ${label} | ${what} (${n.toLocaleString('en-US')} rows) | ${path_ === 'resflow' ? 'resflow' : 'onnxruntime-node'} | ${median(rs.map((x) => x.p50)).toFixed(2)} | ${median(rs.map((x) => x.p99)).toFixed(2)} | ${Math.round(median(rs.map((x) => x.rps))).toLocaleString('en-US')} |`;
      lines.push(line);
      console.log(line);
    }
  }
  await session?.release();
  disposeBundle(bundle);
}
const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
console.log(`\n${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}, load average ${load}`);
console.log(`resflow backend: ${backend}; onnxruntime-node intra-op threads: ${ORT_THREADS ?? 'default (one per core)'}`);
console.log(`medians of ${REPEATS} repeats; ${ITER} calls per repeat for 1 request, ${Math.max(20, ITER / 5)} for 10`);
console.log('\n| model | call | path | p50 ms | p99 ms | candidates/s |\n|---|---|---|---|---|---|\n' + lines.join('\n'));
