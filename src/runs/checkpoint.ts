/**
 * checkpoint/: a model folder with the optimizer state (written by model-io's saveModel) plus
 * state.json, the trainer's position, so an interrupted run resumes exactly. Written whole (model
 * files and state.json swapped in together), periodically and on an interrupt; removed when the run
 * finishes.
 */
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { DataError } from '../base/errors.js';
import { replaceFolderAtomic, writeAtomic } from './atomic.js';
import type { HistoryRow } from './history.js';
import { expectField, isNumber, isRecord, readJsonFile } from './json-file.js';
import { CHECKPOINT_STATE, checkpointStatePath, runPath } from './layout.js';

/** The trainer's state.json. */
export interface CheckpointState {
  /** Epochs fully done. */
  epoch: number;
  /** Minibatches done in the current epoch. */
  stepInEpoch: number;
  globalStep: number;
  history: HistoryRow[];
  best: number | null;
  bestEpoch: number | null;
  badEpochs: number;
  /** Running sums of the current epoch, kept so a resumed epoch reports whole. */
  epochSums: { samples: number; steps: number; loss: number; tasks: number[]; extra: number; seconds: number };
  /** Training is over (the interrupt came during the final evaluation): a resume only evaluates. */
  finished?: boolean;
}

/** The checkpoint folder of a run (a model folder for saveModel/loadModel). */
export function checkpointDir(runDir: string): string {
  return runPath(runDir, 'checkpoint');
}

/** Whether the run has a checkpoint to resume from (its state.json exists). */
export function hasCheckpoint(runDir: string): boolean {
  return existsSync(checkpointStatePath(runDir));
}

/**
 * Writes the whole checkpoint: `saveModel` fills a model folder (with optimizer state), state.json
 * goes beside it, and the folder replaces the old checkpoint in one rename, so a kill at any moment
 * leaves the old checkpoint or the new one, never new weights with an old position.
 */
export function writeCheckpoint(runDir: string, saveModel: (dir: string) => void, state: CheckpointState): void {
  replaceFolderAtomic(checkpointDir(runDir), (tmp) => {
    saveModel(tmp);
    writeAtomic(path.join(tmp, CHECKPOINT_STATE), JSON.stringify(state, null, 2));
  });
}

export function writeCheckpointState(runDir: string, state: CheckpointState): void {
  writeAtomic(checkpointStatePath(runDir), JSON.stringify(state, null, 2));
}

export function readCheckpointState(runDir: string): CheckpointState {
  const file = checkpointStatePath(runDir);
  const s = readJsonFile(file);
  if (!isRecord(s)) throw new DataError(`${file}: expected the trainer's state, an object with epoch, stepInEpoch, globalStep, history, ...`);
  for (const key of ['epoch', 'stepInEpoch', 'globalStep', 'badEpochs']) expectField(file, '', s, key, isNumber, 'a number');
  for (const key of ['best', 'bestEpoch']) expectField(file, '', s, key, (v) => v === null || isNumber(v), 'a number or null');
  expectField(file, '', s, 'history', (v) => Array.isArray(v) && v.every(isRecord), 'a list of epoch rows');
  expectField(file, '', s, 'epochSums', (v) => isRecord(v) && Array.isArray(v['tasks']), 'the running sums of the epoch');
  expectField(file, '', s, 'finished', (v) => v === undefined || typeof v === 'boolean', 'true or false');
  return s as unknown as CheckpointState;
}

/** A finished run's mid-epoch checkpoint is stale (the model folder holds the result). */
export function removeCheckpoint(runDir: string): void {
  rmSync(checkpointDir(runDir), { recursive: true, force: true });
}
