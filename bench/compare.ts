/**
 * resflow vs PyTorch on the benchmark model of bench/reference-model.ts: the same ResFlow model, data
 * and batch size, trained and scored on this machine's CPU.
 *
 *   npm run bench:compare [-- --runs 3 --steps 40 --repeats 3]
 *
 * 1. Installs the reference's Debian packages when `/usr/bin/python3 -c "import torch"` fails
 *    (python3-torch, libopenblas0-pthread). /usr/bin/python3 is used on purpose: a `python3` on PATH
 *    may be a pyenv one without Debian's packages.
 * 2. Selection pass: one short PyTorch run per set-up (thread settings, see SETUPS, x sparse and
 *    dense embedding gradients); training keeps the fastest set-up, scoring the fastest at batch
 *    1024. On a shared 2-core machine torch.set_num_threads(2) can be several times slower than 1:
 *    OpenMP's spinning barriers wait for a core that another job (or OpenBLAS's own thread pool,
 *    which matmuls use whatever set_num_threads says) holds.
 * 3. Runs resflow's own benchmark (`dist/bench/train.js`, wasm) and the PyTorch reference
 *    (bench/torch_ref.py) alternately, --runs times each; each run is itself the median of
 *    --repeats timed passes. Prints the medians over runs, peak RSS, the load average, and as its
 *    last two lines `train_ratio=<resflow/pytorch>` and `score_ratio=<resflow/pytorch>` (scoring at
 *    batch 1024, the size resflow's benchmark scores with).
 *
 * Neither CI nor the tests run it.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensurePython, PY } from './py-deps.js';

const { values: args } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    steps: { type: 'string', default: '40' },
    repeats: { type: 'string', default: '3' },
    'select-steps': { type: 'string', default: '20' },
    backend: { type: 'string', default: 'wasm' },
  },
});
const RUNS = Number(args.runs);
const STEPS = Number(args.steps);
const REPEATS = Number(args.repeats);

const TRAIN_JS = fileURLToPath(new URL('./train.js', import.meta.url));
const TORCH_REF = fileURLToPath(new URL('../../bench/torch_ref.py', import.meta.url));

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');

function ensureTorch(): void {
  ensurePython(['torch'], ['python3-torch', 'libopenblas0-pthread']);
}

interface Result {
  train: number;
  score: number;
  rss: number;
}

interface TorchRaw {
  embedding_grad: string;
  threads: number;
  score_threads: number;
  torch: string;
  train_samples_per_s: number | null;
  score_samples_per_s: number;
  score_by_batch: Record<string, number>;
  score_best: { batch: number; samples_per_s: number };
  peak_rss_mib: number;
}

/** A way to run PyTorch on this machine: thread count and environment (embedding gradients apart). */
interface Setup {
  label: string;
  threads: number;
  env: Record<string, string>;
}

const SETUPS: Setup[] = [
  { label: 'set_num_threads(2)', threads: 2, env: {} },
  { label: 'set_num_threads(2), OMP_WAIT_POLICY=PASSIVE', threads: 2, env: { OMP_WAIT_POLICY: 'PASSIVE' } },
  { label: 'set_num_threads(1), OpenBLAS pool 2 threads', threads: 1, env: {} },
  { label: 'one core: set_num_threads(1), OPENBLAS_NUM_THREADS=1', threads: 1, env: { OPENBLAS_NUM_THREADS: '1' } },
];

function runResflow(): Result & { backend: string } {
  const out = execFileSync(process.execPath, [TRAIN_JS, '--backend', args.backend!, '--steps', String(STEPS), '--repeats', String(REPEATS)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const num = (re: RegExp, what: string) => {
    const m = re.exec(out);
    if (!m) throw new Error(`could not find ${what} in the output of ${TRAIN_JS}:\n${out}`);
    return Number(m[1]!.replace(/,/g, ''));
  };
  return {
    train: num(/train samples\/s: median ([\d,.]+)/, 'train samples/s'),
    score: num(/score samples\/s: median ([\d,.]+)/, 'score samples/s'),
    rss: num(/peak RSS: ([\d.]+) MiB/, 'peak RSS'),
    backend: /backend: (.+?); model:/.exec(out)?.[1] ?? args.backend!,
  };
}

function runTorch(setup: Setup, emb: string, opts: { steps: number; repeats: number; scoreBatches: string; scoreOnly?: boolean }): TorchRaw {
  const argv = [TORCH_REF, '--emb', emb, '--threads', String(setup.threads), '--steps', String(opts.steps), '--repeats', String(opts.repeats), '--score-batches', opts.scoreBatches];
  if (opts.scoreOnly) argv.push('--score-only');
  const out = execFileSync(PY, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...setup.env } });
  return JSON.parse(out.trim().split('\n').pop()!) as TorchRaw;
}

function main(): void {
  ensureTorch();
  console.log(`load average at start: ${load()} (the machine is shared; figures are medians)`);

  // Selection pass: the fastest honest PyTorch set-up on this machine, for training and for scoring.
  const selSteps = Number(args['select-steps']);
  console.log(`\nPyTorch set-ups (one run each, median of 3 passes of ${selSteps} steps):`);
  const tried: { setup: Setup; emb: string; r: TorchRaw }[] = [];
  for (const setup of SETUPS) {
    for (const emb of ['sparse', 'dense']) {
      const r = runTorch(setup, emb, { steps: selSteps, repeats: 3, scoreBatches: '1024' });
      tried.push({ setup, emb, r });
      console.log(`  ${setup.label.padEnd(54)} ${emb.padEnd(6)} embedding grads: train ${fmt(r.train_samples_per_s!).padStart(7)} samples/s, score@1024 ${fmt(r.score_samples_per_s).padStart(8)} samples/s`);
    }
  }
  const bestTrain = tried.reduce((a, b) => (b.r.train_samples_per_s! > a.r.train_samples_per_s! ? b : a));
  const bestScore = tried.reduce((a, b) => (b.r.score_samples_per_s > a.r.score_samples_per_s ? b : a));
  const sameSetup = bestScore.setup === bestTrain.setup;
  console.log(`  -> training: ${bestTrain.setup.label}, ${bestTrain.emb} embedding gradients (${bestTrain.emb === 'sparse' ? 'SparseAdam + Adam' : 'Adam'}); scoring: ${bestScore.setup.label}`);

  const rf: ReturnType<typeof runResflow>[] = [];
  const ptTrain: TorchRaw[] = [];
  const ptScore: TorchRaw[] = [];
  for (let i = 0; i < RUNS; i++) {
    const a = runResflow();
    rf.push(a);
    console.log(`run ${i + 1}/${RUNS} resflow (${a.backend}): train ${fmt(a.train)}, score ${fmt(a.score)} samples/s, peak RSS ${a.rss.toFixed(0)} MiB  [load ${load()}]`);
    const b = runTorch(bestTrain.setup, bestTrain.emb, { steps: STEPS, repeats: REPEATS, scoreBatches: '1024,4096,16384' });
    ptTrain.push(b);
    const c = sameSetup ? b : runTorch(bestScore.setup, bestTrain.emb, { steps: STEPS, repeats: REPEATS, scoreBatches: '1024,4096,16384', scoreOnly: true });
    ptScore.push(c);
    console.log(
      `run ${i + 1}/${RUNS} pytorch: train ${fmt(b.train_samples_per_s!)}, score@1024 ${fmt(c.score_samples_per_s)} samples/s (${Object.entries(c.score_by_batch).map(([k, v]) => `@${k} ${fmt(v)}`).join(', ')}), peak RSS ${b.peak_rss_mib.toFixed(0)} MiB  [load ${load()}]`,
    );
  }

  const rfTrain = median(rf.map((r) => r.train));
  const rfScore = median(rf.map((r) => r.score));
  const pTrain = median(ptTrain.map((r) => r.train_samples_per_s!));
  const pScore = median(ptScore.map((r) => r.score_samples_per_s));
  const batches = Object.keys(ptScore[0]!.score_by_batch);
  const byBatch = Object.fromEntries(batches.map((b) => [b, median(ptScore.map((r) => r.score_by_batch[b]!))]));
  const bestBatch = batches.reduce((a, b) => (byBatch[b]! > byBatch[a]! ? b : a));
  const spec = tried.filter((t) => t.setup === SETUPS[0]);
  const oneCore = tried.filter((t) => t.setup === SETUPS[3]);

  console.log(`\nmedians of ${RUNS} runs (each the median of ${REPEATS} passes of ${STEPS} batches of 1024); load average now ${load()}`);
  console.log(`resflow (${rf[0]!.backend}): train ${fmt(rfTrain)} samples/s, score ${fmt(rfScore)} samples/s (batch 1024), peak RSS ${median(rf.map((r) => r.rss)).toFixed(0)} MiB`);
  console.log(
    `pytorch ${ptTrain[0]!.torch} (train: ${bestTrain.setup.label}, ${bestTrain.emb} embedding grads; score: ${bestScore.setup.label}, inference_mode): train ${fmt(pTrain)} samples/s, score ${fmt(pScore)} samples/s (batch 1024), best score ${fmt(byBatch[bestBatch]!)} samples/s (batch ${bestBatch}), peak RSS ${median(ptTrain.map((r) => r.peak_rss_mib)).toFixed(0)} MiB`,
  );
  const ref = (rows: typeof tried, setup: Setup) => {
    const t = rows.reduce((a, b) => (b.r.train_samples_per_s! > a.r.train_samples_per_s! ? b : a));
    const s = rows.reduce((a, b) => (b.r.score_samples_per_s > a.r.score_samples_per_s ? b : a));
    return `${setup.label}: train ${fmt(t.r.train_samples_per_s!)} (${t.emb}), score ${fmt(s.r.score_samples_per_s)} samples/s`;
  };
  console.log(`for reference (selection pass, one run each): pytorch ${ref(spec, SETUPS[0]!)}; ${ref(oneCore, SETUPS[3]!)}`);
  console.log(`train_ratio=${(rfTrain / pTrain).toFixed(3)}`);
  console.log(`score_ratio=${(rfScore / pScore).toFixed(3)}`);
}

main();
