/**
 * The Slurm launcher (README.md, "Sweeps on Slurm"): one job array over a stage's trial indices, each
 * array task running `resflow sweep run-trial DIR --index $SLURM_ARRAY_TASK_ID` as a job step, then a
 * job that depends on the whole array (`afterany`) running `resflow sweep finalize DIR`.
 *
 * Time limits and preemption: the script asks for SIGTERM some seconds before the time limit
 * (`--signal=TERM@S`, without `B:`, so Slurm signals the job step, which is the trial process, and
 * not the batch shell); the trial checkpoints and exits 143 (README.md, "Reliability"); the batch
 * shell, still alive, then requeues its own array task (`--requeue` allows it), and the task's next
 * run resumes the trial from its checkpoint. A task that an administrator or a preemption requeues
 * resumes the same way. Logs: one per trial index, appended across requeues (`--open-mode=append`).
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { RuntimeFailure, UsageError } from '../base/errors.js';
import { writeAtomic } from '../runs/atomic.js';
import type { LaunchOptions, LaunchPlan, LaunchResult, Launcher } from './launcher.js';
import { findOnPath, indexRanges, shellQuote } from './shell.js';

/** The exit code of a trial stopped by SIGTERM (base/errors.ts, Interrupted): requeue and resume. */
export const TERM_EXIT = 143;
/** A task requeues itself at most this many times (SLURM_RESTART_COUNT), so a trial cannot loop forever. */
export const MAX_REQUEUES = 20;

/** Seconds of warning before the time limit: a quarter of the limit, between 30 s and 120 s. */
export function warningSeconds(timeMinutes: number | undefined): number {
  if (timeMinutes === undefined) return 120;
  return Math.max(30, Math.min(120, Math.floor((timeMinutes * 60) / 4)));
}

/** Where the launcher keeps its files in the sweep folder. */
export function slurmFiles(sweepDir: string): { dir: string; logs: string; trials: string; finalize: string } {
  const dir = path.join(sweepDir, 'slurm');
  return { dir, logs: path.join(dir, 'logs'), trials: path.join(dir, 'trials.sbatch'), finalize: path.join(dir, 'finalize.sbatch') };
}

/** The extra flags as `#SBATCH` lines: a flag starts a line, a following plain word is its value. */
export function extraDirectives(extraArgs: readonly string[]): string[] {
  const lines: string[] = [];
  for (const arg of extraArgs) {
    if (arg.startsWith('-')) lines.push(`#SBATCH ${arg}`);
    else if (lines.length) lines[lines.length - 1] += ` ${shellQuote(arg)}`;
    else throw new UsageError(`slurm: extra sbatch flag '${arg}' must start with '-' (e.g. --qos=low)`);
  }
  return lines;
}

function jobName(name: string): string {
  return `resflow-${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}`;
}

function checkPlan(plan: LaunchPlan): void {
  const bad = plan.indices.find((i) => !Number.isInteger(i) || i < 0);
  if (bad !== undefined) throw new UsageError(`slurm: trial index ${bad} is not a non-negative integer`);
  if (!Number.isInteger(plan.parallel) || plan.parallel < 1) throw new UsageError(`slurm: parallel must be an integer >= 1, got ${plan.parallel}`);
  if (!Number.isInteger(plan.resources.cpus) || plan.resources.cpus < 1) throw new UsageError(`slurm: cpus per trial must be an integer >= 1, got ${plan.resources.cpus}`);
}

/** Directives both jobs share: partition, memory, time limit and the user's extra flags. */
function commonDirectives(plan: LaunchPlan): { head: string[]; extra: string[] } {
  const r = plan.resources;
  const head: string[] = [];
  if (r.partition) head.push(`#SBATCH --partition=${shellQuote(r.partition)}`);
  if (r.memoryMb !== undefined) head.push(`#SBATCH --mem=${Math.ceil(r.memoryMb)}M`);
  if (r.timeMinutes !== undefined) head.push(`#SBATCH --time=${Math.ceil(r.timeMinutes)}`);
  return { head, extra: extraDirectives(r.extraArgs) };
}

/** The array job's batch script (the caller checks that `plan.indices` is not empty). */
export function trialsScript(plan: LaunchPlan): string {
  checkPlan(plan);
  const files = slurmFiles(plan.sweepDir);
  const { head, extra } = commonDirectives(plan);
  const count = new Set(plan.indices).size;
  const run = [...plan.resflow, 'sweep', 'run-trial', plan.sweepDir].map(shellQuote).join(' ');
  const task = '${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}';
  return [
    '#!/bin/bash',
    `#SBATCH --job-name=${jobName(plan.name)}`,
    `#SBATCH --array=${indexRanges(plan.indices)}%${Math.min(plan.parallel, count)}`,
    '#SBATCH --ntasks=1',
    `#SBATCH --cpus-per-task=${plan.resources.cpus}`,
    ...head,
    `#SBATCH --signal=TERM@${warningSeconds(plan.resources.timeMinutes)}`,
    '#SBATCH --requeue',
    '#SBATCH --open-mode=append',
    `#SBATCH --output=${shellQuote(path.join(files.logs, 'trial-%a.log'))}`,
    ...extra,
    `# Written by resflow: sweep '${plan.name}', ${count} trial(s). Each array task runs one trial of the`,
    '# sweep folder; a trial stopped by SIGTERM (time limit warning, preemption) checkpoints, exits 143 and',
    '# this task requeues itself to resume it (README.md, "Sweeps on Slurm").',
    `echo "[resflow] trial \${SLURM_ARRAY_TASK_ID}: job ${task} on $(hostname), run $((\${SLURM_RESTART_COUNT:-0} + 1)), $(date -u +%FT%TZ)"`,
    `srun --ntasks=1 --cpus-per-task="\${SLURM_CPUS_PER_TASK:-${plan.resources.cpus}}" ${run} --index "\${SLURM_ARRAY_TASK_ID}"`,
    'rc=$?',
    `if [ "$rc" -eq ${TERM_EXIT} ] && [ "\${SLURM_RESTART_COUNT:-0}" -lt ${MAX_REQUEUES} ]; then`,
    `  echo "[resflow] trial \${SLURM_ARRAY_TASK_ID} interrupted (exit $rc): requeueing ${task}"`,
    `  scontrol requeue "${task}"`,
    'fi',
    'exit $rc',
    '',
  ].join('\n');
}

/** The finalize job's batch script; it is submitted with `--dependency=afterany:<array job id>`. */
export function finalizeScript(plan: LaunchPlan): string {
  checkPlan(plan);
  const files = slurmFiles(plan.sweepDir);
  const { head, extra } = commonDirectives(plan);
  const run = [...plan.resflow, 'sweep', 'finalize', plan.sweepDir].map(shellQuote).join(' ');
  return [
    '#!/bin/bash',
    `#SBATCH --job-name=${jobName(plan.name)}-finalize`,
    '#SBATCH --ntasks=1',
    '#SBATCH --cpus-per-task=1',
    ...head,
    '#SBATCH --open-mode=append',
    `#SBATCH --output=${shellQuote(path.join(files.logs, 'finalize.log'))}`,
    ...extra,
    `# Written by resflow: after every trial of sweep '${plan.name}' ended, write trials.csv/json and the`,
    '# leaderboard, and start the next stage, if any (README.md, "Sweeps on Slurm").',
    'echo "[resflow] finalize: job ${SLURM_JOB_ID} on $(hostname), $(date -u +%FT%TZ)"',
    `exec ${run}`,
    '',
  ].join('\n');
}

/** The job id in `sbatch --parsable` output ("123" or "123;cluster"). */
export function parseJobId(stdout: string): string {
  const line = stdout.trim().split('\n').pop() ?? '';
  const m = /^(\d+)(;\S+)?$/.exec(line.trim());
  if (!m) throw new RuntimeFailure(`slurm: could not read a job id from sbatch's output '${stdout.trim()}'`);
  return m[1]!;
}

export interface SlurmLauncherOptions {
  /** The environment whose PATH is searched for sbatch (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

export class SlurmLauncher implements Launcher {
  readonly name = 'slurm';
  private readonly env: NodeJS.ProcessEnv;

  constructor(opts: SlurmLauncherOptions = {}) {
    this.env = opts.env ?? process.env;
  }

  private sbatch(): string | undefined {
    return findOnPath('sbatch', this.env.PATH);
  }

  async check(opts: { dryRun: boolean }): Promise<void> {
    if (opts.dryRun || this.sbatch()) return;
    throw new UsageError(
      "sbatch not found on PATH: --launcher slurm submits jobs with Slurm's sbatch (install Slurm's client tools, " +
        'or start a local cluster with scripts/slurm-local.sh, or use --launcher local)',
    );
  }

  async launch(plan: LaunchPlan, opts: LaunchOptions): Promise<LaunchResult> {
    const files = slurmFiles(plan.sweepDir);
    const trials = plan.indices.length ? trialsScript(plan) : undefined;
    const finalize = finalizeScript(plan);
    if (opts.dryRun) {
      if (trials) {
        opts.out(`# ${files.trials} (submit: sbatch --parsable ${shellQuote(files.trials)})`);
        opts.out(trials);
      }
      const dep = trials ? ' --dependency=afterany:<job id of the array>' : '';
      opts.out(`# ${files.finalize} (submit: sbatch --parsable${dep} ${shellQuote(files.finalize)})`);
      opts.out(finalize);
      return { outcome: 'printed' };
    }
    await this.check({ dryRun: false });
    mkdirSync(files.logs, { recursive: true });
    const written: string[] = [];
    const jobIds: string[] = [];
    let arrayId: string | undefined;
    if (trials) {
      writeAtomic(files.trials, trials);
      written.push(files.trials);
      arrayId = await this.submit([files.trials], plan.sweepDir);
      jobIds.push(arrayId);
      const n = new Set(plan.indices).size;
      opts.info(`submitted job array ${arrayId}: ${n} trial(s), at most ${Math.min(plan.parallel, n)} at once; logs in ${files.logs}`);
    }
    writeAtomic(files.finalize, finalize);
    written.push(files.finalize);
    let finalizeId: string;
    try {
      finalizeId = await this.submit([...(arrayId ? [`--dependency=afterany:${arrayId}`] : []), files.finalize], plan.sweepDir);
    } catch (err) {
      if (!arrayId) throw err;
      const why = err instanceof Error ? err.message : String(err);
      throw new RuntimeFailure(
        `${why}; the job array ${arrayId} was submitted: after it ends run 'resflow sweep finalize ${plan.sweepDir}'`,
      );
    }
    jobIds.push(finalizeId);
    opts.info(`submitted finalize job ${finalizeId}${arrayId ? ` (after job ${arrayId} ends)` : ''}; watch with: squeue -j ${jobIds.join(',')}`);
    return { outcome: 'submitted', jobIds, files: written };
  }

  /** Runs `sbatch --parsable ARGS` and returns the job id. */
  private submit(args: string[], cwd: string): Promise<string> {
    const sbatch = this.sbatch()!;
    return new Promise((resolve, reject) => {
      const child = spawn(sbatch, ['--parsable', ...args], { cwd, env: this.env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (err) => reject(new RuntimeFailure(`slurm: could not run ${sbatch}: ${err.message}`)));
      child.on('close', (code) => {
        if (code === 0) {
          try {
            resolve(parseJobId(stdout));
          } catch (err) {
            reject(err);
          }
          return;
        }
        const msg = stderr.trim().split('\n').filter(Boolean).pop() ?? `exit code ${code}`;
        // sbatch refusing an option or value (partition, qos, memory) is the user's input to change
        const Err = /invalid|unrecognized|unknown|not recognized|not available|exceed/i.test(msg) ? UsageError : RuntimeFailure;
        reject(new Err(`slurm: sbatch ${path.basename(args[args.length - 1]!)} failed: ${msg}`));
      });
    });
  }
}
