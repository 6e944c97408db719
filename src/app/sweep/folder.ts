/**
 * The sweep folder `runs/<sweep>/` (src/app/sweep/README.md names every file): the resolved spec,
 * the child run folders (named by expand.ts), the final stage's choice, per-child attempt counts,
 * worker logs, and the tables finalize writes. Files are written whole (runs/atomic.ts).
 */
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import type { SweepSpec } from '../../config/sweep.js';
import { writeAtomic } from '../../runs/atomic.js';
import { isRecord, readJsonFile, writeJsonFile } from '../../runs/json-file.js';
import type { FinalChoice } from './expand.js';

export const SWEEP_FILES = {
  spec: 'sweep.yaml',
  final: 'final.json',
  launch: 'launch.json',
  trialsCsv: 'trials.csv',
  trialsJson: 'trials.json',
  leaderboard: 'leaderboard.md',
  /** attempts/<child name>.json: how many times a child was started from scratch. */
  attempts: 'attempts',
  /** logs/<index>.log: a local worker's output. */
  logs: 'logs',
} as const;

export function sweepPath(dir: string, name: keyof typeof SWEEP_FILES): string {
  return path.join(dir, SWEEP_FILES[name]);
}

export function isSweepFolder(dir: string): boolean {
  return existsSync(sweepPath(dir, 'spec'));
}

/** Writes the resolved spec (config paths absolute, defaults filled in) as sweep.yaml. */
export function writeSweepSpec(dir: string, spec: SweepSpec, source: string): void {
  mkdirSync(dir, { recursive: true });
  writeAtomic(sweepPath(dir, 'spec'), `# sweep ${spec.name}, resolved from ${source}\n${stringify(spec)}`);
}

export function readFinalChoice(dir: string): FinalChoice | undefined {
  const file = sweepPath(dir, 'final');
  if (!existsSync(file)) return undefined;
  const doc = readJsonFile(file);
  if (!Array.isArray(doc) || !doc.every((c) => isRecord(c) && typeof c.group === 'string' && typeof c.trial === 'number')) return undefined;
  return doc as FinalChoice;
}

export function writeFinalChoice(dir: string, choice: FinalChoice): void {
  writeJsonFile(sweepPath(dir, 'final'), choice);
}

/** How many times a child was started from scratch (0 when never). */
export function readAttempts(dir: string, child: string): number {
  const file = path.join(sweepPath(dir, 'attempts'), `${child}.json`);
  if (!existsSync(file)) return 0;
  const doc = readJsonFile(file);
  return isRecord(doc) && typeof doc.attempts === 'number' ? doc.attempts : 0;
}

export function writeAttempts(dir: string, child: string, attempts: number): void {
  mkdirSync(sweepPath(dir, 'attempts'), { recursive: true });
  writeJsonFile(path.join(sweepPath(dir, 'attempts'), `${child}.json`), { attempts });
}

/** The launcher a sweep was last started with (so `sweep finalize` can launch the final stage the same way). */
export interface LaunchRecord {
  launcher: string;
  parallel: number;
  threads: number;
}

export function readLaunchRecord(dir: string): LaunchRecord | undefined {
  const file = sweepPath(dir, 'launch');
  if (!existsSync(file)) return undefined;
  const doc = readJsonFile(file);
  return isRecord(doc) && typeof doc.launcher === 'string' ? (doc as unknown as LaunchRecord) : undefined;
}

export function writeLaunchRecord(dir: string, record: LaunchRecord): void {
  writeJsonFile(sweepPath(dir, 'launch'), record);
}
