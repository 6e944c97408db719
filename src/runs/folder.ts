/**
 * Run folders (DESIGN §8): runs/<experiment>/<version>/ with the resolved config, run.json,
 * history.csv, metric tables and the model. Every file is written whole: to a temporary name,
 * then renamed, so a crash never leaves a half-written table.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { stringify, parse } from 'yaml';
import type { ExperimentConfig } from '../config/experiment.js';
import { DataError } from '../base/errors.js';
import { version as resflowVersion } from '../base/version.js';

export type RunStatus = 'running' | 'completed' | 'failed' | 'interrupted';

export interface RunInfo {
  experiment: string;
  version: string;
  status: RunStatus;
  created: string;
  updated: string;
  seed: number;
  /** The backend as initialised, e.g. `wasm (tfjs 4.22.0, simd, 1 thread, native matmul avx512, 2 threads)`. */
  backend: string | null;
  config_hash: string;
  git_commit: string | null;
  versions: Record<string, string>;
  timings: Record<string, number>;
  /** Where training stands: epochs done and steps into the current epoch. */
  progress: { epoch: number; step_in_epoch: number; global_step: number };
  error?: string;
  resumed?: string[];
  cost?: Record<string, number>;
}

export function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function configHash(config: ExperimentConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 8);
}

function gitCommit(): string | null {
  try {
    return execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim() || null;
  } catch {
    return null;
  }
}

function timestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

export class RunFolder {
  private constructor(
    readonly dir: string,
    public info: RunInfo,
  ) {}

  /** Makes a new run folder; the version sorts by time and carries the config's hash. */
  static create(runsDir: string, config: ExperimentConfig, extraVersions: Record<string, string> = {}): RunFolder {
    const hash = configHash(config);
    const now = new Date();
    const base = `${timestamp(now)}-${hash}`;
    const expDir = path.resolve(runsDir, config.name);
    let version = base;
    for (let i = 2; existsSync(path.join(expDir, version)); i++) version = `${base}-${i}`;
    const dir = path.join(expDir, version);
    mkdirSync(dir, { recursive: true });
    const info: RunInfo = {
      experiment: config.name,
      version,
      status: 'running',
      created: now.toISOString(),
      updated: now.toISOString(),
      seed: config.runtime.seed,
      backend: null,
      config_hash: hash,
      git_commit: gitCommit(),
      versions: { resflow: resflowVersion(), node: process.version, ...extraVersions },
      timings: {},
      progress: { epoch: 0, step_in_epoch: 0, global_step: 0 },
    };
    const run = new RunFolder(dir, info);
    run.writeText('config.yaml', `# Resolved config of run ${config.name}/${version} (defaults filled in).\n${stringify(config)}`);
    run.saveInfo();
    return run;
  }

  static open(dir: string): RunFolder {
    const file = path.join(dir, 'run.json');
    if (!existsSync(file)) throw new DataError(`${dir}: not a run folder (no run.json)`);
    let info: RunInfo;
    try {
      info = JSON.parse(readFileSync(file, 'utf8')) as RunInfo;
    } catch (err) {
      throw new DataError(`${file}: unreadable (${(err as Error).message})`);
    }
    return new RunFolder(path.resolve(dir), info);
  }

  config(): ExperimentConfig {
    const file = path.join(this.dir, 'config.yaml');
    if (!existsSync(file)) throw new DataError(`${this.dir}: run folder has no config.yaml`);
    return parse(readFileSync(file, 'utf8')) as ExperimentConfig;
  }

  path(name: string): string {
    return path.join(this.dir, name);
  }

  writeText(name: string, text: string): void {
    writeAtomic(this.path(name), text);
  }

  writeJson(name: string, value: unknown): void {
    writeAtomic(this.path(name), JSON.stringify(value, null, 2) + '\n');
  }

  update(patch: Partial<RunInfo>): void {
    this.info = { ...this.info, ...patch };
    this.saveInfo();
  }

  saveInfo(): void {
    this.info.updated = new Date().toISOString();
    this.writeJson('run.json', this.info);
  }
}

/** Writes rows as CSV with a fixed header order (union of keys in first-seen order). */
export function toCsv(rows: Record<string, unknown>[]): string {
  const cols: string[] = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const cell = (v: unknown) => {
    if (v === undefined || v === null) return '';
    const s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toPrecision(8)) : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(','), ...rows.map((r) => cols.map((c) => cell(r[c])).join(','))].join('\n') + '\n';
}
