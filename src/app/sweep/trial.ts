/**
 * `resflow sweep run-trial DIR --index I` (the entry every launcher runs, src/launchers/launcher.ts):
 * one child of the sweep, idempotent. A completed child is skipped; an interrupted or stale one is
 * resumed from its checkpoint (one that stopped before its first checkpoint starts again); a failed
 * one is started again while its attempts are within 1 + `retries`; a live one is waited for.
 * After training, the split the selection reads (validation) is evaluated into the child's
 * metrics.json, beside the eval split that training evaluates.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Interrupted, RuntimeFailure, UsageError } from '../../base/errors.js';
import { loadSweepSpec, type LoadedSweep } from '../../config/sweep.js';
import { METRIC_DECLARATIONS } from '../../config/metrics.js';
import { RunFolder } from '../../runs/folder.js';
import { finiteRecords, readMetrics } from '../../runs/metrics-files.js';
import { isRunFolder } from '../../runs/run-info.js';
import { runState, type EffectiveStatus } from '../../runs/status.js';
import { evaluateRun, loadTrainedRun } from '../evaluate-run.js';
import type { Reporter } from '../reporter.js';
import { trainRun } from '../train-run.js';
import { expandSweep, type Child, type Expansion } from './expand.js';
import { readAttempts, readFinalChoice, sweepPath, writeAttempts } from './folder.js';

export type ChildStatus = EffectiveStatus | 'pending';

export interface ChildState {
  status: ChildStatus;
  attempts: number;
  /** Whether running it again would do something: not completed, and a failed one still has attempts left. */
  todo: boolean;
}

/** Where a child stands (runs/status.ts tells a dead `running` child as `stale`). */
export function childState(dir: string, child: Child, retries: number): ChildState {
  const runDir = path.join(dir, child.name);
  const attempts = readAttempts(dir, child.name);
  if (!isRunFolder(runDir)) return { status: 'pending', attempts, todo: true };
  const { status } = runState(runDir);
  return { status, attempts, todo: status !== 'completed' && !(status === 'failed' && attempts > retries) };
}

/** Opens the sweep folder's resolved spec and expands it (with the final stage once chosen). */
export function openSweep(dir: string): { sweep: LoadedSweep; expansion: Expansion } {
  const specFile = sweepPath(dir, 'spec');
  if (!existsSync(specFile)) throw new UsageError(`${dir}: not a sweep folder (no sweep.yaml); start one with: resflow sweep SPEC`);
  const sweep = loadSweepSpec(specFile);
  return { sweep, expansion: expandSweep(sweep, readFinalChoice(dir)) };
}

/** The value of the selection metric on `split` in a child's metrics.json, or undefined. */
export function metricOf(sweep: LoadedSweep, runDir: string, split: string, child: Child): number | undefined {
  const { metric, k, variant } = sweep.spec.select;
  const decl = METRIC_DECLARATIONS[metric];
  const task = decl.perTask ? (sweep.spec.select.task ?? child.config.tasks[0]!.name) : undefined;
  const records = isRunFolder(runDir) ? finiteRecords(readMetrics(runDir)) : [];
  const hit = records.find(
    (r) => r.split === split && r.name === metric && (task === undefined || r.task === task) && (k === undefined || r.k === k) && (variant === undefined || r.variant === variant),
  );
  return hit?.value;
}

export interface RunTrialOptions {
  /** Threads for the trial (the launcher's grant); else SLURM_CPUS_PER_TASK, the spec's, or the config's. */
  threads?: number;
  stopRequested?: () => boolean;
  onRunStarted?: (run: RunFolder) => void;
  /** How long to wait for a live child (another process training it), in ms. */
  waitLiveMs?: number;
}

export type TrialOutcome = 'skipped' | 'trained' | 'resumed';

/** Threads granted by the environment (src/launchers/launcher.ts, CPUS_ENV), if any. */
export function grantedThreads(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const n = Number(env['SLURM_CPUS_PER_TASK']);
  return Number.isInteger(n) && n >= 1 ? n : undefined;
}

export async function runTrial(dir: string, index: number, opts: RunTrialOptions, reporter: Reporter): Promise<{ child: Child; outcome: TrialOutcome; runDir: string }> {
  const sweepDir = path.resolve(dir);
  const { sweep, expansion } = openSweep(sweepDir);
  const child = expansion.children[index];
  if (!child) throw new UsageError(`--index ${index}: the sweep has ${expansion.children.length} runs (indices 0-${expansion.children.length - 1})`);
  const runDir = path.join(sweepDir, child.name);
  const granted = [opts.threads, grantedThreads()].filter((t): t is number => t !== undefined);
  const threads = granted.length ? Math.min(...granted) : (sweep.spec.resources.threads ?? child.config.runtime.threads);
  const config = { ...child.config, runtime: { ...child.config.runtime, threads } };
  reporter.info(`trial ${child.trial} (${child.group}, seed ${child.seed}) -> ${runDir}`);

  const stop = opts.stopRequested ?? (() => false);
  const deadline = Date.now() + (opts.waitLiveMs ?? 120_000);
  let state = childState(sweepDir, child, sweep.spec.retries);
  while (state.status === 'running') {
    if (Date.now() > deadline) throw new UsageError(`${runDir}: the run is still being trained by another process (pid ${runState(runDir).info.pid ?? '?'}); not starting it twice`);
    if (stop()) throw new Interrupted('interrupted while waiting for another process to finish the run');
    await new Promise((r) => setTimeout(r, 500));
    state = childState(sweepDir, child, sweep.spec.retries);
  }
  let outcome: TrialOutcome = 'skipped';
  if (state.status !== 'completed') {
    const resumable = state.status !== 'pending' && runState(runDir).resumable;
    if (resumable) {
      outcome = 'resumed';
      await trainRun({ resume: runDir }, { stopRequested: stop, onRunStarted: opts.onRunStarted }, reporter);
    } else {
      if (state.status === 'failed' && state.attempts > sweep.spec.retries) {
        throw new RuntimeFailure(`${runDir}: failed ${state.attempts} time(s), the sweep's limit (retries: ${sweep.spec.retries}); see its run.json error`);
      }
      if (existsSync(runDir)) RunFolder.remove(runDir); // failed, or stopped before its first checkpoint: from scratch
      writeAttempts(sweepDir, child.name, state.attempts + 1);
      outcome = 'trained';
      await trainRun({ config, runDir }, { stopRequested: stop, onRunStarted: opts.onRunStarted }, reporter);
    }
  }
  await evaluateSelectionSplit(sweep, child, runDir, reporter);
  return { child, outcome, runDir };
}

/** Evaluates the split the selection reads when the child's metrics.json lacks it. */
async function evaluateSelectionSplit(sweep: LoadedSweep, child: Child, runDir: string, reporter: Reporter): Promise<void> {
  const split = sweep.spec.select.split;
  if (split !== 'validation' || metricOf(sweep, runDir, split, child) !== undefined) return;
  if (readMetrics(runDir).some((r) => r.split === split)) return; // evaluated; the metric is NaN there
  const files = child.config.data.validation;
  if (!files) return;
  const loaded = await loadTrainedRun(runDir, reporter);
  await evaluateRun(loaded, { split, files: typeof files === 'string' ? [files] : files }, reporter);
}
