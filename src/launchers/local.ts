/**
 * The local launcher: a pool of `plan.parallel` worker processes on this machine, each running
 * `resflow sweep run-trial DIR --index I --threads N` (N: the plan's CPUs per trial, so trials
 * packed on one machine do not oversubscribe it). A worker's output goes to `DIR/logs/<index>.log`.
 *
 * Stopping (README.md, "Sweeps"): SIGINT or SIGTERM to the sweep stops starting trials and is
 * passed on to the running workers, which finish their step, checkpoint and exit (`train`'s
 * handling); a second and third signal are passed on too. Workers run in their own process
 * groups (a terminal's Ctrl-C reaches them once, through here) with a pipe on stdin: if the sweep
 * process dies (kill -9), the pipe closes and they stop the same way, so a re-run resumes them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import type { LaunchOptions, LaunchPlan, LaunchResult, Launcher } from './launcher.js';

type StopSignal = 'SIGINT' | 'SIGTERM';

/** Tells a worker it was started by the local launcher (it then stops when its stdin closes). */
export const WORKER_ENV = 'RESFLOW_SWEEP_WORKER';

export function localLauncher(): Launcher {
  return {
    name: 'local',
    async check() {
      // nothing to check: the workers are this program on this machine
    },
    launch,
  };
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

async function launch(plan: LaunchPlan, opts: LaunchOptions): Promise<LaunchResult> {
  const logs = path.join(plan.sweepDir, 'logs');
  if (opts.dryRun) {
    for (const i of plan.indices) opts.out(`${[...plan.resflow, ...workerArgs(plan, i)].join(' ')}  > ${path.join(logs, `${i}.log`)}`);
    return { outcome: 'printed' };
  }
  mkdirSync(logs, { recursive: true });
  const queue = [...plan.indices];
  const running = new Map<number, ChildProcess>();
  let interrupted: StopSignal | undefined;
  const onSignal = (signal: StopSignal) => {
    if (!interrupted) opts.info(`\n${signal}: stopping; ${running.size} running trial(s) finish their step and save a checkpoint; run the sweep again to continue`);
    interrupted ??= signal;
    for (const child of running.values()) child.kill(signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await new Promise<void>((resolve) => {
      const startNext = (): void => {
        while (!interrupted && running.size < plan.parallel && queue.length > 0) start(queue.shift()!);
        if (running.size === 0) resolve();
      };
      const start = (index: number): void => {
        const fd = openSync(path.join(logs, `${index}.log`), 'a');
        const child = spawn(plan.resflow[0]!, [...plan.resflow.slice(1), ...workerArgs(plan, index)], {
          stdio: ['pipe', fd, fd],
          detached: true,
          env: { ...process.env, [WORKER_ENV]: '1' },
        });
        closeSync(fd);
        child.stdin?.on('error', () => {}); // the worker may be gone before the pipe is
        running.set(index, child);
        opts.onTrialStart?.(index);
        let ended = false;
        const end = (code: number) => {
          if (ended) return;
          ended = true;
          running.delete(index);
          opts.onTrialEnd?.(index, code);
          startNext();
        };
        child.on('exit', (code, signal) => end(exitCodeOf(code, signal)));
        child.on('error', () => end(1));
      };
      startNext();
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  return { outcome: 'finished', interrupted };
}

function workerArgs(plan: LaunchPlan, index: number): string[] {
  return ['sweep', 'run-trial', plan.sweepDir, '--index', String(index), '--threads', String(plan.resources.cpus)];
}
