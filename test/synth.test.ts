import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import {
  PRESETS,
  SYNTH_SCHEMA,
  expectedPurchases,
  positionBias,
  synthesize,
  type SynthSummary,
} from '../src/data/synth.js';
import { withDuckDB } from '../src/data/duckdb.js';
import { KeyedRng } from '../src/base/rng.js';
import type { DuckDBConnection } from '@duckdb/node-api';

const SPLITS = ['train', 'valid', 'eval'] as const;
let dir: string;
let summary: SynthSummary;
let progress: [number, number][] = [];

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'resflow-synth-test-'));
  progress = [];
  summary = await synthesize({
    preset: 'tiny',
    seed: 7,
    outDir: join(dir, 'a'),
    onProgress: (w, t) => progress.push([w, t]),
  });
});

after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const all = () => `read_parquet([${SPLITS.map((s) => `'${summary.files[s]}'`).join(', ')}])`;

async function rowsOf(con: DuckDBConnection, sql: string): Promise<Record<string, unknown>[]> {
  return (await con.runAndReadAll(sql)).getRowObjectsJS() as Record<string, unknown>[];
}

function md5(file: string): string {
  return createHash('md5').update(readFileSync(file)).digest('hex');
}

test('positionBias and expectedPurchases on a hand-worked case', () => {
  assert.equal(positionBias(1), 1);
  assert.equal(positionBias(3), 0.5);
  assert.ok(Math.abs(positionBias(7) - 1 / 3) < 1e-15);
  assert.equal(positionBias(0), 0);
  assert.ok(positionBias(2) < positionBias(1) && positionBias(10) < positionBias(2));

  const teacher = [0.1, 0.5, 0.3, 0.2];
  const ctr = [0.2, 0.1, 0.4, 0.3];
  const cvr = [0.5, 0.2, 0.1, 1.0];
  // chosen {0, 2, 3}; ranked by teacher: 2 (0.3), 3 (0.2), 0 (0.1); two shown:
  // 0.4 * 1 * 0.1 + 0.3 * (1 / log2 3) * 1.0
  const want = 0.04 + 0.3 / Math.log2(3);
  assert.ok(Math.abs(expectedPurchases(teacher, ctr, cvr, [0, 2, 3], 2) - want) < 1e-12);
  assert.ok(Math.abs(expectedPurchases(teacher, ctr, cvr, [3, 0, 2], 2) - want) < 1e-12, 'order of chosen does not matter');
  // all three shown: + 0.2 * 0.5 * 0.5
  assert.ok(Math.abs(expectedPurchases(teacher, ctr, cvr, [0, 2, 3], 10) - (want + 0.2 * 0.5 * 0.5)) < 1e-12);
  assert.equal(expectedPurchases(teacher, ctr, cvr, [], 5), 0);
  assert.equal(expectedPurchases(teacher, ctr, cvr, [1, 2], 0), 0);
  // ties on teacher: the lower index goes first
  const tied = [0.5, 0.5];
  assert.ok(Math.abs(expectedPurchases(tied, [0.1, 0.2], [1, 1], [1, 0], 1) - 0.1) < 1e-12);
  assert.throws(() => expectedPurchases(teacher, ctr, cvr, [4], 1), RangeError);
});

test('files, schema, split sizes and size budget of tiny', async () => {
  const p = PRESETS.tiny;
  let total = 0;
  for (const s of SPLITS) {
    assert.equal(summary.files[s], join(dir, 'a', `${s}.parquet`));
    total += statSync(summary.files[s]).size;
  }
  assert.ok(total < 2_000_000, `tiny is ${total} bytes, must stay under 2 MB`);
  assert.equal(summary.requests.train + summary.requests.valid + summary.requests.eval, p.requests);
  assert.equal(summary.requests.train, Math.round(p.requests * 0.8));
  assert.equal(summary.requests.valid, Math.round(p.requests * 0.1));
  const rows = summary.rows.train + summary.rows.valid + summary.rows.eval;
  assert.ok(rows >= p.requests * p.poolMin && rows <= p.requests * p.poolMax);
  assert.ok(rows > 80_000 && rows < 120_000, `tiny has ${rows} rows`);
  // progress: starts at 0, ends at the total, never decreases
  assert.deepEqual(progress[0], [0, rows]);
  assert.deepEqual(progress[progress.length - 1], [rows, rows]);
  for (let i = 1; i < progress.length; i++) assert.ok(progress[i]![0] >= progress[i - 1]![0]);

  await withDuckDB(async (con) => {
    for (const s of SPLITS) {
      const cols = await rowsOf(con, `DESCRIBE SELECT * FROM read_parquet('${summary.files[s]}')`);
      const want: Record<string, string> = {
        int8: 'TINYINT',
        int32: 'INTEGER',
        int64: 'BIGINT',
        float32: 'FLOAT',
        float64: 'DOUBLE',
        string: 'VARCHAR',
        list_int32: 'INTEGER[]',
      };
      assert.deepEqual(
        cols.map((c) => [c.column_name, c.column_type]),
        SYNTH_SCHEMA.map((c) => [c.name, want[c.type]]),
      );
      const n = await rowsOf(con, `SELECT count(*) AS n, count(DISTINCT request_id) AS r FROM read_parquet('${summary.files[s]}')`);
      assert.equal(Number(n[0]!.n), summary.rows[s]);
      assert.equal(Number(n[0]!.r), summary.requests[s]);
    }
  });
});

test('rows are grouped by request, requests in order, splits contiguous', async () => {
  await withDuckDB(async (con) => {
    let next = 1;
    for (const s of SPLITS) {
      const ids = (await con.runAndReadAll(`SELECT request_id FROM read_parquet('${summary.files[s]}')`)).getColumnsJS()[0]!.map(Number);
      assert.equal(ids[0], next, `${s} starts where the previous split ended`);
      for (let i = 1; i < ids.length; i++) {
        const d = ids[i]! - ids[i - 1]!;
        assert.ok(d === 0 || d === 1, `${s}: request ids must be grouped and increasing (row ${i}: ${ids[i - 1]} -> ${ids[i]})`);
      }
      next = ids[ids.length - 1]! + 1;
    }
    assert.equal(next, PRESETS.tiny.requests + 1);
  });
});

test('label nesting and value ranges hold on every row', async () => {
  await withDuckDB(async (con) => {
    const r = (
      await rowsOf(
        con,
        `SELECT
          count(*) FILTER (WHERE purchase > click OR click > all_click OR all_purchase > all_click OR purchase > all_purchase) AS nesting,
          count(*) FILTER (WHERE stage <> 'exposure' AND (click <> 0 OR purchase <> 0 OR position <> 0 OR p_click <> 0 OR p_purchase <> 0)) AS unexposed,
          count(*) FILTER (WHERE stage = 'exposure' AND (position < 1 OR p_click <= 0)) AS exposed,
          count(*) FILTER (WHERE stage NOT IN ('exposure', 'ranking_candidate', 'prerank_candidate')) AS stages,
          count(*) FILTER (WHERE click NOT IN (0, 1) OR purchase NOT IN (0, 1) OR all_click NOT IN (0, 1) OR all_purchase NOT IN (0, 1)) AS binary,
          count(*) FILTER (WHERE NOT (teacher_ctr BETWEEN 0 AND 1 AND teacher_ctcvr BETWEEN 0 AND 1 AND teacher_ctcvr <= teacher_ctr
                                     AND relevance_ctr BETWEEN 0 AND 1 AND relevance_cvr BETWEEN 0 AND 1
                                     AND p_click BETWEEN 0 AND 1 AND p_purchase BETWEEN 0 AND 1 AND p_all_click BETWEEN 0 AND 1
                                     AND p_all_purchase BETWEEN 0 AND 1)) AS ranges,
          count(*) FILTER (WHERE p_purchase > p_click OR p_click > p_all_click OR p_all_purchase > p_all_click OR p_purchase > p_all_purchase) AS prob_nesting,
          count(*) FILTER (WHERE (click = 1 AND p_click = 0) OR (purchase = 1 AND p_purchase = 0)
                               OR (all_click = 1 AND p_all_click = 0) OR (all_purchase = 1 AND p_all_purchase = 0)) AS impossible,
          count(*) FILTER (WHERE item_price <= 0 OR item_hist_ctr <= 0 OR item_hist_ctr >= 1) AS items,
          count(*) FILTER (WHERE user_segment NOT BETWEEN 0 AND ${PRESETS.tiny.segments - 1}
                               OR query_category NOT BETWEEN 0 AND ${PRESETS.tiny.categories - 1}
                               OR item_category NOT BETWEEN 0 AND ${PRESETS.tiny.categories - 1}
                               OR item_brand NOT BETWEEN 0 AND ${PRESETS.tiny.brands - 1}) AS categorical,
          count(*) FILTER (WHERE len(user_recent_categories) > 8) AS long_lists,
          count(*) FILTER (WHERE len(user_recent_categories) = 0) AS empty_lists,
          count(*) FILTER (WHERE abs(p_click - relevance_ctr / log2(position + 1)) > 1e-6 AND stage = 'exposure') AS pclick
        FROM ${all()}`,
      )
    )[0]!;
    for (const k of ['nesting', 'unexposed', 'exposed', 'stages', 'binary', 'ranges', 'prob_nesting', 'impossible', 'items', 'categorical', 'long_lists', 'pclick']) {
      assert.equal(Number(r[k]), 0, `${k}: ${r[k]} offending rows`);
    }
    assert.ok(Number(r.empty_lists) > 0, 'some users have no recent categories');
  });
});

test('funnel shape per request matches the preset', async () => {
  const p = PRESETS.tiny;
  await withDuckDB(async (con) => {
    const bad = await rowsOf(
      con,
      `WITH r AS (
         SELECT request_id, count(*) AS pool,
                count(*) FILTER (WHERE stage = 'exposure') AS e,
                count(*) FILTER (WHERE stage = 'ranking_candidate') AS rc,
                count(*) FILTER (WHERE stage = 'prerank_candidate') AS pc,
                count(DISTINCT position) FILTER (WHERE stage = 'exposure') AS positions,
                max(position) AS maxpos,
                count(DISTINCT item_id) AS items,
                count(DISTINCT user_id) AS users, count(DISTINCT query_id) AS queries,
                count(DISTINCT query_category) AS qcats, count(DISTINCT user_segment) AS segs,
                count(DISTINCT user_recent_categories) AS lists
         FROM ${all()} GROUP BY request_id)
       SELECT * FROM r WHERE NOT (
         pool BETWEEN ${p.poolMin} AND ${p.poolMax}
         AND e BETWEEN ${p.exposeMin} AND ${p.exposeMax} AND e <= ${p.rankKeep}
         AND e + rc = ${p.rankKeep} AND pc = pool - ${p.rankKeep}
         AND positions = e AND maxpos = e
         AND items = pool AND users = 1 AND queries = 1 AND qcats = 1 AND segs = 1 AND lists = 1)
       LIMIT 5`,
    );
    assert.deepEqual(bad, [], 'requests that break the funnel shape');
    // the pool mostly comes from the query's category
    const m = (await rowsOf(con, `SELECT avg((item_category = query_category)::INT) AS m FROM ${all()}`))[0]!;
    assert.ok(Number(m.m) > 0.7, `category match rate ${m.m}`);
  });
});

test('label rates look like search logs and agree with the stored probabilities', async () => {
  await withDuckDB(async (con) => {
    const r = (
      await rowsOf(
        con,
        `SELECT
          avg(click) FILTER (WHERE stage = 'exposure') AS ctr,
          sum(purchase) / sum(click) AS cvr,
          sum(all_purchase) AS all_purchases,
          sum(all_purchase) FILTER (WHERE stage <> 'exposure') AS unexposed_all_purchases,
          sum(click) AS c, sum(p_click) AS pc, sum(p_click * (1 - p_click)) AS vc,
          sum(purchase) AS p, sum(p_purchase) AS pp, sum(p_purchase * (1 - p_purchase)) AS vp,
          sum(all_click) AS ac, sum(p_all_click) AS pac, sum(p_all_click * (1 - p_all_click)) AS vac,
          sum(all_purchase) AS ap, sum(p_all_purchase) AS pap, sum(p_all_purchase * (1 - p_all_purchase)) AS vap
        FROM ${all()}`,
      )
    )[0]!;
    const ctr = Number(r.ctr);
    const cvr = Number(r.cvr);
    assert.ok(ctr > 0.02 && ctr < 0.15, `exposure CTR ${ctr}`);
    assert.ok(cvr > 0.03 && cvr < 0.25, `CVR of clicks ${cvr}`);
    assert.ok(Number(r.all_purchases) >= 300, `all_purchase positives ${r.all_purchases}`);
    assert.ok(Number(r.unexposed_all_purchases) >= 100, `all_purchase positives among unexposed ${r.unexposed_all_purchases}`);
    // labels are draws from the stored probabilities: counts within 5 standard deviations
    for (const [n, mean, v] of [
      ['c', 'pc', 'vc'],
      ['p', 'pp', 'vp'],
      ['ac', 'pac', 'vac'],
      ['ap', 'pap', 'vap'],
    ] as const) {
      const dev = Math.abs(Number(r[n]) - Number(r[mean])) / Math.sqrt(Number(r[v]));
      assert.ok(dev < 5, `${n}: ${r[n]} positives, expected ${Number(r[mean]).toFixed(1)} (${dev.toFixed(2)} sd)`);
    }
  });
});

test('replaying the production funnel through expectedPurchases gives the exposures and their purchase rates', async () => {
  await withDuckDB(async (con) => {
    const cols = (
      await con.runAndReadAll(
        `SELECT request_id, stage, position, teacher_ctcvr, relevance_ctr, relevance_cvr, p_purchase FROM read_parquet('${summary.files.eval}')`,
      )
    ).getColumnsObjectJS();
    const req = cols.request_id!.map(Number);
    const n = req.length;
    let checked = 0;
    let production = 0;
    let best = 0;
    let random = 0;
    let rnd = 12345;
    for (let a = 0; a < n; ) {
      let b = a;
      while (b < n && req[b] === req[a]) b++;
      const teacher = cols.teacher_ctcvr!.slice(a, b).map(Number);
      const ctr = cols.relevance_ctr!.slice(a, b).map(Number);
      const cvr = cols.relevance_cvr!.slice(a, b).map(Number);
      const chosen: number[] = [];
      let exposures = 0;
      let want = 0;
      for (let i = a; i < b; i++) {
        if (cols.stage![i] !== 'prerank_candidate') chosen.push(i - a);
        if (cols.stage![i] === 'exposure') {
          exposures++;
          want += Number(cols.p_purchase![i]);
        }
      }
      const got = expectedPurchases(teacher, ctr, cvr, chosen, exposures);
      assert.ok(Math.abs(got - want) <= 1e-6 * Math.max(1, want), `request ${req[a]}: ${got} vs ${want}`);
      // the shown set is exactly the logged exposures, in position order
      const order = [...chosen].sort((x, y) => teacher[y]! - teacher[x]! || x - y);
      for (let k = 0; k < exposures; k++) assert.equal(Number(cols.position![a + order[k]!]), k + 1);
      // a pre-ranker that knows the true relevance sends the same number of candidates to ranking
      const oracle = ctr
        .map((_, i) => i)
        .sort((x, y) => ctr[y]! * cvr[y]! - ctr[x]! * cvr[x]! || x - y)
        .slice(0, chosen.length);
      // and one that keeps a random subset of that size
      const shuffled = ctr.map((_, i) => i);
      for (let i = shuffled.length - 1; i > 0; i--) {
        rnd = (rnd * 16807) % 2147483647;
        const j = rnd % (i + 1);
        [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
      }
      production += got;
      best += expectedPurchases(teacher, ctr, cvr, oracle, exposures);
      random += expectedPurchases(teacher, ctr, cvr, shuffled.slice(0, chosen.length), exposures);
      checked++;
      a = b;
    }
    assert.equal(checked, summary.requests.eval);
    // pre-ranking matters: oracle > production > random
    const msg = `expected purchases: oracle ${best.toFixed(2)}, production ${production.toFixed(2)}, random ${random.toFixed(2)}`;
    assert.ok(best > production, msg);
    assert.ok(production > random * 1.2, msg);
  });
});

test('same seed gives identical files, another seed differs; arrow output holds the same values', async () => {
  const again = await synthesize({ preset: 'tiny', seed: 7, outDir: join(dir, 'b') });
  for (const s of SPLITS) assert.equal(md5(again.files[s]), md5(summary.files[s]), `${s} is byte-identical`);
  const other = await synthesize({ preset: 'tiny', seed: 8, outDir: join(dir, 'c') });
  assert.notEqual(md5(other.files.train), md5(summary.files.train));

  const arrow = await synthesize({ preset: 'tiny', seed: 7, outDir: join(dir, 'd'), format: 'arrow' });
  assert.equal(arrow.files.valid, join(dir, 'd', 'valid.arrow'));
  assert.deepEqual(arrow.rows, summary.rows);
  const t = tableFromIPC(readFileSync(arrow.files.valid));
  assert.equal(t.numRows, summary.rows.valid);
  assert.deepEqual(
    t.schema.fields.map((f) => f.name),
    SYNTH_SCHEMA.map((c) => c.name),
  );
  await withDuckDB(async (con) => {
    const fromParquet = (
      await con.runAndReadAll(`SELECT teacher_ctcvr, item_id, stage, user_recent_categories FROM read_parquet('${summary.files.valid}')`)
    ).getColumnsObjectJS();
    const other8 = (await con.runAndReadAll(`SELECT teacher_ctcvr FROM read_parquet('${other.files.valid}')`)).getColumnsJS()[0]!;
    assert.deepEqual(Array.from(t.getChild('teacher_ctcvr')!.toArray() as Float32Array), fromParquet.teacher_ctcvr!.map(Number));
    assert.deepEqual(Array.from(t.getChild('item_id')!.toArray() as BigInt64Array), fromParquet.item_id);
    assert.deepEqual(Array.from({ length: t.numRows }, (_, i) => t.getChild('stage')!.get(i)), fromParquet.stage);
    const lists = t.getChild('user_recent_categories')!;
    for (let i = 0; i < t.numRows; i += 97) {
      assert.deepEqual(Array.from(lists.get(i)!.toArray() as Int32Array), fromParquet.user_recent_categories![i]);
    }
    assert.notDeepEqual(other8.slice(0, 200).map(Number), fromParquet.teacher_ctcvr!.slice(0, 200).map(Number));
  });
});

test('bad options are refused', async () => {
  await assert.rejects(synthesize({ preset: 'huge' as 'tiny', seed: 1, outDir: join(dir, 'x') }), /preset/);
  await assert.rejects(synthesize({ preset: 'tiny', seed: -1, outDir: join(dir, 'x') }), /seed/);
  await assert.rejects(synthesize({ preset: 'tiny', seed: 1.5, outDir: join(dir, 'x') }), /seed/);
});

test('the tiny preset with seed 1 regenerates datasets/tiny byte for byte (but for the DuckDB version in the footer)', async () => {
  const out = join(dir, 'committed');
  await synthesize({ preset: 'tiny', seed: 1, outDir: out });
  // Parquet's created_by names the DuckDB build that wrote the file; everything else must match.
  const withoutWriter = (f: string) => readFileSync(f).toString('latin1').replace(/DuckDB version v[^)]*\)/, 'DuckDB');
  for (const split of SPLITS) {
    const committed = join(import.meta.dirname, '..', '..', 'datasets', 'tiny', `${split}.parquet`);
    assert.ok(withoutWriter(join(out, `${split}.parquet`)) === withoutWriter(committed), `${split}.parquet differs from datasets/tiny`);
  }
});

test('KeyedRng: pinned values (the committed data sets depend on them), independent streams per key', () => {
  const a = new KeyedRng(1, 2, 3);
  const first = [a.nextU32(), a.nextU32(), a.nextU32()];
  assert.deepEqual(first, PINNED_KEYED_U32);
  const again = new KeyedRng(1, 2, 3);
  assert.deepEqual([again.nextU32(), again.nextU32(), again.nextU32()], first);
  assert.notEqual(new KeyedRng(1, 2, 4).nextU32(), first[0]);
  assert.notEqual(new KeyedRng(1, 1, 3).nextU32(), first[0]);
  const r = new KeyedRng(5, 1, 0);
  for (let i = 0; i < 1000; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    const k = r.int(7);
    assert.ok(Number.isInteger(k) && k >= 0 && k < 7);
    assert.ok(Number.isFinite(r.normal()));
  }
});

/** The first three words of the synthetic funnel's original generator for (seed 1, stream 2, index 3). */
const PINNED_KEYED_U32 = [3066401828, 4221919263, 1026183692];
