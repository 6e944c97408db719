/**
 * resflow vs PyTorch on the benchmark model of bench/reference-model.ts: the same ResFlow model, data
 * and batch size, trained and scored on this machine's CPU.
 *
 *   npm run bench:compare [-- --runs 3 --steps 40 --repeats 3]
 *
 * 1. Installs the reference's Debian packages when missing (python3-torch, both OpenBLAS builds:
 *    libopenblas0-pthread and libopenblas0-openmp, python3-threadpoolctl). /usr/bin/python3 is used
 *    on purpose: a `python3` on PATH may be a pyenv one without Debian's packages.
 * 2. The reference process gets an honest environment: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (which
 *    a machine may set for older OpenBLAS builds, and which would pin Debian's OpenBLAS 0.3.21 to, e.g.,
 *    its Haswell kernels) are removed from ITS environment only, so OpenBLAS picks its kernels by
 *    itself; OPENBLAS_VERBOSE=2 makes it print the kernel set ("Core: ..."), and threadpoolctl
 *    reports the library file, version, threading layer and kernel set it loaded. Both are printed.
 * 3. Selection pass: one short PyTorch run per set-up (SETUPS: OpenBLAS's pthread or OpenMP build,
 *    chosen with LD_LIBRARY_PATH; thread counts; glibc's malloc with or without transparent huge
 *    pages, GLIBC_TUNABLES=glibc.malloc.hugetlb=1, since resflow puts its embedding tables on huge
 *    pages; x sparse and dense embedding gradients). Two groups:
 *    "2 threads" set-ups, ranked by wall-clock samples/s, and "1 thread" set-ups (PyTorch and
 *    OpenBLAS on one thread), ranked by samples per CPU-second. Each group keeps its fastest for
 *    training and for scoring (batch 1024).
 * 4. Interleaved runs, --runs times: resflow's own benchmark (`dist/bench/train.js`) on 2 threads,
 *    PyTorch's fastest 2-thread set-up(s), resflow on 1 thread, PyTorch's fastest 1-thread set-up(s);
 *    each run is the median of --repeats timed passes. Two ratios per figure: wall-clock on 2 threads,
 *    and per core (samples per CPU-second of the whole process, both sides on one thread). CPU time
 *    holds up under load from other jobs far better than wall-clock does.
 * 5. The machine's GEMM rate (resflow's native sgemm on 1 thread, bench/gemm-rate.ts) and the
 *    fraction of it each side reaches, from the dense FLOPs per sample counted from the model's
 *    weight shapes (both sides count them; they must agree).
 *
 * The last four lines are `train_ratio=` and `score_ratio=` (wall-clock, 2 threads) and
 * `train_ratio_per_core=` and `score_ratio_per_core=` (resflow / PyTorch). Neither CI nor the tests
 * run it.
 */
import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { describeOverridesRemoved, ensurePython, PY, referenceBaseEnv } from './py-deps.js';
import { GEMM_SHAPE, measureGemmRate } from './gemm-rate.js';

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

/** Thread and library settings each set-up defines for itself (inherited values are dropped). */
const SETUP_VARS = ['OPENBLAS_NUM_THREADS', 'GOTO_NUM_THREADS', 'OMP_NUM_THREADS', 'OMP_WAIT_POLICY', 'LD_PRELOAD', 'OPENBLAS_VERBOSE', 'GLIBC_TUNABLES'];
/** glibc's malloc asking for transparent huge pages for its large blocks (PyTorch 1.13's allocator has no switch of its own). */
const MALLOC_HUGE_PAGES = { GLIBC_TUNABLES: 'glibc.malloc.hugetlb=1' };

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const load = (): string => loadavg().map((x) => x.toFixed(2)).join(' ');
const pct = (x: number): string => `${(100 * x).toFixed(0)}%`;

function ensureTorch(): void {
  ensurePython(['torch', 'threadpoolctl'], ['python3-torch', 'libopenblas0-pthread', 'libopenblas0-openmp', 'python3-threadpoolctl']);
}

/** The folder holding a Debian OpenBLAS build's libblas.so.3 (e.g. /usr/lib/x86_64-linux-gnu/openblas-openmp). */
function blasDir(pkg: string): string {
  const r = spawnSync('dpkg-query', ['-L', pkg], { encoding: 'utf8' });
  const lib = (r.stdout ?? '').split('\n').find((l) => l.endsWith('/libblas.so.3'));
  if (r.status !== 0 || !lib) throw new Error(`cannot find libblas.so.3 of ${pkg} (dpkg-query -L ${pkg})`);
  return lib.slice(0, lib.lastIndexOf('/'));
}

interface ResflowRun {
  train: number;
  score: number;
  trainCpu: number;
  scoreCpu: number;
  rss: number;
  backend: string;
  flops: { score: number; train: number };
}

interface TorchRaw {
  embedding_grad: string;
  threads: number;
  torch: string;
  train_samples_per_s: number | null;
  train_samples_per_cpu_s: number | null;
  score_samples_per_s: number;
  score_samples_per_cpu_s: number;
  score_by_batch: Record<string, number>;
  blas: { internal_api: string; version: string; threading_layer: string; architecture: string; num_threads: number; filepath: string }[] | null;
  cpu_capability: string | null;
  matmul_1024x320x256_gflops: { wall: number; cpu: number };
  dense_flops_per_sample: { score: number; train: number };
  peak_rss_mib: number;
  /** From OPENBLAS_VERBOSE=2 on stderr. */
  core: string;
}

type Group = '2 threads' | '1 thread';

/** A way to run PyTorch on this machine: OpenBLAS build, thread count and environment. */
interface Setup {
  label: string;
  group: Group;
  blas: 'pthread' | 'openmp';
  threads: number;
  env: Record<string, string>;
}

const SETUPS: Setup[] = [
  { label: 'pthread BLAS, torch 2 threads, BLAS pool 2', group: '2 threads', blas: 'pthread', threads: 2, env: {} },
  { label: 'pthread BLAS, torch 2 threads, OMP_WAIT_POLICY=PASSIVE', group: '2 threads', blas: 'pthread', threads: 2, env: { OMP_WAIT_POLICY: 'PASSIVE' } },
  { label: 'pthread BLAS, torch 1 thread, BLAS pool 2', group: '2 threads', blas: 'pthread', threads: 1, env: {} },
  { label: 'pthread BLAS, torch 2 threads, BLAS 1 thread', group: '2 threads', blas: 'pthread', threads: 2, env: { OPENBLAS_NUM_THREADS: '1' } },
  { label: 'openmp BLAS, torch 2 threads (BLAS shares the pool)', group: '2 threads', blas: 'openmp', threads: 2, env: {} },
  { label: 'openmp BLAS, torch 2 threads, OMP_WAIT_POLICY=PASSIVE', group: '2 threads', blas: 'openmp', threads: 2, env: { OMP_WAIT_POLICY: 'PASSIVE' } },
  { label: 'pthread BLAS, torch 2 threads, BLAS pool 2, malloc huge pages', group: '2 threads', blas: 'pthread', threads: 2, env: { ...MALLOC_HUGE_PAGES } },
  { label: 'pthread BLAS, torch 1 thread, BLAS 1 thread', group: '1 thread', blas: 'pthread', threads: 1, env: { OPENBLAS_NUM_THREADS: '1' } },
  { label: 'pthread BLAS, torch 1 thread, BLAS 1 thread, malloc huge pages', group: '1 thread', blas: 'pthread', threads: 1, env: { OPENBLAS_NUM_THREADS: '1', ...MALLOC_HUGE_PAGES } },
  { label: 'openmp BLAS, torch 1 thread, BLAS 1 thread', group: '1 thread', blas: 'openmp', threads: 1, env: { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1' } },
  { label: 'openmp BLAS, torch 1 thread, BLAS 1 thread, malloc huge pages', group: '1 thread', blas: 'openmp', threads: 1, env: { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', ...MALLOC_HUGE_PAGES } },
];

function runResflow(threads: number): ResflowRun {
  const argv = [TRAIN_JS, '--backend', args.backend!, '--steps', String(STEPS), '--repeats', String(REPEATS), '--threads', String(threads)];
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`${TRAIN_JS} failed (exit ${r.status})`);
  const out = r.stdout;
  const num = (re: RegExp, what: string) => {
    const m = re.exec(out);
    if (!m) throw new Error(`could not find ${what} in the output of ${TRAIN_JS}:\n${out}`);
    return Number(m[1]!.replace(/,/g, ''));
  };
  return {
    train: num(/train samples\/s: median ([\d,.]+)/, 'train samples/s'),
    score: num(/score samples\/s: median ([\d,.]+)/, 'score samples/s'),
    trainCpu: num(/train samples per CPU-second: median ([\d,.]+)/, 'train samples per CPU-second'),
    scoreCpu: num(/score samples per CPU-second: median ([\d,.]+)/, 'score samples per CPU-second'),
    rss: num(/peak RSS: ([\d.]+) MiB/, 'peak RSS'),
    backend: /backend: (.+?); model:/.exec(out)?.[1] ?? args.backend!,
    flops: { score: num(/dense FLOPs per sample: score (\d+)/, 'FLOPs'), train: num(/dense FLOPs per sample: score \d+, train (\d+)/, 'FLOPs') },
  };
}

let blasDirs: Record<Setup['blas'], string> | null = null;

function referenceEnv(setup: Setup): NodeJS.ProcessEnv {
  const env = referenceBaseEnv();
  for (const k of SETUP_VARS) delete env[k];
  blasDirs ??= { pthread: blasDir('libopenblas0-pthread'), openmp: blasDir('libopenblas0-openmp') };
  // The build's folder first on the library path: its libblas.so.3 / libopenblas.so.0 replace
  // whichever one update-alternatives points to, for this process only.
  env['LD_LIBRARY_PATH'] = [blasDirs[setup.blas], process.env['LD_LIBRARY_PATH']].filter(Boolean).join(':');
  return { ...env, ...setup.env, OPENBLAS_VERBOSE: '2' };
}

function runTorch(setup: Setup, emb: string, opts: { steps: number; repeats: number; scoreBatches: string; scoreOnly?: boolean }): TorchRaw {
  const argv = [TORCH_REF, '--emb', emb, '--threads', String(setup.threads), '--steps', String(opts.steps), '--repeats', String(opts.repeats), '--score-batches', opts.scoreBatches];
  if (opts.scoreOnly) argv.push('--score-only');
  const r = spawnSync(PY, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: referenceEnv(setup) });
  const cores = new Set<string>();
  for (const line of (r.stderr ?? '').split('\n')) {
    const m = /^Core: (\S+)/.exec(line.trim());
    if (m) cores.add(m[1]!);
    else if (line.trim()) process.stderr.write(`${line}\n`);
  }
  if (r.status !== 0) throw new Error(`${TORCH_REF} failed (exit ${r.status}) in set-up "${setup.label}"`);
  const raw = JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchRaw;
  raw.core = [...cores].join('+') || 'not printed';
  return raw;
}

function describeBlas(r: TorchRaw): string {
  const b = r.blas?.[0];
  const lib = b ? `${b.internal_api} ${b.version}, ${b.threading_layer} threading, kernel set ${b.architecture}, ${b.num_threads} BLAS thread(s), ${b.filepath}` : 'threadpoolctl unavailable';
  return `OPENBLAS_VERBOSE: Core: ${r.core}; threadpoolctl: ${lib}; PyTorch's own kernels: ${r.cpu_capability ?? '?'}`;
}

interface Pick {
  setup: Setup;
  emb: string;
  r: TorchRaw;
}

function main(): void {
  ensureTorch();
  console.log(`load average at start: ${load()} (the machine is shared; figures are medians)`);
  console.log(`reference environment: ${describeOverridesRemoved()} (PyTorch's process only); OpenBLAS picks its own kernels`);

  const gemm = measureGemmRate(1);
  // What two threads of this machine deliver on the same product (wall-clock): context for the
  // 2-thread fractions, which are taken against twice the 1-thread rate (the stricter limit).
  const gemm2 = gemm === null ? null : measureGemmRate(2, 15, 'wall');
  console.log(
    gemm === null || gemm2 === null
      ? 'GEMM rate: resflow native addon not available; no fraction of the GEMM limit'
      : `GEMM rate (resflow's sgemm, 1 thread, ${GEMM_SHAPE.M}x${GEMM_SHAPE.K}x${GEMM_SHAPE.N}, ${gemm.simd}): ${gemm.gflops.toFixed(1)} GFLOP per CPU-second; on 2 threads ${gemm2.gflops.toFixed(1)} GFLOP/s wall-clock (${pct(gemm2.gflops / (2 * gemm.gflops))} of 2 x the 1-thread rate)`,
  );

  // Selection pass.
  const selSteps = Number(args['select-steps']);
  console.log(`\nPyTorch set-ups (one run each, median of 3 passes of ${selSteps} steps; wall-clock samples/s, and per CPU-second):`);
  const tried: Pick[] = [];
  for (const setup of SETUPS) {
    for (const emb of ['sparse', 'dense']) {
      const r = runTorch(setup, emb, { steps: selSteps, repeats: 3, scoreBatches: '1024' });
      tried.push({ setup, emb, r });
      console.log(
        `  [${setup.group}] ${setup.label.padEnd(64)} ${emb.padEnd(6)}: train ${fmt(r.train_samples_per_s!).padStart(7)} /s ${fmt(r.train_samples_per_cpu_s!).padStart(7)} /cpu-s; score@1024 ${fmt(r.score_samples_per_s).padStart(8)} /s ${fmt(r.score_samples_per_cpu_s).padStart(8)} /cpu-s; mm ${r.matmul_1024x320x256_gflops.wall.toFixed(0)} GFLOP/s  [load ${load()}]`,
      );
    }
  }
  const blasSeen = new Map<string, TorchRaw>();
  for (const t of tried) blasSeen.set(t.setup.blas, blasSeen.get(t.setup.blas) ?? t.r);
  for (const [k, r] of blasSeen) console.log(`  ${k} build: ${describeBlas(r)}`);

  const best = (group: Group, key: (r: TorchRaw) => number): Pick => tried.filter((t) => t.setup.group === group).reduce((a, b) => (key(b.r) > key(a.r) ? b : a));
  const picks = {
    wallTrain: best('2 threads', (r) => r.train_samples_per_s!),
    wallScore: best('2 threads', (r) => r.score_samples_per_s),
    coreTrain: best('1 thread', (r) => r.train_samples_per_cpu_s!),
    coreScore: best('1 thread', (r) => r.score_samples_per_cpu_s),
  };
  console.log(`  -> 2 threads: training ${picks.wallTrain.setup.label}, ${picks.wallTrain.emb} embedding gradients; scoring ${picks.wallScore.setup.label}`);
  console.log(`  -> 1 thread:  training ${picks.coreTrain.setup.label}, ${picks.coreTrain.emb} embedding gradients; scoring ${picks.coreScore.setup.label}`);

  const rf2: ResflowRun[] = [];
  const rf1: ResflowRun[] = [];
  const pt = { wallTrain: [] as TorchRaw[], wallScore: [] as TorchRaw[], coreTrain: [] as TorchRaw[], coreScore: [] as TorchRaw[] };
  const full = { steps: STEPS, repeats: REPEATS, scoreBatches: '1024' };
  const pair = (train: Pick, score: Pick, into: [TorchRaw[], TorchRaw[]]) => {
    const b = runTorch(train.setup, train.emb, full);
    const c = score.setup === train.setup ? b : runTorch(score.setup, train.emb, { ...full, scoreOnly: true });
    into[0].push(b);
    into[1].push(c);
    return [b, c] as const;
  };
  for (let i = 0; i < RUNS; i++) {
    const a = runResflow(2);
    rf2.push(a);
    console.log(`run ${i + 1}/${RUNS} resflow 2 threads (${a.backend}): train ${fmt(a.train)}, score ${fmt(a.score)} samples/s  [load ${load()}]`);
    const [b, c] = pair(picks.wallTrain, picks.wallScore, [pt.wallTrain, pt.wallScore]);
    console.log(`run ${i + 1}/${RUNS} pytorch 2 threads: train ${fmt(b.train_samples_per_s!)}, score ${fmt(c.score_samples_per_s)} samples/s  [load ${load()}]`);
    const d = runResflow(1);
    rf1.push(d);
    console.log(`run ${i + 1}/${RUNS} resflow 1 thread: train ${fmt(d.trainCpu)}, score ${fmt(d.scoreCpu)} samples per CPU-second  [load ${load()}]`);
    const [e, f] = pair(picks.coreTrain, picks.coreScore, [pt.coreTrain, pt.coreScore]);
    console.log(`run ${i + 1}/${RUNS} pytorch 1 thread: train ${fmt(e.train_samples_per_cpu_s!)}, score ${fmt(f.score_samples_per_cpu_s)} samples per CPU-second  [load ${load()}]`);
  }

  const flops = rf2[0]!.flops;
  const ptFlops = pt.wallTrain[0]!.dense_flops_per_sample;
  if (ptFlops.score !== flops.score || ptFlops.train !== flops.train) {
    throw new Error(`the two models differ: resflow counts ${JSON.stringify(flops)} dense FLOPs per sample, PyTorch ${JSON.stringify(ptFlops)}`);
  }
  const m = {
    rfWallTrain: median(rf2.map((r) => r.train)),
    rfWallScore: median(rf2.map((r) => r.score)),
    ptWallTrain: median(pt.wallTrain.map((r) => r.train_samples_per_s!)),
    ptWallScore: median(pt.wallScore.map((r) => r.score_samples_per_s)),
    rfCoreTrain: median(rf1.map((r) => r.trainCpu)),
    rfCoreScore: median(rf1.map((r) => r.scoreCpu)),
    ptCoreTrain: median(pt.coreTrain.map((r) => r.train_samples_per_cpu_s!)),
    ptCoreScore: median(pt.coreScore.map((r) => r.score_samples_per_cpu_s)),
  };
  const ref = pt.coreTrain[0]!;
  console.log(`\nreference: PyTorch ${ref.torch} (Debian python3-torch), ${describeBlas(ref)}`);
  console.log(`medians of ${RUNS} interleaved runs (each the median of ${REPEATS} passes of ${STEPS} batches of 1024); load average now ${load()}`);
  console.log(`dense work: ${(flops.train / 1e6).toFixed(3)} MFLOP per training sample, ${(flops.score / 1e6).toFixed(3)} per scored sample (from the weight shapes; both sides agree)`);
  const g = gemm?.gflops ?? NaN;
  const frac = (samples: number, f: number, threads: number) => {
    if (gemm === null) return '';
    const rate = (samples * f) / 1e9;
    const of2 = threads === 2 && gemm2 !== null ? ` (${pct(rate / gemm2.gflops)} of the 2-thread GEMM rate)` : '';
    return `, ${rate.toFixed(0)} GFLOP/s = ${pct(rate / (g * threads))} of ${threads === 1 ? '' : `${threads} x `}the GEMM rate${of2}`;
  };
  const line = (what: string, rf: number, p: number, f: number, threads: number, unit: string) =>
    console.log(`  ${what.padEnd(6)} resflow ${fmt(rf).padStart(8)}${frac(rf, f, threads)}; pytorch ${fmt(p).padStart(8)}${frac(p, f, threads)}; ratio ${(rf / p).toFixed(3)}  (${unit})`);
  console.log(`wall-clock, 2 threads (resflow ${rf2[0]!.backend}; PyTorch train: ${picks.wallTrain.setup.label}, ${picks.wallTrain.emb} grads; score: ${picks.wallScore.setup.label}):`);
  line('train', m.rfWallTrain, m.ptWallTrain, flops.train, 2, 'samples/s');
  line('score', m.rfWallScore, m.ptWallScore, flops.score, 2, 'samples/s, batch 1024');
  console.log(`per core, 1 thread each (PyTorch train: ${picks.coreTrain.setup.label}, ${picks.coreTrain.emb} grads; score: ${picks.coreScore.setup.label}):`);
  line('train', m.rfCoreTrain, m.ptCoreTrain, flops.train, 1, 'samples per CPU-second');
  line('score', m.rfCoreScore, m.ptCoreScore, flops.score, 1, 'samples per CPU-second, batch 1024');
  console.log(`PyTorch's matmul ${GEMM_SHAPE.M}x${GEMM_SHAPE.K}x${GEMM_SHAPE.N} on 1 thread: ${median(pt.coreTrain.map((r) => r.matmul_1024x320x256_gflops.cpu)).toFixed(1)} GFLOP/s per CPU-second; peak RSS resflow ${median(rf2.map((r) => r.rss)).toFixed(0)} MiB, PyTorch ${median(pt.wallTrain.map((r) => r.peak_rss_mib)).toFixed(0)} MiB`);
  console.log(`train_ratio=${(m.rfWallTrain / m.ptWallTrain).toFixed(3)}`);
  console.log(`score_ratio=${(m.rfWallScore / m.ptWallScore).toFixed(3)}`);
  console.log(`train_ratio_per_core=${(m.rfCoreTrain / m.ptCoreTrain).toFixed(3)}`);
  console.log(`score_ratio_per_core=${(m.rfCoreScore / m.ptCoreScore).toFixed(3)}`);
}

main();
