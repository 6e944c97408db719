/**
 * Debian-packaged Python for the reference benchmarks (bench/compare.ts, bench/metrics-compare.ts).
 * /usr/bin/python3 is used on purpose: a `python3` on PATH may be a pyenv one without Debian's
 * packages.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PY = '/usr/bin/python3';

/**
 * Variables a machine may set for older OpenBLAS builds that override the kernel set OpenBLAS picks
 * by itself (this project's machines set both): a reference process runs without them, at its best.
 */
const BLAS_OVERRIDES = ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE'] as const;

/** This process's environment without BLAS_OVERRIDES, for a reference process alone. */
export function referenceBaseEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of BLAS_OVERRIDES) delete env[k];
  return env;
}

/** One line saying what the reference's environment lost: "removed OPENBLAS_CORETYPE=Haswell, ..." or "... not set here". */
export function describeOverridesRemoved(): string {
  const removed = BLAS_OVERRIDES.filter((k) => process.env[k] !== undefined).map((k) => `${k}=${process.env[k]}`);
  return removed.length ? `removed ${removed.join(', ')}` : `${BLAS_OVERRIDES.join(', ')} not set here`;
}

export function pythonHas(module: string): boolean {
  return existsSync(PY) && spawnSync(PY, ['-c', `import ${module}`], { stdio: 'ignore' }).status === 0;
}

export function debInstalled(pkg: string): boolean {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.includes('install ok installed');
}

/** apt-get install, as root or through sudo; refreshes the package lists once if the first try fails. */
export function aptInstall(pkgs: string[]): void {
  const root = process.getuid?.() === 0;
  const run = (cmd: string[]): boolean => {
    const [exe, ...rest] = root ? cmd : ['sudo', ...cmd];
    return spawnSync(exe!, rest, { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } }).status === 0;
  };
  const install = ['apt-get', 'install', '-y', '--no-install-recommends', ...pkgs];
  console.log(`installing ${pkgs.join(', ')} (apt-get)`);
  if (run(install)) return;
  if (!run(['apt-get', 'update']) || !run(install)) {
    throw new Error(`could not install ${pkgs.join(' ')}; install them by hand: apt-get install -y --no-install-recommends ${pkgs.join(' ')}`);
  }
}

/** Makes sure `PY` imports every module in `modules`, installing `debs` (those not installed yet) if one fails. */
export function ensurePython(modules: string[], debs: string[]): void {
  const ok = () => modules.every((m) => pythonHas(m));
  const missing = debs.filter((d) => !debInstalled(d));
  if (ok() && missing.length === 0) return;
  aptInstall(missing.length ? missing : debs);
  if (!ok()) throw new Error(`${PY} still cannot import ${modules.join(', ')} after installing ${debs.join(', ')}`);
}
