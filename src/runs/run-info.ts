/** run.json: what a run is and where it stands, rewritten whole on every change. */
import { existsSync } from 'node:fs';
import { DataError } from '../base/errors.js';
import { isFileRecords, recordedFiles, type FileRecords } from './integrity.js';
import { expectField, isNumber, isRecord, isString, optional, readJsonFile, writeJsonFile } from './json-file.js';
import { runPath } from './layout.js';
import type { TableMemory } from '../models/embeddings.js';

export const RUN_STATUSES = ['running', 'completed', 'failed', 'interrupted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export interface RunInfo {
  experiment: string;
  version: string;
  status: RunStatus;
  created: string;
  updated: string;
  seed: number;
  /** The backend as initialised, e.g. `wasm (tfjs 4.22.0, simd, 1 thread, native matmul avx512, 2 threads)`. */
  backend: string | null;
  /** On `webgpu`: the adapter (vendor, architecture, device, description, is_fallback_adapter, software, feature_level, dawn_options). */
  gpu_adapter?: Record<string, unknown>;
  config_hash: string;
  git_commit: string | null;
  versions: Record<string, string>;
  timings: Record<string, number>;
  /** Where training stands: epochs done and steps into the current epoch. */
  progress: { epoch: number; step_in_epoch: number; global_step: number };
  error?: string;
  resumed?: string[];
  cost?: Record<string, number>;
  /** Per embedding table: rows, dim, bytes of weights, state index and optimizer state, rows holding state; at the start, then at the end of training (README.md, "Sparse embeddings"). */
  embedding_memory?: TableMemory[];
  /** Regularisation, learning-rate schedule and loss balancing as resolved (only when one is on; README.md, "Regularisation and schedules"). */
  training?: Record<string, unknown>;
  /** Size and SHA-256 of every model and checkpoint file, by path in the run folder (integrity.ts). */
  files?: FileRecords;
  /** The machine and process training the run, and when it last said it is alive (status.ts tells a dead run from a live one). */
  host?: string;
  pid?: number;
  heartbeat?: string;
}

/** Whether a folder is a run folder (has run.json). */
export function isRunFolder(dir: string): boolean {
  return existsSync(runPath(dir, 'info'));
}

/**
 * Reads run.json, checking that it names its experiment, version and status and that the other
 * fields readers use have their types; a missing or malformed file is a DataError naming it.
 */
export function readRunInfo(runDir: string): RunInfo {
  const file = runPath(runDir, 'info');
  if (!existsSync(file)) throw new DataError(`${file}: missing: ${runDir} is not a run folder (no run.json)`);
  const info = readJsonFile(file);
  if (!isRecord(info)) throw new DataError(`${file}: expected an object with experiment, version, status, seed and progress`);
  expectField(file, '', info, 'experiment', isString, 'a string');
  expectField(file, '', info, 'version', isString, 'a string');
  expectField(file, '', info, 'status', (v) => (RUN_STATUSES as readonly unknown[]).includes(v), `one of ${RUN_STATUSES.join(', ')}`);
  // the rest are checked when present, so folders written by older versions still open
  expectField(file, '', info, 'seed', optional(isNumber), 'a number');
  expectField(file, '', info, 'backend', optional((v) => v === null || isString(v)), 'a string or null');
  expectField(file, '', info, 'gpu_adapter', optional(isRecord), 'an object');
  expectField(file, '', info, 'progress', optional(isRecord), 'an object');
  expectField(file, '', info, 'timings', optional(isRecord), 'an object');
  expectField(file, '', info, 'resumed', optional((v) => Array.isArray(v) && v.every(isString)), 'a list of times');
  expectField(file, '', info, 'files', optional(isFileRecords), 'a map of file paths to { size, sha256 }');
  expectField(file, '', info, 'host', optional(isString), 'a host name');
  expectField(file, '', info, 'pid', optional(isNumber), 'a process id');
  expectField(file, '', info, 'heartbeat', optional(isString), 'a time');
  return info as unknown as RunInfo;
}

export function writeRunInfo(runDir: string, info: RunInfo): void {
  // `files` is written by the model and checkpoint writers (integrity.ts): keep what they recorded
  const files = recordedFiles(runDir);
  if (files) info.files = files;
  writeJsonFile(runPath(runDir, 'info'), info);
}
