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
import { repoRoot } from './helpers/fixtures.js';

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
