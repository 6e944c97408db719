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
  const sweep = loadSweepSpec(specFile);
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
