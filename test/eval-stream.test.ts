/**
 * Streaming evaluation (README.md, "Scale") against evaluating all rows at once, on the bundled tiny
 * funnel scored by the quickstart model: the model's and the oracle's records must be the same bits.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { initBackend } from '../src/kernels/backend.js';
import { loadExperiment } from '../src/app/load-experiment.js';
import { buildBundle, disposeBundle } from '../src/models/bundle.js';
import { scoreSplit, scoreStream } from '../src/eval/score.js';
import { evaluateRows, oracleRecords } from '../src/eval/evaluate.js';
import { OracleEvaluator, RowsEvaluator } from '../src/eval/stream-eval.js';
import { readFileSync } from 'node:fs';
import { cli, repoRoot, tempDir, tinyConfigYaml, tinyDir, writeFile } from './helpers/fixtures.js';
import { sqlString, withDuckDB } from '../src/data/duckdb.js';

before(async () => {
  await initBackend('wasm');
});

for (const set of [[], ['eval.gauc_group=user', 'fusion.mode=multiplicative', 'eval.batch_size=1000']]) {
  test(`streamed evaluation of the quickstart's eval split equals all rows at once (${set.join(' ') || 'defaults'})`, async () => {
    const { config } = loadExperiment(path.join(repoRoot, 'configs/quickstart.yaml'), { overrides: set });
    const bundle = buildBundle(config);
    try {
      const scored = await scoreSplit(bundle, 'eval');
      const whole = [...evaluateRows(config, scored.probs, scored.rows, 'eval'), ...oracleRecords(config, scored.rows, 'eval-oracle')];
      const model = new RowsEvaluator(config, 'eval');
      const oracle = new OracleEvaluator(config, 'eval-oracle');
      let batches = 0;
      await scoreStream(bundle, 'eval', undefined, (probs, batch) => {
        model.add(probs, batch);
        oracle.add(batch);
        batches++;
      });
      assert.ok(batches >= 2, `more than one batch (${batches})`);
      const streamed = [...model.finish(), ...oracle.finish()];
      assert.ok(whole.some((r) => r.name === 'online' && r.task === 'logged') && whole.some((r) => r.name === 'gauc'));
      assert.equal(JSON.stringify(streamed), JSON.stringify(whole));
    } finally {
      disposeBundle(bundle);
    }
  });
}

interface Rec { name: string; task: string; k?: number; split: string; value: number }

test('resflow eval: streamed records equal those of all rows at once (--save-predictions), and ungrouped requests fall back to all rows at once', async () => {
  const dir = tempDir();
  const cfg = writeFile(dir, 'exp.yaml', tinyConfigYaml());
  const trained = cli(['-q', 'train', cfg, '--runs-dir', dir, '--set', 'train.epochs=1']);
  assert.equal(trained.code, 0, trained.stderr);
  const run = trained.stdout.trim().split('\n').pop()!;
  // the eval split with its rows dealt out in 7 interleaved piles: requests are no longer contiguous
  const shuffled = path.join(dir, 'shuffled.parquet');
  await withDuckDB(async (con) => {
    await con.run(`COPY (SELECT * FROM (SELECT *, row_number() OVER () AS rn FROM read_parquet(${sqlString(path.join(tinyDir, 'eval.parquet'))})) ORDER BY rn % 7, rn) TO ${sqlString(shuffled)} (FORMAT parquet)`);
  });
  const evalRun = (split: string, extra: string[]) => {
    const r = cli(['eval', run, '--split', split, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout + r.stderr;
  };
  assert.doesNotMatch(evalRun('streamed', []), /not grouped by request/);
  evalRun('whole', ['--save-predictions', path.join(dir, 'p.csv')]);
  assert.match(evalRun('ungrouped', ['--data', shuffled]), /not grouped by request .* evaluating all rows at once instead/);
  evalRun('ungrouped-whole', ['--data', shuffled, '--save-predictions', path.join(dir, 'q.csv')]);
  const recs = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Rec[];
  const of = (split: string) => JSON.stringify(recs.filter((r) => r.split === split || r.split === `${split}-oracle`).map((r) => ({ ...r, split: r.split.replace(split, 'S') })));
  assert.ok(recs.filter((r) => r.split === 'streamed').length >= 16, 'every default metric');
  assert.equal(of('streamed'), of('whole'));
  assert.equal(of('ungrouped'), of('ungrouped-whole'));
});
