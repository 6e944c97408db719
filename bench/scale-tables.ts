/**
 * Embedding tables at scale: build time, memory per table, peak RSS, steps/s of the first and
 * later training steps (mean of the first 10; median step of the second half) and the seconds of the
 * build and all steps together, of the sparse tables alone (lookup + lazy Adam update, batch 1,024, ids
 * uniform over each table: the worst case for the lazily allocated state, README.md "Sparse
 * embeddings"), for tables of 10k, 1M and 10M rows. Every measurement runs in a fresh child process
 * (its own peak RSS); runs are repeated and interleaved, and medians printed with the load.
 *
 *   npm run bench:scale-tables -- [--rows 10k,1m,10m] [--fields 20] [--fields-10m 2] [--steps 300]
 *                                 [--runs 3] [--before DIR] [--opt adam|adagrad|sgd] [--save]
 *
 * --save also writes the tables with their optimizer state as a checkpoint does (model-io's
 * modelFiles + writeModelFolder, into a temporary folder) and prints its time and the peak RSS after;
 * --load also reads that back into a second set of tables (twice the memory) and checks the weights.
 * --before DIR measures the same on another built checkout too (e.g. the commit before lazy
 * state: `git archive <commit> | tar -x -C DIR`, link node_modules, `npx tsc` and
 * `node scripts/build-native.mjs` there); its tables are driven through the same
 * EmbeddingTables API. 10M-row tables use --fields-10m fields (default 2) so that the eager layout
 * (weights + two moments: 1.9 GiB a table at dim 16) fits a shared machine; per-table figures
 * do not depend on the field count.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const DIM = 16;
const BATCH = 1024;
const FIRST = 10;
const here = fileURLToPath(import.meta.url);
const ownRoot = path.resolve(path.dirname(here), '../..');

interface ChildResult {
  build_s: number;
  weights_bytes: number;
  state_bytes_start: number;
  state_bytes_end: number;
  state_rows_end: number;
  peak_rss: number;
  first_steps_per_s: number;
  later_steps_per_s: number;
  /** Seconds of all the steps together: with the build, what the run cost (the first and later rates weigh differently over a run). */
  steps_s: number;
  kernels: string;
  /** With --save: seconds to write the tables with their state as a checkpoint does, and the peak RSS after it. */
  save_s: number | null;
  peak_rss_save: number | null;
  /** With --load too: seconds to read it back into a second set of tables, and whether every weight came back the same. */
  load_s: number | null;
  same: boolean | null;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const parseRows = (s: string) => {
  const m = /^(\d+(?:\.\d+)?)([km]?)$/i.exec(s.trim());
  if (!m) throw new Error(`--rows: ${s} is not a row count such as 10k or 1m`);
  return Math.round(Number(m[1]) * (m[2]?.toLowerCase() === 'k' ? 1e3 : m[2]?.toLowerCase() === 'm' ? 1e6 : 1));
};

/** The bytes of one table's state as the given code keeps it: lazy (a RowState) or eager (m and v arrays). */
function stateBytes(t: Record<string, unknown>): number {
  const st = t['state'] as { bytes: number; slotOf: Int32Array } | null | undefined;
  if (st) return st.bytes;
  return ((t['m'] as Float32Array | null)?.byteLength ?? 0) + ((t['v'] as Float32Array | null)?.byteLength ?? 0);
}

async function child(root: string, rows: number, fields: number, steps: number, opt: string, save: boolean, load: boolean): Promise<ChildResult> {
  const mod = (p: string) => import(pathToFileURL(path.join(root, 'dist', p)).href);
  const { EmbeddingTables } = await mod('src/models/embeddings.js');
  const { Rng } = await mod('src/base/rng.js');
  const plan = {
    sparse: Array.from({ length: fields }, (_, i) => ({ name: `f${i}`, column: `f${i}`, kind: 'categorical', tableSize: rows, width: 1, pooling: 'mean', dim: DIM, toRow: () => 0 })),
    numeric: [],
  };
  const optimizer = { type: opt, lr: 1e-3, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, initial_accumulator: 0.1 };
  const t0 = performance.now();
  const tables = new EmbeddingTables(plan, new Rng(1, 1), optimizer);
  const build_s = (performance.now() - t0) / 1000;
  const list = tables.tables as Record<string, unknown>[];
  const state_bytes_start = list.reduce((s, t) => s + stateBytes(t), 0) / fields;
  const rng = new Rng(2);
  const grad = Float32Array.from({ length: BATCH * fields * DIM }, () => rng.normal() * 1e-3);
  const batch = () => ({ length: BATCH, ids: Array.from({ length: fields }, () => Int32Array.from({ length: BATCH }, () => rng.int(rows))), numeric: new Float32Array(0) });
  const times: number[] = [];
  for (let s = 0; s < steps; s++) {
    const b = batch(); // ids drawn outside the timed part
    const t = performance.now();
    tables.lookup(b);
    tables.applyGradients(b, grad);
    times.push(performance.now() - t);
  }
  // first steps: their mean (page faults and allocations are what they show); later: the median step (robust to a shared machine's stalls)
  const peak_rss = process.resourceUsage().maxRSS * 1024;
  let save_s: number | null = null;
  let peak_rss_save: number | null = null;
  let load_s: number | null = null;
  let same: boolean | null = null;
  if (save) {
    // a checkpoint of the tables (no dense weights): model files with the optimizer state, written whole
    const { modelFiles, writeModelFolder } = await mod('src/runs/model-io.js');
    const { ParamStore } = await mod('src/models/layers.js');
    const { mkdtempSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'scale-tables-'));
    const t = performance.now();
    writeModelFolder(path.join(dir, 'checkpoint'), modelFiles('resflow', new ParamStore(new Rng(1, 2)), tables, []));
    save_s = (performance.now() - t) / 1000;
    if (load) {
      // read it back into a second set of tables (other seed) and compare every weight
      const { loadModel } = await mod('src/runs/model-io.js');
      const other = new EmbeddingTables(plan, new Rng(5, 1), optimizer);
      const t1 = performance.now();
      loadModel(path.join(dir, 'checkpoint'), new ParamStore(new Rng(1, 2)), other);
      load_s = (performance.now() - t1) / 1000;
      const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      same = (tables.tables as { weights: Float32Array }[]).every((x, k) => bytes(x.weights).equals(bytes((other.tables as { weights: Float32Array }[])[k]!.weights)));
    }
    peak_rss_save = process.resourceUsage().maxRSS * 1024;
    rmSync(dir, { recursive: true, force: true });
  }
  const rate = (xs: number[]) => (1000 * xs.length) / xs.reduce((a, b) => a + b, 0);
  const medianRate = (xs: number[]) => 1000 / median(xs);
  return {
    build_s,
    weights_bytes: (list[0]!['weights'] as Float32Array).byteLength,
    state_bytes_start,
    state_bytes_end: list.reduce((s, t) => s + stateBytes(t), 0) / fields,
    state_rows_end: list.reduce((s, t) => s + ((t['state'] as { used: number } | null)?.used ?? rows), 0) / fields,
    peak_rss,
    save_s,
    peak_rss_save,
    load_s,
    same,
    first_steps_per_s: rate(times.slice(0, FIRST)),
    later_steps_per_s: medianRate(times.slice(Math.floor(steps / 2))),
    steps_s: times.reduce((a, b) => a + b, 0) / 1000,
    kernels: tables.kernels.name,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const gib = (b: number) => (b / 2 ** 30).toFixed(2);
const mib = (b: number) => (b / 2 ** 20).toFixed(1);

async function main(): Promise<void> {
  if (process.argv.includes('--child')) {
    const r = await child(arg('root', ownRoot), Number(arg('rows', '0')), Number(arg('fields', '1')), Number(arg('steps', '300')), arg('opt', 'adam'), process.argv.includes('--save') || process.argv.includes('--load'), process.argv.includes('--load'));
    process.stdout.write(JSON.stringify(r) + '\n');
    return;
  }
  const sizes = arg('rows', '10k,1m,10m').split(',').map(parseRows);
  const fields = Number(arg('fields', '20'));
  const fields10m = Number(arg('fields-10m', '2'));
  const steps = Number(arg('steps', '300'));
  const runs = Number(arg('runs', '3'));
  const opt = arg('opt', 'adam');
  const before = arg('before', '');
  const load = process.argv.includes('--load');
  const save = load || process.argv.includes('--save');
  const codes: [string, string][] = [['after', ownRoot]];
  if (before) codes.unshift(['before', path.resolve(before)]);
  console.log(`embedding tables at scale: dim ${DIM}, batch ${BATCH}, ${opt}, uniform ids, ${steps} steps (first ${FIRST}; later: the second half), medians of ${runs} runs`);
  console.log(`load before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  console.log(`code    rows/table fields kernels  build s  weights MiB/table  state MiB/table start → end (rows holding state)  peak RSS GiB  first steps/s  later steps/s  build+steps s${save ? '  save s  peak RSS with save GiB' : ''}${load ? '  load s  same bits' : ''}`);
  for (const rows of sizes) {
    const f = rows >= 5e6 ? Math.min(fields, fields10m) : fields;
    const results = new Map<string, ChildResult[]>(codes.map(([name]) => [name, []]));
    for (let r = 0; r < runs; r++) {
      for (const [name, root] of codes) {
        const out = execFileSync(process.execPath, [here, '--child', '--root', root, '--rows', String(rows), '--fields', String(f), '--steps', String(steps), '--opt', opt, ...(save ? ['--save'] : []), ...(load ? ['--load'] : [])], { encoding: 'utf8', maxBuffer: 1 << 20 });
        results.get(name)!.push(JSON.parse(out.trim().split('\n').pop()!) as ChildResult);
      }
    }
    for (const [name] of codes) {
      const rs = results.get(name)!;
      const m = (k: keyof ChildResult) => median(rs.map((x) => x[k] as number));
      console.log(
        `${name.padEnd(7)} ${rows.toLocaleString('en-US').padStart(10)} ${String(f).padStart(6)} ${rs[0]!.kernels.padEnd(8)} ${m('build_s').toFixed(2).padStart(7)}  ${mib(m('weights_bytes')).padStart(17)}  ` +
          `${`${mib(m('state_bytes_start'))} → ${mib(m('state_bytes_end'))} (${Math.round(m('state_rows_end')).toLocaleString('en-US')})`.padStart(47)}  ${gib(m('peak_rss')).padStart(12)}  ${m('first_steps_per_s').toFixed(1).padStart(13)}  ${m('later_steps_per_s').toFixed(1).padStart(13)}  ${median(rs.map((x) => x.build_s + x.steps_s)).toFixed(2).padStart(13)}` +
          (save ? `  ${m('save_s').toFixed(2).padStart(6)}  ${gib(m('peak_rss_save')).padStart(22)}` : '') +
          (load ? `  ${m('load_s').toFixed(2).padStart(6)}  ${String(rs.every((x) => x.same)).padStart(9)}` : ''),
      );
    }
  }
  console.log(`load after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main();
