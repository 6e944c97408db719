/**
 * The sweep use cases (README.md, "Sweeps"): `runSweep` checks and expands a spec (every trial
 * config validated before anything runs), writes the sweep folder's sweep.yaml, hands the children
 * still to do to a launcher (src/launchers/), then finalizes; with the local launcher it carries on
 * into the final stage and ends with the leaderboard. `sweepStatus` counts children by status.
 */
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Interrupted, UsageError } from '../../base/errors.js';
import { loadSweepSpec, memoryMb, sweepSchema, timeMinutes, type SweepSpec } from '../../config/sweep.js';
import { toJsonSchema } from '../../config/json-schema.js';
import type { LaunchResult, TrialResources } from '../../launchers/launcher.js';
import { getLauncher } from '../../launchers/registry.js';
import type { Reporter } from '../reporter.js';
import { expandSweep } from './expand.js';
import { finalizeSweep, type FinalizeResult } from './finalize.js';
import { readFinalChoice, readLaunchRecord, writeLaunchRecord, writeSweepSpec } from './folder.js';
import { childState, openSweep, type ChildStatus } from './trial.js';

export interface RunSweepOptions {
  /** Where sweep folders go (runs/<sweep>/). */
  runsDir: string;
  launcher: string;
  dryRun: boolean;
  /** Overrides the spec's `parallel`. */
  parallel?: number;
  /** argv that runs resflow (for workers and batch scripts). */
  resflow: string[];
  /** Resources from the command line (`--partition`, `--time`, ...), over the spec's (checkResourceFlags). */
  resources?: ResourceOverrides;
}

/** Per-trial resources given on the command line: they replace the spec's `resources` keys; `extra` flags come after the spec's. */
export interface ResourceOverrides {
  partition?: string;
  /** Minutes. */
  time?: number;
  /** MiB. */
  memory?: number;
  cpusPerTask?: number;
  extra?: string[];
}

/** The command-line flags of ResourceOverrides, as given, before checking. */
export interface ResourceFlags {
  partition?: string;
  time?: string;
  mem?: string;
  cpusPerTask?: string;
  sbatchArg?: string[];
}

/** Launchers that take per-trial resource flags on the command line. */
const RESOURCE_FLAG_LAUNCHERS = ['slurm'];

/**
 * Checks `--partition`, `--time`, `--mem`, `--cpus-per-task` and `--sbatch-arg`: a UsageError (exit 2)
 * naming the flag and what it expects; the flags apply to --launcher slurm only.
 */
export function checkResourceFlags(flags: ResourceFlags, launcher: string): ResourceOverrides | undefined {
  const given = (['partition', 'time', 'mem', 'cpusPerTask', 'sbatchArg'] as const).filter((k) => flags[k] !== undefined && !(k === 'sbatchArg' && flags[k]!.length === 0));
  if (given.length === 0) return undefined;
  const flag = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  if (!RESOURCE_FLAG_LAUNCHERS.includes(launcher)) {
    throw new UsageError(`${flag(given[0]!)} is a Slurm setting: use it with --launcher slurm (this sweep uses --launcher ${launcher}; its resources come from the spec's \`resources\`)`);
  }
  const plain = (v: string) => v.trim() !== '' && !/[\s\x00-\x1f\x7f]/.test(v);
  const out: ResourceOverrides = {};
  if (flags.partition !== undefined) {
    if (!plain(flags.partition)) throw new UsageError(`--partition ${JSON.stringify(flags.partition)}: expected a partition name (no spaces), e.g. cpu or cpu,long`);
    out.partition = flags.partition;
  }
  if (flags.time !== undefined) {
    const t = /^\d+$/.test(flags.time.trim()) ? Number(flags.time) : timeMinutes(flags.time);
    if (typeof t === 'string' || !(t > 0)) throw new UsageError(`--time ${flags.time}: expected minutes or a duration such as 90m, 2h, 1:30:00 or 1-00:00:00 (more than 0)`);
    out.time = t;
  }
  if (flags.mem !== undefined) {
    const m = memoryMb(flags.mem);
    if (typeof m === 'string' || !(m > 0)) throw new UsageError(`--mem ${flags.mem}: expected MiB or a size such as 4G or 512M (more than 0)`);
    out.memory = m;
  }
  if (flags.cpusPerTask !== undefined) {
    const n = Number(flags.cpusPerTask);
    if (!/^\d+$/.test(flags.cpusPerTask.trim()) || !Number.isSafeInteger(n) || n < 1) throw new UsageError(`--cpus-per-task ${flags.cpusPerTask}: expected a whole number of CPUs >= 1`);
    out.cpusPerTask = n;
  }
  if (flags.sbatchArg?.length) {
    const bad = flags.sbatchArg.find((a) => !a.startsWith('-') || /[\x00-\x1f\x7f]/.test(a));
    if (bad !== undefined) throw new UsageError(`--sbatch-arg ${JSON.stringify(bad)}: expected one sbatch flag starting with - (e.g. --sbatch-arg=--qos=low), no line breaks`);
    out.extra = [...flags.sbatchArg];
  }
  return out;
}

/** The spec with command-line resources over its own (recorded so in sweep.yaml, which later stages read). */
function withResources(spec: SweepSpec, o: ResourceOverrides | undefined): SweepSpec {
  if (!o) return spec;
  const r = spec.resources;
  return {
    ...spec,
    resources: {
      ...r,
      ...(o.partition !== undefined ? { partition: o.partition } : {}),
      ...(o.time !== undefined ? { time: o.time } : {}),
      ...(o.memory !== undefined ? { memory: o.memory } : {}),
      ...(o.cpusPerTask !== undefined ? { threads: o.cpusPerTask } : {}),
      extra: [...r.extra, ...(o.extra ?? [])],
    },
  };
}

/** What the command line changed, for the sweep's first lines. */
function describeOverrides(o: ResourceOverrides): string {
  const parts = [
    o.partition !== undefined ? `partition ${o.partition}` : '',
    o.time !== undefined ? `time ${o.time} min` : '',
    o.memory !== undefined ? `mem ${o.memory}M` : '',
    o.cpusPerTask !== undefined ? `cpus-per-task ${o.cpusPerTask}` : '',
    o.extra?.length ? `sbatch flags ${o.extra.join(' ')}` : '',
  ].filter(Boolean);
  return `resources from the command line (over the spec's): ${parts.join(', ')}`;
}

export interface RunSweepResult {
  dir: string;
  launch?: LaunchResult;
  final?: FinalizeResult;
  /** Children the sweep had to run this time (0: everything was done already). */
  ran: number;
}

/** Threads per trial and trials at once: the spec's, else the cores shared out (one thread per trial at the least). */
export function shareCores(spec: SweepSpec, parallelOverride?: number, cores = availableParallelism()): { parallel: number; threads: number } {
  const parallel = parallelOverride ?? spec.parallel ?? Math.max(1, Math.floor(cores / (spec.resources.threads ?? 1)));
  const threads = spec.resources.threads ?? Math.max(1, Math.floor(cores / parallel));
  return { parallel, threads };
}

function resourcesOf(spec: SweepSpec, threads: number): TrialResources {
  const r = spec.resources;
  return {
    cpus: threads,
    memoryMb: r.memory === undefined ? undefined : (memoryMb(r.memory) as number),
    timeMinutes: r.time === undefined ? undefined : (timeMinutes(r.time) as number),
    partition: r.partition,
    extraArgs: r.extra,
  };
}

export async function runSweep(specFile: string, opts: RunSweepOptions, reporter: Reporter): Promise<RunSweepResult> {
  const loaded = loadSweepSpec(specFile);
  const sweep = { ...loaded, spec: withResources(loaded.spec, opts.resources) };
  const dir = path.resolve(opts.runsDir, sweep.spec.name);
  // every trial's config checked before anything runs or is written
  const expansion = expandSweep(sweep, readFinalChoice(dir));
  if (opts.parallel !== undefined && (!Number.isInteger(opts.parallel) || opts.parallel < 1)) throw new UsageError(`--parallel ${opts.parallel}: expected a positive integer`);
  const launcher = getLauncher(opts.launcher);
  await launcher.check({ dryRun: opts.dryRun });
  const { parallel, threads } = shareCores(sweep.spec, opts.parallel);
  const groups = expansion.groups.length;
  const finalRuns = expansion.children.filter((c) => c.stage === 'final').length; // the final stage, once chosen
  reporter.info(`sweep ${sweep.spec.name}: ${groups} group(s) × ${expansion.trials.length / groups} point(s) × ${sweep.spec.seeds.length} seed(s)${finalRuns ? ` + ${finalRuns} final run(s)` : ''} = ${expansion.children.length} runs; ${parallel} at once, ${threads} thread(s) each; folder ${dir}`);
  if (opts.resources) reporter.info(describeOverrides(opts.resources));
  writeSweepSpec(dir, sweep.spec, sweep.file); // a dry run writes this too: run-trial and batch scripts read it
  if (!opts.dryRun) writeLaunchRecord(dir, { launcher: launcher.name, parallel, threads });
  return launchStages(dir, { launcherName: launcher.name, parallel, threads, dryRun: opts.dryRun, resflow: opts.resflow }, reporter);
}

interface StageOptions {
  launcherName: string;
  parallel: number;
  threads: number;
  dryRun: boolean;
  resflow: string[];
}

/** Launches what is left, stage after stage while the launcher runs trials here; finalizes after each. */
async function launchStages(dir: string, o: StageOptions, reporter: Reporter): Promise<RunSweepResult> {
  const launcher = getLauncher(o.launcherName);
  let ran = 0;
  let last: LaunchResult | undefined;
  const tried = new Set<number>();
  for (;;) {
    const { sweep, expansion } = openSweep(dir);
    const todo = expansion.children.filter((c) => !tried.has(c.index) && childState(dir, c, sweep.spec.retries).todo).map((c) => c.index);
    if (todo.length === 0) break;
    todo.forEach((i) => tried.add(i));
    ran += todo.length;
    const progress = o.dryRun ? undefined : reporter.progress({ label: 'sweep', total: todo.length, unit: 'runs' });
    let done = 0;
    let failed = 0;
    last = await launcher.launch(
      { sweepDir: dir, name: sweep.spec.name, indices: todo, resflow: o.resflow, parallel: Math.min(o.parallel, todo.length), resources: resourcesOf(sweep.spec, o.threads) },
      {
        dryRun: o.dryRun,
        out: (l) => reporter.out(l),
        info: (l) => reporter.info(l),
        onTrialEnd: (index, code) => {
          done++;
          if (code !== 0 && code !== 130 && code !== 143) {
            failed++;
            reporter.info(`run ${index} (${expansion.children[index]?.name}) failed (exit ${code}); its log: ${path.join(dir, 'logs', `${index}.log`)}`);
          }
          progress?.update(done, failed ? { failed: String(failed) } : undefined);
        },
      },
    );
    progress?.stop(`${done} of ${todo.length} run(s) ended${failed ? `, ${failed} failed` : ''}`);
    if (last.outcome !== 'finished') return { dir, launch: last, ran };
    if (last.interrupted) {
      finalizeSweep(dir);
      throw new Interrupted(`${last.interrupted}: sweep stopped; run it again to continue (${dir})`, last.interrupted === 'SIGINT' ? 130 : 143);
    }
    finalizeSweep(dir); // may choose the final stage: the loop runs it
  }
  const final = finalizeSweep(dir);
  return { dir, launch: last, final, ran };
}

/** `resflow sweep finalize DIR`: the tables and leaderboard; the final stage, when it is due, through the launcher the sweep was started with. */
export async function finalizeCommand(dir: string, resflow: string[], reporter: Reporter): Promise<RunSweepResult> {
  const abs = path.resolve(dir);
  const result = finalizeSweep(abs);
  const record = readLaunchRecord(abs);
  const nextStage = result.todo.filter((i) => result.expansion.children[i]!.stage === 'final');
  if (record && nextStage.length > 0 && nextStage.length === result.todo.length) {
    reporter.info(`launching the final stage: ${nextStage.length} run(s) through ${record.launcher}`);
    return launchStages(abs, { launcherName: record.launcher, parallel: record.parallel, threads: record.threads, dryRun: false, resflow }, reporter);
  }
  return { dir: abs, final: result, ran: 0 };
}

export interface SweepStatus {
  dir: string;
  total: number;
  counts: Partial<Record<ChildStatus, number>>;
  rows: { index: number; name: string; status: ChildStatus; attempts: number }[];
}

/** Counts of the sweep's children by status (runs/status.ts: a dead `running` child is `stale`). */
export function sweepStatus(dir: string): SweepStatus {
  const abs = path.resolve(dir);
  const { sweep, expansion } = openSweep(abs);
  const rows = expansion.children.map((c) => {
    const s = childState(abs, c, sweep.spec.retries);
    return { index: c.index, name: c.name, status: s.status, attempts: s.attempts };
  });
  const counts: SweepStatus['counts'] = {};
  for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return { dir: abs, total: rows.length, counts, rows };
}

/** The JSON Schema of sweep specs (`resflow sweep schema`). */
export function sweepJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://github.com/resflow/resflow/schema/sweep.schema.json',
    title: 'resflow sweep spec',
    ...toJsonSchema(sweepSchema),
  };
}
