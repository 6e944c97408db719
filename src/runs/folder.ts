/**
 * Run folders (README.md beside this file): runs/<experiment>/<version>/ with the resolved config,
 * run.json, history.csv, metric tables and the model. Every file is written whole: to a temporary
 * name, then renamed, so a crash never leaves a half-written table.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { ExperimentConfig } from '../config/experiment.js';
import { version as resflowVersion } from '../base/version.js';
import { UsageError } from '../base/errors.js';
import { writeAtomic, writeFailure } from './atomic.js';
import { writeJsonFile } from './json-file.js';
import { checkpointDir } from './checkpoint.js';
import { runPath } from './layout.js';
import { readRunConfig, readRunConfigDocument, writeRunConfig, type ConfigLoader } from './run-config.js';
import { readRunInfo, writeRunInfo, type RunInfo } from './run-info.js';

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
    return RunFolder.make(path.join(expDir, version), config, extraVersions, now);
  }

  /**
   * Makes a new run folder at a chosen path (a sweep's child runs are named by their trial's
   * config, so that re-expanding a sweep finds them); the folder must not exist yet.
   */
  static createAt(dir: string, config: ExperimentConfig, extraVersions: Record<string, string> = {}): RunFolder {
    if (existsSync(dir)) throw new UsageError(`${dir}: already exists; a new run folder needs a free name`);
    return RunFolder.make(path.resolve(dir), config, extraVersions, new Date());
  }

  private static make(dir: string, config: ExperimentConfig, extraVersions: Record<string, string>, now: Date): RunFolder {
    const hash = configHash(config);
    const version = path.basename(dir);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw writeFailure(dir, err);
    }
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
      host: hostname(),
      pid: process.pid,
    };
    const run = new RunFolder(dir, info);
    // run.json first; a folder that cannot be completed (disk full) is removed, never left half-made
    try {
      run.saveInfo();
      writeRunConfig(dir, config, `${config.name}/${version}`);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    return run;
  }

  /** Opens an existing run folder; its run.json is read and checked. */
  static open(dir: string): RunFolder {
    return new RunFolder(path.resolve(dir), readRunInfo(dir));
  }

  /** The run's config, checked like a user's (run-config.ts); `load` may add an upper layer's checks. */
  config(load?: ConfigLoader): ExperimentConfig {
    return readRunConfig(this.dir, load);
  }

  /** The run's config as a plain, unchecked mapping (for `resflow compare`). */
  configDocument(): Record<string, unknown> {
    return readRunConfigDocument(this.dir);
  }

  /** The trained model's folder. */
  modelDir(): string {
    return runPath(this.dir, 'model');
  }

  /** The checkpoint's model folder (with state.json; see checkpoint.ts). */
  checkpointDir(): string {
    return checkpointDir(this.dir);
  }

  /** A path inside the run folder (for tests and tools; code names files through layout.ts). */
  path(name: string): string {
    return path.join(this.dir, name);
  }

  update(patch: Partial<RunInfo>): void {
    this.info = { ...this.info, ...patch };
    this.saveInfo();
  }

  /** Takes the run over for this process (a resume): host, pid and a fresh heartbeat. */
  claim(patch: Partial<RunInfo> = {}): void {
    this.update({ ...patch, host: hostname(), pid: process.pid });
  }

  /** Rewrites run.json; while the run is `running` this is its heartbeat (status.ts). */
  saveInfo(): void {
    this.info.updated = new Date().toISOString();
    if (this.info.status === 'running') this.info.heartbeat = this.info.updated;
    writeRunInfo(this.dir, this.info);
  }

  /** Removes a run folder whole (a sweep retrying a failed trial, or one that stopped before its first checkpoint, from scratch). */
  static remove(dir: string): void {
    rmSync(dir, { recursive: true, force: true });
  }
}
