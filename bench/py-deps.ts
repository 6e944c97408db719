/**
 * Debian-packaged Python for the reference benchmarks (bench/compare.ts, bench/metrics-compare.ts).
 * /usr/bin/python3 is used on purpose: a `python3` on PATH may be a pyenv one without Debian's
 * packages.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const PY = '/usr/bin/python3';

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
