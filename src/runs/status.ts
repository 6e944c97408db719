/**
 * A run's effective status, for `compare`, `train --resume` and other commands that list runs:
 * run.json's status, except that a `running` run whose process is gone is `stale`. Gone means: on
 * this host and its pid is no longer alive, or its heartbeat (run.json `heartbeat`, rewritten at
 * least every HEARTBEAT_MS while training) is older than STALE_AFTER_MS. A stale run is resumable
 * when it has a checkpoint (README.md, "Reliability").
 */
import { hostname } from 'node:os';
import { hasCheckpoint } from './checkpoint.js';
import { readRunInfo, type RunInfo, type RunStatus } from './run-info.js';

export type EffectiveStatus = RunStatus | 'stale';

/** How often a training process rewrites its heartbeat. */
export const HEARTBEAT_MS = 60_000;
/** A heartbeat older than this means the process is gone (a checkpoint or an epoch never blocks this long). */
export const STALE_AFTER_MS = 15 * HEARTBEAT_MS;

/** Whether a process with this pid exists on this host (EPERM: it exists, owned by someone else). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What the status is judged against; the defaults are this host, now and processAlive. */
export interface StatusProbe {
  host: string;
  now: number;
  alive: (pid: number) => boolean;
}

/** Why a `running` run is stale, or null when it may still be alive (or is not `running`). */
export function staleReason(info: RunInfo, probe: Partial<StatusProbe> = {}): string | null {
  if (info.status !== 'running') return null;
  const host = probe.host ?? hostname();
  const alive = probe.alive ?? processAlive;
  if (info.host === host && typeof info.pid === 'number' && !alive(info.pid)) return `its process (pid ${info.pid} on ${host}) is gone`;
  const beat = info.heartbeat === undefined ? NaN : Date.parse(info.heartbeat);
  const age = (probe.now ?? Date.now()) - beat;
  if (Number.isFinite(age) && age > STALE_AFTER_MS) return `no heartbeat from pid ${info.pid ?? '?'} on ${info.host ?? '?'} for ${Math.round(age / 60_000)} min`;
  return null;
}

/** completed, failed, interrupted, running, or stale (recorded as running, process gone). */
export function effectiveStatus(info: RunInfo, probe: Partial<StatusProbe> = {}): EffectiveStatus {
  return staleReason(info, probe) === null ? info.status : 'stale';
}

export interface RunState {
  status: EffectiveStatus;
  /** Whether `train --resume` can carry it on: not completed, not live, and with a checkpoint. */
  resumable: boolean;
  checkpoint: boolean;
  info: RunInfo;
}

/** Reads a run folder's run.json and tells its effective status and whether it can be resumed. */
export function runState(runDir: string, probe: Partial<StatusProbe> = {}): RunState {
  const info = readRunInfo(runDir);
  const status = effectiveStatus(info, probe);
  const checkpoint = hasCheckpoint(runDir);
  return { status, resumable: checkpoint && status !== 'completed' && status !== 'running', checkpoint, info };
}
