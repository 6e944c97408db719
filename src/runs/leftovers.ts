/**
 * Clean-up of what a process killed while writing leaves in a run folder (README.md beside this
 * file): `<name>.tmp-<pid>` files and folders are removed; a `<name>.old-<pid>` folder is put back
 * as `<name>` when the swap that moved it away never finished, and removed otherwise. Entries of a
 * live process of this host (this one included) are left alone unless the caller knows the run is
 * not being written (a stale run about to be resumed).
 */
import { existsSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { parseLeftover, RUN_FILES } from './layout.js';
import { processAlive } from './status.js';

function cleanDir(dir: string, anyPid: boolean, removed: string[]): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const found = names.map((n) => ({ name: n, left: parseLeftover(n) })).filter((e) => e.left && e.left.pid !== process.pid && (anyPid || !processAlive(e.left.pid)));
  // .old first: a folder moved away by an unfinished swap is put back before its .tmp is dropped
  for (const { name, left } of found.sort((a, b) => (a.left!.kind === 'old' ? -1 : 0) - (b.left!.kind === 'old' ? -1 : 0))) {
    const full = path.join(dir, name);
    const target = path.join(dir, left!.target);
    if (left!.kind === 'old' && !parseLeftover(left!.target) && !existsSync(target)) renameSync(full, target);
    else rmSync(full, { recursive: true, force: true });
    removed.push(full);
  }
}

/**
 * Removes leftovers of killed writers from a run folder and its model and checkpoint folders;
 * returns what it removed or put back. `anyPid`: also entries whose pid is alive on this host.
 */
export function cleanLeftovers(runDir: string, opts: { anyPid?: boolean } = {}): string[] {
  const removed: string[] = [];
  const anyPid = opts.anyPid ?? false;
  cleanDir(runDir, anyPid, removed);
  for (const sub of [RUN_FILES.model, RUN_FILES.checkpoint]) {
    const d = path.join(runDir, sub);
    if (existsSync(d) && statSync(d).isDirectory()) cleanDir(d, anyPid, removed);
  }
  return removed;
}
