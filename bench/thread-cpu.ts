/**
 * CPU time of this process's threads, the main thread apart from the rest, from Linux's
 * /proc/self/task/<tid>/schedstat (nanoseconds on a CPU). A per-CPU-second rate counts every
 * thread; this says how much of it was not the step's own work: V8 compiling hot functions and
 * collecting garbage on its platform threads, which on a short benchmark is still warming up
 * (docs/performance-log.md, the entry of 2026-12-04 07:45 UTC).
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface ThreadCpu {
  /** Nanoseconds the main thread ran. */
  main: number;
  /** Nanoseconds every other thread ran, those that have exited excepted. */
  others: number;
}

/** The process's thread CPU times now, or null where /proc does not give them (not Linux). */
export function threadCpu(): ThreadCpu | null {
  try {
    let main = 0;
    let others = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      let ns: number;
      try {
        ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      } catch {
        continue; // the thread exited between the listing and the read
      }
      if (!Number.isFinite(ns)) return null;
      if (Number(tid) === process.pid) main += ns;
      else others += ns;
    }
    return { main, others };
  } catch {
    return null;
  }
}

/** The share of the CPU used between two readings by threads other than the main one, or null. */
export function othersShare(before: ThreadCpu | null, after: ThreadCpu | null): number | null {
  if (before === null || after === null) return null;
  const main = after.main - before.main;
  const others = Math.max(0, after.others - before.others);
  return main + others > 0 ? others / (main + others) : null;
}
