/** Shared helpers for tests: temp folders, a minimal valid config, running the CLI. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const tinyDir = path.join(repoRoot, 'datasets/tiny');

export function tempDir(prefix = 'resflow-test-'): string {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

export function writeFile(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** Runs the CLI as a user would; returns exit code and output. */
export function cli(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin/resflow.js'), ...args], {
    cwd: opts.cwd ?? repoRoot,
    encoding: 'utf8',
    env: { ...process.env, ...opts.env },
    timeout: 300_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A small valid config over the tiny synthetic funnel, as YAML text. */
export function tinyConfigYaml(extra = ''): string {
  return `name: test
data:
  train: ${tinyDir}/train.parquet
  validation: ${tinyDir}/valid.parquet
  eval: ${tinyDir}/eval.parquet
  columns:
    request: request_id
    user: user_id
    stage: stage
    labels: { click: click, purchase: purchase, all_click: all_click, all_purchase: all_purchase }
    teacher: { ctr: teacher_ctr, ctcvr: teacher_ctcvr }
    truth: { click: p_click, purchase: p_purchase, all_click: p_all_click, all_purchase: p_all_purchase, relevance_ctr: relevance_ctr, relevance_cvr: relevance_cvr }
features:
  - { name: user_id, buckets: 1000 }
  - { name: query_category, buckets: 64 }
  - { name: item_id, buckets: 5000 }
  - { name: item_category, buckets: 64 }
  - { name: user_recent_categories, type: list, buckets: 64, max_len: 8 }
  - { name: item_hist_ctr, type: numeric }
tasks:
  - { name: ctr, label: click }
  - { name: ctcvr, label: purchase }
model: { type: resflow, embedding_dim: 8, hidden: [16, 8] }
train: { epochs: 1, batch_size: 256 }
${extra}`;
}

/**
 * Trains the tiny config (`tinyConfigYaml(yaml)`) into `dir` through the CLI, asserts that it
 * succeeded, and returns the run folder (the last line `train` prints).
 */
export function trainTiny(dir: string, opts: { yaml?: string; args?: string[] } = {}): string {
  const cfg = writeFile(dir, 'exp.yaml', tinyConfigYaml(opts.yaml));
  const r = cli(['-q', 'train', cfg, '--runs-dir', dir, ...(opts.args ?? [])]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.trim().split('\n').pop()!;
}
