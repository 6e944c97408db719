/**
 * `resflow export` as a user runs it (README "Serving", docs/serving.md): a trained tiny run exported
 * from the command line scores in onnxruntime-node exactly as `eval --save-predictions` does; a bad
 * run folder (missing weights, truncated embeddings.bin, edited config) or an unknown format exits 2
 * naming the file or option, and writes nothing (an earlier export stays as it was).
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, rmSync, truncateSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadExperiment } from '../src/app/load-experiment.js';
import { BatchEncoder, buildFeaturePlan, openSplit } from '../src/data/encode.js';
import { readBatches } from '../src/data/reader.js';
import type { FeaturesFile } from '../src/export/onnx.js';
import { cli, tempDir, trainTiny } from './helpers/fixtures.js';
import { feedsFor, loadOrt, type Ort } from './helpers/ort.js';

let dir = '';
let run = '';
let ort: Ort | null = null;
let skip: string | false = false;

before(async () => {
  ({ ort, reason: skip } = await loadOrt());
  dir = tempDir();
  run = trainTiny(dir, { yaml: 'fusion: { mode: multiplicative, weights: { ctr: 1, ctcvr: 2 } }\n' });
});

/** A copy of the trained run to damage. */
function copyRun(name: string): string {
  const copy = path.join(dir, name);
  cpSync(run, copy, { recursive: true });
  return copy;
}

test('export from the command line: the ONNX model scores the eval split as `eval --save-predictions` does (1e-5)', async (t) => {
  const out = path.join(dir, 'serving', 'model.onnx');
  const r = cli(['-q', 'export', run, '--format', 'onnx', '--out', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split('\n'), [out, path.join(dir, 'serving', 'features.json')]);
  const features = JSON.parse(readFileSync(path.join(dir, 'serving', 'features.json'), 'utf8')) as FeaturesFile;
  assert.equal(features.model, 'model.onnx');
  assert.deepEqual(features.outputs.at(-1), { name: 'fused', fusion: { mode: 'multiplicative', weights: { ctr: 1, ctcvr: 2 } } });
  if (skip) return t.skip(skip);
  const preds = path.join(dir, 'preds.csv');
  const e = cli(['-q', 'eval', run, '--save-predictions', preds]);
  assert.equal(e.code, 0, e.stderr);
  const [header, ...lines] = readFileSync(preds, 'utf8').trim().split('\n').map((l) => l.split(','));
  const col = (n: string) => header!.indexOf(n);

  const { config } = loadExperiment(path.join(run, 'config.yaml'));
  const encoder = new BatchEncoder(config, buildFeaturePlan(config));
  const opened = await openSplit(config, 'eval');
  const session = await ort!.InferenceSession.create(out);
  let row = 0;
  let worst = 0;
  for (const tbl of opened.tables) {
    for await (const raw of readBatches(tbl, opened.needs, 4096)) {
      const batch = encoder.encode(raw, tbl.file);
      const res = await session.run(feedsFor(ort!, features, batch, raw));
      for (let i = 0; i < batch.length; i++, row++) {
        for (const name of ['p_ctr', 'p_ctcvr', 'fused']) {
          const d = Math.abs((res[name]!.data as Float32Array)[i]! - Number(lines[row]![col(name)]));
          worst = Math.max(worst, d);
        }
      }
    }
  }
  await session.release();
  assert.equal(row, lines.length, 'one prediction per eval row');
  assert.ok(worst <= 1e-5, `largest difference ${worst}`);
});

const FAULTS: { name: string; damage: (copy: string) => void; file: RegExp }[] = [
  { name: 'missing weights', damage: (c) => rmSync(path.join(c, 'model', 'weights.bin')), file: /weights\.bin/ },
  {
    name: 'truncated embeddings.bin',
    damage: (c) => {
      const f = path.join(c, 'model', 'embeddings.bin');
      truncateSync(f, statSync(f).size - 100);
    },
    file: /embeddings\.bin/,
  },
  {
    name: 'edited config (another hidden size)',
    damage: (c) => {
      const f = path.join(c, 'config.yaml');
      const text = readFileSync(f, 'utf8');
      assert.match(text, /- 16\n/);
      writeFileSync(f, text.replace(/- 16\n/, '- 12\n'));
    },
    file: /config\.yaml: SHA-256 \w+… differs from \w+… recorded in .*run\.json/,
  },
  {
    name: 'edited config that still fits the weights (residual: none)',
    damage: (c) => {
      const f = path.join(c, 'config.yaml');
      const text = readFileSync(f, 'utf8');
      assert.match(text, /residual: both\n/);
      writeFileSync(f, text.replace(/residual: both\n/, 'residual: none\n'));
    },
    file: /config\.yaml: SHA-256 \w+… differs from \w+… recorded in .*run\.json \(same size: altered after it was written\)/,
  },
  {
    name: 'edited config (an unknown key)',
    damage: (c) => writeFileSync(path.join(c, 'config.yaml'), `${readFileSync(path.join(c, 'config.yaml'), 'utf8')}extra_key: 1\n`),
    file: /config\.yaml/,
  },
];

for (const f of FAULTS) {
  test(`export of a run with ${f.name}: exit 2 naming the file; an earlier export is left as it was`, () => {
    const copy = copyRun(f.name.replace(/\W+/g, '-'));
    const out = path.join(copy, 'out', 'model.onnx');
    const ok = cli(['-q', 'export', copy, '--out', out]);
    assert.equal(ok.code, 0, ok.stderr);
    const before = readFileSync(out);
    f.damage(copy);
    const r = cli(['-q', 'export', copy, '--out', out]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, f.file);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    assert.ok(readFileSync(out).equals(before), 'the earlier model.onnx is intact');
  });
}

test('export --format with an unknown format: exit 2 naming the option and the known formats; nothing written', () => {
  const out = path.join(dir, 'nothing', 'model.onnx');
  const r = cli(['export', run, '--format', 'savedmodel', '--out', out]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--format savedmodel: unknown export format; known: onnx/);
  assert.equal(existsSync(path.dirname(out)), false);
});

test('export of a folder that is not a run: exit 2 naming it', () => {
  const r = cli(['export', path.join(dir, 'no-such-run')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /no-such-run/);
});
