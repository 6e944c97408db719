/**
 * wasm kernel benchmark (docs/domain.md, Facts about the platform): ms per call, median of several runs, for
 *  - matmul with a transposed input, with tfjs's own kernel ("before") and with resflow's
 *    explicit-transpose wrapper ("after"), on the brief's shape and on the gradient shapes that
 *    Dense layers produce (dx = dy·Wᵀ, dW = xᵀ·dy);
 *  - the gradient of tf.gather (UnsortedSegmentSum) on wasm for a few table sizes;
 *  - one training step of a small embedding + MLP model, before and after.
 *
 *   npm run build && node dist/bench/kernels.js [runs]
 */
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../src/kernels/backend.js';
import { registerWasmKernels } from '../src/kernels/wasm-kernels.js';

const RUNS = Number(process.argv[2] ?? 9);

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** ms per call of f (which must finish its work: read the result back), median of RUNS. */
function msPerCall(f: () => void, runs = RUNS): number {
  f();
  f();
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f();
    ts.push(performance.now() - t);
  }
  return median(ts);
}

function fmt(ms: number): string {
  return ms < 10 ? ms.toFixed(2) : ms.toFixed(1);
}

function row(cells: string[], widths: number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
}

interface MatMulCase {
  label: string;
  a: number[];
  b: number[];
  transposeA: boolean;
  transposeB: boolean;
}

function matmulCases(): MatMulCase[] {
  const cases: MatMulCase[] = [
    { label: '[1024,256]·[128,256]ᵀ', a: [1024, 256], b: [128, 256], transposeA: false, transposeB: true },
  ];
  // Dense(in -> out) on a batch of B: forward x[B,in]·W[in,out]; backward dx = dy·Wᵀ, dW = xᵀ·dy.
  for (const [B, inDim, outDim] of [
    [1024, 256, 128],
    [1024, 128, 64],
    [4096, 512, 256],
  ]) {
    cases.push({
      label: `dx: dy[${B},${outDim}]·W[${inDim},${outDim}]ᵀ`,
      a: [B, outDim],
      b: [inDim, outDim],
      transposeA: false,
      transposeB: true,
    });
    cases.push({
      label: `dW: x[${B},${inDim}]ᵀ·dy[${B},${outDim}]`,
      a: [B, inDim],
      b: [B, outDim],
      transposeA: true,
      transposeB: false,
    });
  }
  cases.push({ label: '[8,128,64]·[8,96,64]ᵀ (batched)', a: [8, 128, 64], b: [8, 96, 64], transposeA: false, transposeB: true });
  return cases;
}

function benchMatMul(): void {
  console.log(`\nmatmul with a transposed input on wasm, ms per call (median of ${RUNS})`);
  const widths = [36, 9, 9, 8, 14];
  console.log(row(['case', 'before', 'after', 'speedup', 'untransposed'], widths));
  for (const c of matmulCases()) {
    const a = tf.randomUniform(c.a, -0.5, 0.5);
    const b = tf.randomUniform(c.b, -0.5, 0.5);
    // The untransposed product of the same size (what XNNPACK does when nothing is transposed).
    const a0 = c.transposeA ? tf.transpose(a, [...Array(c.a.length - 2).keys(), c.a.length - 1, c.a.length - 2]) : a;
    const b0 = c.transposeB ? tf.transpose(b, [...Array(c.b.length - 2).keys(), c.b.length - 1, c.b.length - 2]) : b;
    const run = (): void => {
      tf.tidy(() => {
        tf.matMul(a, b, c.transposeA, c.transposeB).dataSync();
      });
    };
    registerWasmKernels({ transposedMatMul: false });
    const before = msPerCall(run);
    registerWasmKernels();
    const after = msPerCall(run);
    const plain = msPerCall(() => {
      tf.tidy(() => {
        tf.matMul(a0, b0).dataSync();
      });
    });
    console.log(row([c.label, fmt(before), fmt(after), `${(before / after).toFixed(1)}x`, fmt(plain)], widths));
    tf.dispose([a, b, a0, b0]);
  }
}

function benchGatherGrad(): void {
  console.log(`\ngradient of tf.gather on wasm (UnsortedSegmentSum), ms per call (median of ${RUNS})`);
  const widths = [40, 9];
  console.log(row(['table · indices', 'ms'], widths));
  for (const [rows, dim, n] of [
    [1000, 16, 8192],
    [100_000, 16, 8192],
    [1_000_000, 16, 8192],
    [100_000, 64, 65536],
  ]) {
    const table = tf.randomUniform([rows, dim], -0.5, 0.5);
    const idx = tf.randomUniform([n], 0, rows, 'int32') as tf.Tensor1D;
    const g = tf.grad((t: tf.Tensor) => tf.sum(tf.gather(t, idx)));
    const ms = msPerCall(() => {
      tf.tidy(() => {
        g(table).dataSync();
      });
    }, Math.min(RUNS, rows >= 1_000_000 ? 5 : RUNS));
    // Only the segment sum: same inputs, without the rest of the gradient graph.
    const dy = tf.randomUniform([n, dim], -0.5, 0.5);
    const ussMs = msPerCall(() => {
      tf.tidy(() => {
        tf.unsortedSegmentSum(dy, idx, rows).dataSync();
      });
    });
    console.log(
      row([`[${rows},${dim}] · ${n}`, fmt(ms)], widths) + `   (UnsortedSegmentSum alone ${fmt(ussMs)} ms)`,
    );
    tf.dispose([table, idx, dy]);
  }
}

async function benchTrainStep(): Promise<void> {
  const B = 1024;
  const V = 10_000;
  const model = tf.sequential({
    layers: [
      tf.layers.embedding({ inputDim: V, outputDim: 16, inputLength: 8 }),
      tf.layers.flatten(),
      tf.layers.dense({ units: 256, activation: 'relu' }),
      tf.layers.dense({ units: 128, activation: 'relu' }),
      tf.layers.dense({ units: 1, activation: 'sigmoid' }),
    ],
  });
  const optimizer = tf.train.adam(1e-3);
  const x = tf.randomUniform([B, 8], 0, V, 'int32');
  const y = tf.randomUniform([B, 1]).round();
  const step = (): void => {
    const loss = optimizer.minimize(
      () => tf.losses.sigmoidCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar,
      true,
    );
    if (loss !== null) {
      loss.dataSync();
      loss.dispose();
    }
  };
  console.log(`\ntraining step, embedding[${V},16]x8 -> 256 -> 128 -> 1, batch ${B}, adam, ms per step (median of ${RUNS})`);
  registerWasmKernels({ transposedMatMul: false });
  const before = msPerCall(step);
  registerWasmKernels();
  const after = msPerCall(step);
  console.log(`  before ${fmt(before)}   after ${fmt(after)}   speedup ${(before / after).toFixed(2)}x`);
  model.dispose();
  optimizer.dispose();
  tf.dispose([x, y]);
}

async function main(): Promise<void> {
  const info = await initBackend('wasm');
  console.log(`backend: ${info.detail}`);
  benchMatMul();
  benchGatherGrad();
  await benchTrainStep();
}

await main();
