/** Whether tests can use a Slurm cluster (README.md, "Sweeps on Slurm": scripts/slurm-local.sh starts one). */
import { spawnSync } from 'node:child_process';
import { findOnPath } from '../../src/launchers/shell.js';

/** A reason to skip when sbatch/sinfo are missing or no node is up; false when a cluster is ready. */
export function clusterSkip(): string | false {
  if (!findOnPath('sbatch', process.env.PATH) || !findOnPath('sinfo', process.env.PATH)) return 'sbatch/sinfo not on PATH (as root, scripts/slurm-local.sh starts a local cluster)';
  const r = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0 || !/\b(idle|mixed|allocated)\b/.test(r.stdout)) return `no Slurm node is up (sinfo: ${(r.stderr || r.stdout).trim() || 'no nodes'}); run scripts/slurm-local.sh`;
  return false;
}
