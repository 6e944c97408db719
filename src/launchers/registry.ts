/**
 * The launchers a sweep can run through, by name (`resflow sweep SPEC --launcher NAME`). Adding a
 * launcher is one module behind the interface in ./launcher.ts and one entry here.
 */
import { UsageError } from '../base/errors.js';
import type { Launcher } from './launcher.js';
import { KubernetesLauncher } from './kubernetes.js';
import { localLauncher } from './local.js';
import { SlurmLauncher } from './slurm.js';

const LAUNCHERS: Record<string, () => Launcher> = {
  local: localLauncher,
  slurm: () => new SlurmLauncher(),
  kubernetes: () => new KubernetesLauncher(),
};

export function launcherNames(): string[] {
  return Object.keys(LAUNCHERS);
}

/** The launcher called `name`; UsageError (exit 2) naming the known ones otherwise. */
export function getLauncher(name: string): Launcher {
  const make = LAUNCHERS[name];
  if (!make) throw new UsageError(`--launcher ${name}: unknown launcher (known: ${launcherNames().join(', ')})`);
  return make();
}
