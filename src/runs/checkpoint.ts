/**
 * checkpoint/: a model folder with the optimizer state (written by model-io's saveModel) plus
 * state.json, the trainer's position, so an interrupted run resumes exactly. Written whole (model
 * files and state.json swapped in together), periodically and on an interrupt; removed when the run
 * finishes.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { DataError } from '../base/errors.js';
import { replaceFolderAtomic, writeAtomic } from './atomic.js';
import type { HistoryRow } from './history.js';
import { fileRecord, folderVerifier, forgetFolder, verifyFolder, writeRecorded } from './integrity.js';
import { expectField, isNumber, isRecord } from './json-file.js';
import { writeModelFolder, type ModelFiles } from './model-io.js';
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
  /** What train.loss_balancing learned (train/loss-balancing.ts); absent for `fixed`. */
  balancing?: { logVars?: number[]; weights?: number[]; initialLosses?: number[] | null };
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
 * Writes the whole checkpoint: the model's files (with optimizer state, from model-io's modelFiles)
 * and state.json replace the old checkpoint folder in one rename, so a kill at any moment leaves the
 * old checkpoint or the new one, never new weights with an old position; run.json records every
 * file's size and SHA-256 first (integrity.ts).
 */
export function writeCheckpoint(runDir: string, files: ModelFiles, state: CheckpointState): void {
  writeModelFolder(checkpointDir(runDir), { ...files, [CHECKPOINT_STATE]: JSON.stringify(state, null, 2) });
}

/** Writes state.json alone, recording its size and SHA-256 in run.json (integrity.ts). */
export function writeCheckpointState(runDir: string, state: CheckpointState): void {
  const text = JSON.stringify(state, null, 2);
  writeRecorded(checkpointDir(runDir), { [CHECKPOINT_STATE]: fileRecord(text) }, false, () => writeAtomic(checkpointStatePath(runDir), text));
}

/** Reads state.json, checked against run.json's record and for the fields the trainer needs. */
export function readCheckpointState(runDir: string): CheckpointState {
  const file = checkpointStatePath(runDir);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new DataError(`${file}: unreadable (${(err as Error).message})`);
  }
  folderVerifier(checkpointDir(runDir))(file, text);
  let s: unknown;
  try {
    s = JSON.parse(text) as unknown;
  } catch (err) {
    throw new DataError(`${file}: unreadable (${(err as Error).message})`);
  }
  if (!isRecord(s)) throw new DataError(`${file}: expected the trainer's state, an object with epoch, stepInEpoch, globalStep, history, ...`);
  for (const key of ['epoch', 'stepInEpoch', 'globalStep', 'badEpochs']) expectField(file, '', s, key, isNumber, 'a number');
  for (const key of ['best', 'bestEpoch']) expectField(file, '', s, key, (v) => v === null || isNumber(v), 'a number or null');
  expectField(file, '', s, 'history', (v) => Array.isArray(v) && v.every(isRecord), 'a list of epoch rows');
  expectField(file, '', s, 'epochSums', (v) => isRecord(v) && Array.isArray(v['tasks']), 'the running sums of the epoch');
  expectField(file, '', s, 'finished', (v) => v === undefined || typeof v === 'boolean', 'true or false');
  expectField(file, '', s, 'balancing', (v) => v === undefined || isRecord(v), 'the learned loss-balancing values');
  return s as unknown as CheckpointState;
}

/** A finished run's mid-epoch checkpoint is stale (the model folder holds the result). */
export function removeCheckpoint(runDir: string): void {
  rmSync(checkpointDir(runDir), { recursive: true, force: true });
  forgetFolder(checkpointDir(runDir));
}

/**
 * Checks every checkpoint file against run.json's record (sizes, then hashes) and reads state.json,
 * so `train --resume` refuses a damaged checkpoint before it changes anything in the run folder.
 * A run written before files were recorded is checked when the checkpoint is loaded (shapes).
 */
export function verifyCheckpoint(runDir: string): void {
  verifyFolder(checkpointDir(runDir));
  readCheckpointState(runDir);
}
