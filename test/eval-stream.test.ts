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
import { FusionGridEvaluator, fusionGrid } from '../src/eval/fusion-grid.js';
import { readFileSync, readdirSync } from 'node:fs';
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
      const gridValues = [0, 0.5, 1, 3];
      const grid = new FusionGridEvaluator(config, 'eval', gridValues);
      let batches = 0;
      await scoreStream(bundle, 'eval', undefined, (probs, batch) => {
        model.add(probs, batch);
        oracle.add(batch);
        grid.add(probs, batch);
        batches++;
      });
      assert.ok(batches >= 2, `more than one batch (${batches})`);
      const streamed = [...model.finish(), ...oracle.finish()];
      assert.ok(whole.some((r) => r.name === 'online' && r.task === 'logged') && whole.some((r) => r.name === 'gauc'));
      assert.equal(JSON.stringify(streamed), JSON.stringify(whole));
      // the fusion grid: every setting's WR@K, ASH@K and online@K, streamed and from all rows
      const gridWhole = fusionGrid(config, scored, 'eval', gridValues);
      // 2 tasks over {0, 0.5, 1, 3}, scaled to a largest weight of 1: (0,1) (1,0) (1,1) (1/2,1) (1/6,1)
      // (1/3,1) and their mirror images (1,1/2) (1,1/6) (1,1/3): 9 vectors, in both modes
      assert.equal(gridWhole.length, 2 * 9);
      const wr = Object.keys(gridWhole[0]!).find((k) => k.startsWith('wrecall@'))!;
      assert.ok(wr && Object.keys(gridWhole[0]!).some((k) => k.startsWith('ash@')));
      assert.ok(new Set(gridWhole.map((r) => r[wr])).size > 1, 'the settings rank differently');
      assert.equal(JSON.stringify(grid.finish()), JSON.stringify(gridWhole));
    } finally {
      disposeBundle(bundle);
    }
  });
}

interface Rec { name: string; task: string; k?: number; split: string; value: number }

test('resflow eval: streamed records and predictions equal those of all rows at once, and ungrouped requests fall back to all rows at once', async () => {
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
    const r = cli(['eval', run, '--verbose', '--split', split, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout + r.stderr;
  };
  const out = (name: string) => path.join(dir, name);
  // the bootstrap over requests needs every row, so it takes the all-rows path (its records also
  // carry ci_* fields, left out below)
  const whole = ['--bootstrap', '10'];
  const withCols = ['--with', 'user,item_id,user_recent_categories'];
  const streamedLog = evalRun('streamed', ['--save-predictions', out('s.csv'), ...withCols]);
  assert.doesNotMatch(streamedLog, /not grouped by request/);
  assert.match(streamedLog, /\(streamed\)/);
  assert.doesNotMatch(evalRun('whole', [...whole, '--save-predictions', out('w.csv'), ...withCols]), /\(streamed\)/);
  evalRun('streamed-pq', ['--save-predictions', out('s.parquet'), ...withCols]);
  evalRun('whole-pq', [...whole, '--save-predictions', out('w.parquet'), ...withCols]);
  // requests not contiguous: the streamed file is abandoned (no temporary left) and written from all rows
  assert.match(evalRun('ungrouped', ['--data', shuffled, '--save-predictions', out('u.csv')]), /not grouped by request .* evaluating all rows at once instead/);
  evalRun('ungrouped-whole', ['--data', shuffled, ...whole, '--save-predictions', out('uw.csv')]);
  const recs = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8')) as Rec[];
  const withoutCi = (r: Rec) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.startsWith('ci_')));
  const of = (split: string) => JSON.stringify(recs.filter((r) => r.split === split || r.split === `${split}-oracle`).map((r) => ({ ...withoutCi(r), split: r.split.replace(split, 'S') })));
  assert.ok(recs.filter((r) => r.split === 'streamed').length >= 16, 'every default metric');
  assert.equal(of('streamed'), of('whole'));
  assert.equal(of('ungrouped'), of('ungrouped-whole'));
  // the same files, byte for byte (CSV) and row for row (Parquet)
  assert.ok(readFileSync(out('s.csv')).equals(readFileSync(out('w.csv'))), 'streamed CSV = all-rows CSV');
  assert.equal(readFileSync(out('s.csv'), 'utf8').trim().split('\n').length, 9005);
  assert.ok(readFileSync(out('u.csv')).equals(readFileSync(out('uw.csv'))), 'fallback CSV = all-rows CSV');
  const [a, b] = await withDuckDB(async (con) => [
    (await con.runAndReadAll(`SELECT * FROM read_parquet(${sqlString(out('s.parquet'))}) ORDER BY row`)).getRows(),
    (await con.runAndReadAll(`SELECT * FROM read_parquet(${sqlString(out('w.parquet'))}) ORDER BY row`)).getRows(),
  ]);
  assert.equal(a.length, 9004);
  assert.deepEqual(a, b);
  assert.deepEqual(readdirSync(dir).filter((f) => f.includes('.tmp-')), []);
});
