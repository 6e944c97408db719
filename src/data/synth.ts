/**
 * Synthetic search funnel with known ground truth (DESIGN.md §7).
 *
 * Generative story (constants in SYNTH_MODEL below; D = 8 latent dimensions):
 *
 *   World
 *   - Categories k = 0..C-1 with Zipf popularity w_k ∝ (k+1)^-0.8 and a latent vector c_k ~ N(0, 0.35² I).
 *   - Brands belong to one category (brand b sells in category b mod C) with a vector ~ N(0, 0.25² I)
 *     and a price premium ~ N(0, 0.4²).
 *   - Items: every category first gets enough items to fill a pool, the rest are spread by category
 *     popularity. Item vector v_i = c_cat + brand vector + N(0, 0.3² I); popularity pop_i ~ N(0, 0.6²);
 *     log price = category level (uniform 2.5..5.5) + brand premium + N(0, 0.45²), taken to a price point
 *     (2 significant digits minus one cent: 9.99, 24.99, 129.99);
 *     quality q_i = 0.5 * brand premium + N(0, 0.4²); a CVR vector ~ N(0, 0.3² I).
 *     item_hist_ctr = sigmoid(-2.4 + pop_i + N(0, 0.35²)) rounded to 2 significant digits (a noisy
 *     historical CTR).
 *   - Users: segment s ~ uniform 0..15 (segment vector ~ N(0, 0.3² I), price sensitivity
 *     γ_s = 0.2 + 0.8 * s / 15); user vector = segment vector + N(0, 0.35² I); a CVR vector ~ N(0, 0.3² I);
 *     1 to 3 preferred categories; user_recent_categories = up to 0..8 distinct categories (70% from the
 *     preferred ones), empty for about 1 user in 8.
 *   - Queries: each has a category (every category gets one, the rest by popularity) and a vector
 *     c_cat + N(0, 0.3² I).
 *
 *   True relevance of item i for request (user u, query q), position-free (what position 1 would get):
 *     ctr logit = -4.2 + <u + q, v_i> + 0.9 [cat_i = cat_q] + 0.3 [cat_i ∈ recent(u)] + pop_i
 *     cvr logit = -2.6 + <uc_u, ic_i> + q_i - γ_s (log price_i - category level) + 0.4 [cat_i = cat_q]
 *   relevance_ctr = sigmoid(ctr logit), relevance_cvr = sigmoid(cvr logit), both rounded to 3 significant
 *   digits (keeps the committed files small; the rounded values are the ones labels are drawn from).
 *
 *   One request: a user (skewed: user index = floor(U * x²), x uniform), a query of one of the user's
 *   preferred categories (half the time) or of a popular category; a retrieved pool of P candidates
 *   (P uniform in [poolMin, poolMax], 70% from the query's category, 30% from the whole catalogue, no item
 *   twice), in random row order.
 *   - Production pre-ranker: light and only weakly personalised. It sees popularity, quality, relative
 *     price and the category match fully, the user/query/item interactions (the dot products, the
 *     recent-category bonus, the user's own price sensitivity) at 0.3 of their weight:
 *     static = pop_i + q_i - 0.6 (log price_i - category level) + 1.3 [cat_i = cat_q],
 *     score = static + 0.3 (ctr logit + cvr logit - static - biases) + N(0, 1.2²);
 *     it keeps the top R (rankKeep, about a third of the pool). The other P - R rows are
 *     `prerank_candidate`. With these constants, replaying requests through expectedPurchases with R
 *     chosen candidates gives about 0.65x the oracle's expected purchases for a random choice and
 *     0.94x for the production pre-ranker (tiny; 0.68x / 0.96x on small), where the oracle keeps the
 *     top R by relevance_ctr * relevance_cvr; exposures carry most all-scenario purchases, then
 *     ranking candidates (about 0.4% of rows), then pre-ranking candidates (about 0.3%).
 *   - Ranking model (the teacher): teacher_ctr = sigmoid(ctr logit - σ²/2 + N(0, σ²)),
 *     teacher_cvr likewise with its own noise, σ = 0.5 (the -σ²/2 keeps it about calibrated at low
 *     rates); teacher_ctcvr = teacher_ctr * teacher_cvr; both rounded to 3 significant digits and present
 *     on every row. The ranking stage orders the R kept rows by teacher_ctcvr (ties: lower row first)
 *     and shows the top E (E uniform in [exposeMin, exposeMax]) at positions 1..E (`exposure`); the
 *     other R - E are `ranking_candidate`.
 *   - In-scenario labels (exposures only): click ~ Bernoulli(p_click), p_click = relevance_ctr *
 *     positionBias(position), positionBias(p) = 1 / log2(p + 1); purchase | click ~ Bernoulli(relevance_cvr),
 *     p_purchase = p_click * relevance_cvr. Unexposed rows: click = purchase = 0, p_click = p_purchase = 0.
 *   - All-scenario labels do not depend on being shown: the user meets and clicks the item elsewhere
 *     with probability 0.5 * relevance_ctr, so p_all_click = 1 - (1 - p_click)(1 - 0.5 relevance_ctr)
 *     (rounded to 3 significant digits, never below p_click); all_click = click OR other_click with
 *     other_click ~ Bernoulli((p_all_click - p_click) / (1 - p_click)). An other-scenario click converts
 *     with about relevance_cvr: all_purchase = purchase OR (other_click AND Bernoulli(c)), c chosen so that
 *     P(all_purchase) = p_all_purchase ≈ p_all_click * relevance_cvr (rounded to 3 significant digits).
 *     Every p_* column is the exact probability with which the row's label was drawn.
 *   Nesting holds by construction: purchase ⊂ click ⊂ all_click, all_purchase ⊂ all_click,
 *   purchase ⊂ all_purchase.
 *
 * Determinism: every random draw comes from sfc32 streams seeded by hashing (seed, stream, index); each
 * request has its own stream, so the output does not depend on batching. Same seed, same bytes.
 * Memory: the world (users, queries, items) is small; requests are generated and written in batches.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DataError } from '../base/errors.js';
import { writeTable, type ColumnBatch, type ColumnDef } from './write.js';

export type SynthPreset = 'tiny' | 'small' | 'medium';

export interface SynthOptions {
  preset: SynthPreset;
  seed: number;
  outDir: string;
  format?: 'parquet' | 'arrow';
  onProgress?: (rowsWritten: number, rowsTotal: number) => void;
}

export interface SynthSummary {
  files: Record<'train' | 'valid' | 'eval', string>;
  rows: Record<'train' | 'valid' | 'eval', number>;
  requests: Record<'train' | 'valid' | 'eval', number>;
}

export interface SynthPresetParams {
  /** Requests in all three splits together (split 80/10/10 by request, in request order). */
  requests: number;
  users: number;
  queries: number;
  items: number;
  categories: number;
  brands: number;
  /** user_segment takes values 0..segments-1. */
  segments: number;
  /** Retrieved candidates per request: uniform in [poolMin, poolMax]. */
  poolMin: number;
  poolMax: number;
  /** Candidates the production pre-ranker passes to ranking (R); the rest are prerank_candidate. */
  rankKeep: number;
  /** Exposures per request (E): uniform in [exposeMin, exposeMax]; the other R - E are ranking_candidate. */
  exposeMin: number;
  exposeMax: number;
  /** Requests generated and written per batch. */
  batchRequests: number;
}

export const PRESETS: Record<SynthPreset, SynthPresetParams> = {
  // ~90k rows; committed to the repo (three Parquet files together ~1.8 MB, under the 2 MB budget).
  tiny: {
    requests: 1500,
    users: 800,
    queries: 300,
    items: 3000,
    categories: 20,
    brands: 120,
    segments: 16,
    poolMin: 50,
    poolMax: 70,
    rankKeep: 20,
    exposeMin: 8,
    exposeMax: 10,
    batchRequests: 1000,
  },
  // ~1M rows (about 3 s to generate)
  small: {
    requests: 10000,
    users: 8000,
    queries: 2000,
    items: 20000,
    categories: 40,
    brands: 400,
    segments: 16,
    poolMin: 80,
    poolMax: 120,
    rankKeep: 32,
    exposeMin: 8,
    exposeMax: 12,
    batchRequests: 1000,
  },
  // ~10M rows (about 30 s to generate, ~0.5 GB peak RSS)
  medium: {
    requests: 80000,
    users: 60000,
    queries: 12000,
    items: 120000,
    categories: 80,
    brands: 1500,
    segments: 16,
    poolMin: 100,
    poolMax: 150,
    rankKeep: 40,
    exposeMin: 8,
    exposeMax: 12,
    batchRequests: 1000,
  },
};

/** Constants of the generative model (see the comment at the top of this file). */
export const SYNTH_MODEL = {
  dim: 8,
  categoryZipf: 0.8,
  categoryVecStd: 0.35,
  brandVecStd: 0.25,
  brandPremiumStd: 0.4,
  itemVecNoiseStd: 0.3,
  itemPopStd: 0.6,
  priceLevelMin: 2.5,
  priceLevelMax: 5.5,
  priceNoiseStd: 0.45,
  qualityBrandWeight: 0.5,
  qualityStd: 0.4,
  cvrVecStd: 0.3,
  histCtrBias: -2.4,
  histCtrNoiseStd: 0.35,
  segmentVecStd: 0.3,
  userVecNoiseStd: 0.35,
  priceSensitivityMin: 0.2,
  priceSensitivityMax: 1.0,
  recentMax: 8,
  recentEmptyProb: 0.125,
  recentPreferredProb: 0.7,
  queryVecNoiseStd: 0.3,
  queryFromPreferredProb: 0.5,
  ctrBias: -4.2,
  ctrCategoryMatch: 0.9,
  ctrRecentMatch: 0.3,
  cvrBias: -2.6,
  cvrCategoryMatch: 0.4,
  poolFromCategory: 0.7,
  prerankNoiseStd: 1.2,
  prerankPersonalWeight: 0.3,
  teacherNoiseStd: 0.5,
  otherClickRate: 0.5,
  splits: { train: 0.8, valid: 0.1, eval: 0.1 },
} as const;

export const SYNTH_SCHEMA: ColumnDef[] = [
  { name: 'request_id', type: 'int64' },
  { name: 'user_id', type: 'int64' },
  { name: 'query_id', type: 'int64' },
  { name: 'item_id', type: 'int64' },
  { name: 'user_segment', type: 'int32' },
  { name: 'query_category', type: 'int32' },
  { name: 'item_category', type: 'int32' },
  { name: 'item_brand', type: 'int32' },
  { name: 'item_price', type: 'float32' },
  { name: 'item_hist_ctr', type: 'float32' },
  { name: 'user_recent_categories', type: 'list_int32' },
  { name: 'stage', type: 'string' },
  { name: 'position', type: 'int32' },
  { name: 'click', type: 'int8' },
  { name: 'purchase', type: 'int8' },
  { name: 'all_click', type: 'int8' },
  { name: 'all_purchase', type: 'int8' },
  { name: 'teacher_ctr', type: 'float32' },
  { name: 'teacher_ctcvr', type: 'float32' },
  { name: 'p_click', type: 'float32' },
  { name: 'p_purchase', type: 'float32' },
  { name: 'p_all_click', type: 'float32' },
  { name: 'p_all_purchase', type: 'float32' },
  { name: 'relevance_ctr', type: 'float32' },
  { name: 'relevance_cvr', type: 'float32' },
];

/** Examination probability of display position p (1-based): 1 / log2(p + 1); 0 below position 1. */
export function positionBias(position: number): number {
  return position >= 1 ? 1 / Math.log2(position + 1) : 0;
}

/**
 * Simulated online outcome (DESIGN §7) of one request: the ranking stage orders the chosen candidates
 * (indices into the request's rows) by teacher_ctcvr, highest first (ties: lower index first), shows the
 * top `exposures` at positions 1..n, and the expected purchases are
 * sum over shown of relevance_ctr * positionBias(position) * relevance_cvr.
 * Duplicate indices count once; an index outside the arrays is an error.
 */
export function expectedPurchases(
  teacherCtcvr: ArrayLike<number>,
  relevanceCtr: ArrayLike<number>,
  relevanceCvr: ArrayLike<number>,
  chosen: ArrayLike<number>,
  exposures: number,
): number {
  const n = teacherCtcvr.length;
  if (relevanceCtr.length !== n || relevanceCvr.length !== n) {
    throw new RangeError('expectedPurchases: teacherCtcvr, relevanceCtr and relevanceCvr must have the same length');
  }
  const seen = new Set<number>();
  const idx: number[] = [];
  for (let i = 0; i < chosen.length; i++) {
    const j = chosen[i]!;
    if (!Number.isInteger(j) || j < 0 || j >= n) throw new RangeError(`expectedPurchases: chosen index ${j} is outside 0..${n - 1}`);
    if (!seen.has(j)) {
      seen.add(j);
      idx.push(j);
    }
  }
  idx.sort((a, b) => teacherCtcvr[b]! - teacherCtcvr[a]! || a - b);
  const shown = Math.min(Math.max(0, Math.floor(exposures)), idx.length);
  let sum = 0;
  for (let k = 0; k < shown; k++) {
    const j = idx[k]!;
    sum += relevanceCtr[j]! * positionBias(k + 1) * relevanceCvr[j]!;
  }
  return sum;
}

// ---------------------------------------------------------------------------------------------
// Seeded randomness

function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

const TWO32 = 4294967296;

/** sfc32 generator seeded from (seed, stream, index) through a 32-bit hash; Box-Muller normals. */
class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = 0;
  private hasSpare = false;

  constructor(seed: number, stream: number, index: number) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / TWO32) >>> 0;
    let h = mix32(lo ^ 0x9e3779b9);
    h = mix32((h + hi + 0x7f4a7c15) >>> 0);
    h = mix32((h ^ Math.imul(stream + 1, 0x85ebca6b)) >>> 0);
    h = mix32((h + (index >>> 0)) >>> 0);
    h = mix32((h ^ Math.floor(index / TWO32)) >>> 0);
    this.a = mix32(h ^ 0x243f6a88);
    this.b = mix32(h ^ 0x85a308d3);
    this.c = mix32(h ^ 0x13198a2e);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t0 = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    const t = (t0 + this.d) | 0;
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / TWO32;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    const u1 = (this.u32() + 1) / TWO32; // (0, 1]
    const u2 = this.next();
    const r = Math.sqrt(-2 * Math.log(u1));
    const th = 2 * Math.PI * u2;
    this.spare = r * Math.sin(th);
    this.hasSpare = true;
    return r * Math.cos(th);
  }
}

const STREAM = { world: 1, request: 2 } as const;

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

const POW10: number[] = [];
for (let e = 0; e <= 40; e++) POW10.push(10 ** e);

/** Rounds a probability to `digits` significant digits (as a float32). */
function roundSignificant(x: number, digits: number): number {
  if (!(x > 0)) return 0;
  if (x >= 1) return 1;
  const e = Math.floor(Math.log10(x));
  const k = digits - 1 - e; // scale by 10^(digits - 1 - e)
  if (k > 40) return 0;
  const s = POW10[k]!;
  return Math.fround(Math.round(x * s) / s);
}

/** Rounds a probability to 3 significant digits (as a float32). */
function q3(x: number): number {
  return roundSignificant(x, 3);
}

/** A shop price point: 2 significant digits minus one cent (0.99, 19.99, 24.99, 129.99, ...). */
function pricePoint(x: number): number {
  const e = Math.max(0, Math.floor(Math.log10(Math.max(1, x))));
  const step = 10 ** Math.max(0, e - 1);
  return Math.max(1, Math.round(x / step) * step) - 0.01;
}

function pickCumulative(cum: Float64Array, u: number): number {
  const target = u * cum[cum.length - 1]!;
  let lo = 0;
  let hi = cum.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cum[mid]! > target) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// The world: users, queries, items

interface World {
  p: SynthPresetParams;
  catCum: Float64Array;
  catLevel: Float64Array;
  itemCat: Int32Array;
  itemBrand: Int32Array;
  itemVec: Float64Array;
  itemCvrVec: Float64Array;
  itemPop: Float64Array;
  itemQual: Float64Array;
  itemLogPrice: Float64Array;
  itemPrice: Float32Array;
  itemHistCtr: Float32Array;
  itemsOfCat: Int32Array[];
  userSeg: Int32Array;
  userVec: Float64Array;
  userCvrVec: Float64Array;
  userPref: Int32Array[];
  recentOffsets: Int32Array;
  recentValues: Int32Array;
  segGamma: Float64Array;
  queryCat: Int32Array;
  queryVec: Float64Array;
  queriesOfCat: Int32Array[];
}

function gaussVec(rng: Rng, out: Float64Array, offset: number, dim: number, std: number, base?: Float64Array, baseOffset = 0): void {
  for (let d = 0; d < dim; d++) out[offset + d] = (base ? base[baseOffset + d]! : 0) + std * rng.normal();
}

function buildWorld(p: SynthPresetParams, seed: number): World {
  const M = SYNTH_MODEL;
  const D = M.dim;
  const rng = new Rng(seed, STREAM.world, 0);
  const C = p.categories;

  const catCum = new Float64Array(C);
  let acc = 0;
  for (let k = 0; k < C; k++) {
    acc += (k + 1) ** -M.categoryZipf;
    catCum[k] = acc;
  }
  const catVec = new Float64Array(C * D);
  const catLevel = new Float64Array(C);
  for (let k = 0; k < C; k++) {
    gaussVec(rng, catVec, k * D, D, M.categoryVecStd);
    catLevel[k] = M.priceLevelMin + (M.priceLevelMax - M.priceLevelMin) * rng.next();
  }

  const B = p.brands;
  const brandVec = new Float64Array(B * D);
  const brandPremium = new Float64Array(B);
  const brandsOfCat: number[][] = Array.from({ length: C }, () => []);
  for (let b = 0; b < B; b++) {
    gaussVec(rng, brandVec, b * D, D, M.brandVecStd);
    brandPremium[b] = M.brandPremiumStd * rng.normal();
    brandsOfCat[b % C]!.push(b);
  }

  // Items: each category first gets enough items for a pool, the rest follow category popularity.
  const I = p.items;
  const minPerCat = Math.ceil(p.poolMax * M.poolFromCategory * 1.5);
  const itemCat = new Int32Array(I);
  for (let i = 0; i < I; i++) itemCat[i] = i < minPerCat * C ? i % C : pickCumulative(catCum, rng.next());
  const itemBrand = new Int32Array(I);
  const itemVec = new Float64Array(I * D);
  const itemCvrVec = new Float64Array(I * D);
  const itemPop = new Float64Array(I);
  const itemQual = new Float64Array(I);
  const itemLogPrice = new Float64Array(I);
  const itemPrice = new Float32Array(I);
  const itemHistCtr = new Float32Array(I);
  const catItems: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < I; i++) {
    const k = itemCat[i]!;
    const brands = brandsOfCat[k]!;
    const b = brands.length > 0 ? brands[rng.int(brands.length)]! : rng.int(B);
    itemBrand[i] = b;
    for (let d = 0; d < D; d++) itemVec[i * D + d] = catVec[k * D + d]! + brandVec[b * D + d]! + M.itemVecNoiseStd * rng.normal();
    gaussVec(rng, itemCvrVec, i * D, D, M.cvrVecStd);
    itemPop[i] = M.itemPopStd * rng.normal();
    itemQual[i] = M.qualityBrandWeight * brandPremium[b]! + M.qualityStd * rng.normal();
    const price = pricePoint(Math.exp(catLevel[k]! + brandPremium[b]! + M.priceNoiseStd * rng.normal()));
    itemPrice[i] = Math.fround(price);
    itemLogPrice[i] = Math.log(price);
    itemHistCtr[i] = roundSignificant(sigmoid(M.histCtrBias + itemPop[i]! + M.histCtrNoiseStd * rng.normal()), 2);
    catItems[k]!.push(i);
  }
  const itemsOfCat = catItems.map((a) => Int32Array.from(a));

  const S = p.segments;
  const segVec = new Float64Array(S * D);
  const segGamma = new Float64Array(S);
  for (let s = 0; s < S; s++) {
    gaussVec(rng, segVec, s * D, D, M.segmentVecStd);
    segGamma[s] = M.priceSensitivityMin + ((M.priceSensitivityMax - M.priceSensitivityMin) * s) / Math.max(1, S - 1);
  }

  const U = p.users;
  const userSeg = new Int32Array(U);
  const userVec = new Float64Array(U * D);
  const userCvrVec = new Float64Array(U * D);
  const userPref: Int32Array[] = [];
  const recentOffsets = new Int32Array(U + 1);
  const recent: number[] = [];
  for (let u = 0; u < U; u++) {
    const s = rng.int(S);
    userSeg[u] = s;
    gaussVec(rng, userVec, u * D, D, M.userVecNoiseStd, segVec, s * D);
    gaussVec(rng, userCvrVec, u * D, D, M.cvrVecStd);
    const nPref = 1 + rng.int(3);
    const pref: number[] = [];
    for (let j = 0; j < nPref; j++) {
      const k = pickCumulative(catCum, rng.next());
      if (!pref.includes(k)) pref.push(k);
    }
    userPref.push(Int32Array.from(pref));
    const len = rng.next() < M.recentEmptyProb ? 0 : 1 + rng.int(M.recentMax);
    const mine: number[] = [];
    for (let j = 0; j < len; j++) {
      const k = rng.next() < M.recentPreferredProb ? pref[rng.int(pref.length)]! : pickCumulative(catCum, rng.next());
      if (!mine.includes(k)) mine.push(k);
    }
    recent.push(...mine);
    recentOffsets[u + 1] = recent.length;
  }

  const Q = p.queries;
  const queryCat = new Int32Array(Q);
  const queryVec = new Float64Array(Q * D);
  const catQueries: number[][] = Array.from({ length: C }, () => []);
  for (let q = 0; q < Q; q++) {
    const k = q < C ? q : pickCumulative(catCum, rng.next());
    queryCat[q] = k;
    gaussVec(rng, queryVec, q * D, D, M.queryVecNoiseStd, catVec, k * D);
    catQueries[k]!.push(q);
  }
  const queriesOfCat = catQueries.map((a) => Int32Array.from(a));

  return {
    p,
    catCum,
    catLevel,
    itemCat,
    itemBrand,
    itemVec,
    itemCvrVec,
    itemPop,
    itemQual,
    itemLogPrice,
    itemPrice,
    itemHistCtr,
    itemsOfCat,
    userSeg,
    userVec,
    userCvrVec,
    userPref,
    recentOffsets,
    recentValues: Int32Array.from(recent),
    segGamma,
    queryCat,
    queryVec,
    queriesOfCat,
  };
}

// ---------------------------------------------------------------------------------------------
// Requests

const STAGE_EXPOSURE = 'exposure';
const STAGE_RANKING = 'ranking_candidate';
const STAGE_PRERANK = 'prerank_candidate';

/** Pool size and exposure count of request r: the first two draws of its stream. */
function requestSizes(p: SynthPresetParams, seed: number, r: number): { pool: number; exposed: number; rng: Rng } {
  const rng = new Rng(seed, STREAM.request, r);
  const pool = p.poolMin + rng.int(p.poolMax - p.poolMin + 1);
  const exposed = p.exposeMin + rng.int(p.exposeMax - p.exposeMin + 1);
  return { pool, exposed, rng };
}

interface BatchArrays {
  request_id: Float64Array;
  user_id: Float64Array;
  query_id: Float64Array;
  item_id: Float64Array;
  user_segment: Int32Array;
  query_category: Int32Array;
  item_category: Int32Array;
  item_brand: Int32Array;
  item_price: Float32Array;
  item_hist_ctr: Float32Array;
  recentOffsets: Int32Array;
  recentValues: number[];
  stage: string[];
  position: Int32Array;
  click: Int8Array;
  purchase: Int8Array;
  all_click: Int8Array;
  all_purchase: Int8Array;
  teacher_ctr: Float32Array;
  teacher_ctcvr: Float32Array;
  p_click: Float32Array;
  p_purchase: Float32Array;
  p_all_click: Float32Array;
  p_all_purchase: Float32Array;
  relevance_ctr: Float32Array;
  relevance_cvr: Float32Array;
}

function allocBatch(n: number): BatchArrays {
  return {
    request_id: new Float64Array(n),
    user_id: new Float64Array(n),
    query_id: new Float64Array(n),
    item_id: new Float64Array(n),
    user_segment: new Int32Array(n),
    query_category: new Int32Array(n),
    item_category: new Int32Array(n),
    item_brand: new Int32Array(n),
    item_price: new Float32Array(n),
    item_hist_ctr: new Float32Array(n),
    recentOffsets: new Int32Array(n + 1),
    recentValues: [],
    stage: new Array<string>(n),
    position: new Int32Array(n),
    click: new Int8Array(n),
    purchase: new Int8Array(n),
    all_click: new Int8Array(n),
    all_purchase: new Int8Array(n),
    teacher_ctr: new Float32Array(n),
    teacher_ctcvr: new Float32Array(n),
    p_click: new Float32Array(n),
    p_purchase: new Float32Array(n),
    p_all_click: new Float32Array(n),
    p_all_purchase: new Float32Array(n),
    relevance_ctr: new Float32Array(n),
    relevance_cvr: new Float32Array(n),
  };
}

/** Scratch space for one request, sized for the largest pool. */
class RequestScratch {
  items: Int32Array;
  ctrLogit: Float64Array;
  cvrLogit: Float64Array;
  pre: Float64Array;
  order: number[];
  kept: number[];
  stage: Int8Array; // 0 prerank, 1 ranking, 2 exposure
  pos: Int32Array;
  stamp: Int32Array;
  constructor(poolMax: number, items: number) {
    this.items = new Int32Array(poolMax);
    this.ctrLogit = new Float64Array(poolMax);
    this.cvrLogit = new Float64Array(poolMax);
    this.pre = new Float64Array(poolMax);
    this.order = [];
    this.kept = [];
    this.stage = new Int8Array(poolMax);
    this.pos = new Int32Array(poolMax);
    this.stamp = new Int32Array(items);
  }
}

/** Generates request r into rows [at, at + pool) of the batch arrays; returns the rows written. */
function generateRequest(w: World, seed: number, r: number, out: BatchArrays, at: number, sc: RequestScratch): number {
  const M = SYNTH_MODEL;
  const D = M.dim;
  const p = w.p;
  const { pool: P, exposed: E, rng } = requestSizes(p, seed, r);
  const R = Math.min(p.rankKeep, P);
  const nShow = Math.min(E, R);

  // user and query
  const x = rng.next();
  const u = Math.min(p.users - 1, Math.floor(p.users * x * x));
  const pref = w.userPref[u]!;
  const k =
    rng.next() < M.queryFromPreferredProb && pref.length > 0 ? pref[rng.int(pref.length)]! : pickCumulative(w.catCum, rng.next());
  const qs = w.queriesOfCat[k]!;
  const q = qs.length > 0 ? qs[rng.int(qs.length)]! : rng.int(p.queries);
  const qCat = w.queryCat[q]!;
  const seg = w.userSeg[u]!;
  const gamma = w.segGamma[seg]!;
  const meanGamma = (M.priceSensitivityMin + M.priceSensitivityMax) / 2;
  const rOff = w.recentOffsets[u]!;
  const rEnd = w.recentOffsets[u + 1]!;

  // retrieved pool: mostly from the query's category, the rest from anywhere; no item twice
  const stampId = r + 1;
  const stamp = sc.stamp;
  const catItems = w.itemsOfCat[qCat]!;
  const nCat = Math.min(Math.round(P * M.poolFromCategory), catItems.length);
  let n = 0;
  while (n < nCat) {
    const it = catItems[rng.int(catItems.length)]!;
    if (stamp[it] === stampId) continue;
    stamp[it] = stampId;
    sc.items[n++] = it;
  }
  while (n < P) {
    const it = rng.int(p.items);
    if (stamp[it] === stampId) continue;
    stamp[it] = stampId;
    sc.items[n++] = it;
  }
  // random row order
  for (let i = P - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = sc.items[i]!;
    sc.items[i] = sc.items[j]!;
    sc.items[j] = t;
  }

  // true relevance and the production pre-ranker's noisy score
  for (let i = 0; i < P; i++) {
    const it = sc.items[i]!;
    let dot = 0;
    let dotc = 0;
    for (let d = 0; d < D; d++) {
      dot += (w.userVec[u * D + d]! + w.queryVec[q * D + d]!) * w.itemVec[it * D + d]!;
      dotc += w.userCvrVec[u * D + d]! * w.itemCvrVec[it * D + d]!;
    }
    const iCat = w.itemCat[it]!;
    const match = iCat === qCat ? 1 : 0;
    let inRecent = 0;
    for (let j = rOff; j < rEnd; j++) {
      if (w.recentValues[j] === iCat) {
        inRecent = 1;
        break;
      }
    }
    const ctrL = M.ctrBias + dot + M.ctrCategoryMatch * match + M.ctrRecentMatch * inRecent + w.itemPop[it]!;
    const cvrL =
      M.cvrBias + dotc + w.itemQual[it]! - gamma * (w.itemLogPrice[it]! - w.catLevel[iCat]!) + M.cvrCategoryMatch * match;
    sc.ctrLogit[i] = ctrL;
    sc.cvrLogit[i] = cvrL;
    // the production pre-ranker is not personalised: it sees popularity, quality, price level and the
    // category match, not the user/query/item interactions
    const staticScore =
      w.itemPop[it]! + w.itemQual[it]! - meanGamma * (w.itemLogPrice[it]! - w.catLevel[iCat]!) +
      (M.ctrCategoryMatch + M.cvrCategoryMatch) * match;
    const personal = ctrL + cvrL - staticScore - M.ctrBias - M.cvrBias;
    sc.pre[i] = staticScore + M.prerankPersonalWeight * personal + M.prerankNoiseStd * rng.normal();
  }

  // teacher scores (every row)
  const ts = M.teacherNoiseStd;
  const shift = (ts * ts) / 2;
  for (let i = 0; i < P; i++) {
    const row = at + i;
    const tCtr = sigmoid(sc.ctrLogit[i]! - shift + ts * rng.normal());
    const tCvr = sigmoid(sc.cvrLogit[i]! - shift + ts * rng.normal());
    out.teacher_ctr[row] = q3(tCtr);
    out.teacher_ctcvr[row] = q3(tCtr * tCvr);
    out.relevance_ctr[row] = q3(sigmoid(sc.ctrLogit[i]!));
    out.relevance_cvr[row] = q3(sigmoid(sc.cvrLogit[i]!));
  }

  // funnel: pre-ranker keeps the top R by its score, ranking shows the top E of those by teacher_ctcvr
  const order = sc.order;
  order.length = P;
  for (let i = 0; i < P; i++) order[i] = i;
  const pre = sc.pre;
  order.sort((a, b) => pre[b]! - pre[a]! || a - b);
  const kept = sc.kept;
  kept.length = R;
  for (let i = 0; i < R; i++) kept[i] = order[i]!;
  const tc = out.teacher_ctcvr;
  kept.sort((a, b) => tc[at + b]! - tc[at + a]! || a - b);
  sc.stage.fill(0, 0, P);
  sc.pos.fill(0, 0, P);
  for (let j = 0; j < R; j++) {
    const i = kept[j]!;
    if (j < nShow) {
      sc.stage[i] = 2;
      sc.pos[i] = j + 1;
    } else sc.stage[i] = 1;
  }

  // labels and row fields
  const reqId = r + 1;
  for (let i = 0; i < P; i++) {
    const row = at + i;
    const it = sc.items[i]!;
    const relCtr = out.relevance_ctr[row]!;
    const relCvr = out.relevance_cvr[row]!;
    const st = sc.stage[i]!;
    const pos = sc.pos[i]!;

    let pC = 0;
    let pP = 0;
    let click = 0;
    let purchase = 0;
    if (st === 2) {
      pC = Math.fround(relCtr * positionBias(pos));
      pP = Math.fround(pC * relCvr);
      click = rng.next() < pC ? 1 : 0;
      purchase = click === 1 && rng.next() < relCvr ? 1 : 0;
    }
    // all-scenario click: this click, or a click elsewhere
    const other = M.otherClickRate * relCtr;
    let pAC = q3(1 - (1 - pC) * (1 - other));
    if (pAC < pC) pAC = pC;
    const oEff = pC < 1 ? (pAC - pC) / (1 - pC) : 0;
    const otherClick = click === 0 && rng.next() < oEff ? 1 : 0;
    const allClick = click === 1 || otherClick === 1 ? 1 : 0;
    // all-scenario purchase: this purchase, or an other-scenario click that converts
    const onlyOther = pAC - pC; // P(all_click and not click)
    let pAP = q3(pAC * relCvr);
    let c = 0;
    if (onlyOther > 0) {
      c = (pAP - pP) / onlyOther;
      if (c < 0 || c > 1) {
        c = c < 0 ? 0 : 1;
        pAP = Math.fround(pP + onlyOther * c);
      }
    } else pAP = pP;
    if (pAP < pP) pAP = pP;
    const allPurchase = purchase === 1 || (otherClick === 1 && rng.next() < c) ? 1 : 0;

    out.request_id[row] = reqId;
    out.user_id[row] = u + 1;
    out.query_id[row] = q + 1;
    out.item_id[row] = it + 1;
    out.user_segment[row] = seg;
    out.query_category[row] = qCat;
    out.item_category[row] = w.itemCat[it]!;
    out.item_brand[row] = w.itemBrand[it]!;
    out.item_price[row] = w.itemPrice[it]!;
    out.item_hist_ctr[row] = w.itemHistCtr[it]!;
    for (let j = rOff; j < rEnd; j++) out.recentValues.push(w.recentValues[j]!);
    out.recentOffsets[row + 1] = out.recentValues.length;
    out.stage[row] = st === 2 ? STAGE_EXPOSURE : st === 1 ? STAGE_RANKING : STAGE_PRERANK;
    out.position[row] = pos;
    out.click[row] = click;
    out.purchase[row] = purchase;
    out.all_click[row] = allClick;
    out.all_purchase[row] = allPurchase;
    out.p_click[row] = pC;
    out.p_purchase[row] = pP;
    out.p_all_click[row] = pAC;
    out.p_all_purchase[row] = pAP;
  }
  return P;
}

function toColumnBatch(b: BatchArrays, n: number): ColumnBatch {
  const { recentOffsets, recentValues, ...rest } = b;
  const columns: ColumnBatch['columns'] = {};
  for (const [name, v] of Object.entries(rest)) columns[name] = v as ColumnBatch['columns'][string];
  columns.user_recent_categories = { offsets: recentOffsets, values: Int32Array.from(recentValues) };
  return { length: n, columns };
}

function checkOptions(opts: SynthOptions): SynthPresetParams {
  const p = PRESETS[opts.preset];
  if (!p) throw new DataError(`unknown synthetic preset '${String(opts.preset)}' (expected one of ${Object.keys(PRESETS).join(', ')})`);
  if (!Number.isSafeInteger(opts.seed) || opts.seed < 0) throw new DataError(`seed must be a non-negative integer, got ${opts.seed}`);
  const format = opts.format ?? 'parquet';
  if (format !== 'parquet' && format !== 'arrow') throw new DataError(`format must be parquet or arrow, got '${String(format)}'`);
  return p;
}

/** Generates the preset's train/valid/eval files into outDir. */
export async function synthesize(opts: SynthOptions): Promise<SynthSummary> {
  const p = checkOptions(opts);
  const format = opts.format ?? 'parquet';
  const ext = format === 'arrow' ? 'arrow' : 'parquet';
  mkdirSync(opts.outDir, { recursive: true });
  const world = buildWorld(p, opts.seed);

  const N = p.requests;
  const nTrain = Math.round(N * SYNTH_MODEL.splits.train);
  const nValid = Math.round(N * SYNTH_MODEL.splits.valid);
  const ranges = {
    train: [0, nTrain],
    valid: [nTrain, nTrain + nValid],
    eval: [nTrain + nValid, N],
  } as const;

  // pool sizes are the first draws of each request's stream, so the total is known before generating
  const poolSize = new Int32Array(N);
  let rowsTotal = 0;
  for (let r = 0; r < N; r++) {
    poolSize[r] = requestSizes(p, opts.seed, r).pool;
    rowsTotal += poolSize[r]!;
  }

  const scratch = new RequestScratch(p.poolMax, p.items);
  let rowsWritten = 0;
  opts.onProgress?.(0, rowsTotal);
  const summary: SynthSummary = {
    files: { train: '', valid: '', eval: '' },
    rows: { train: 0, valid: 0, eval: 0 },
    requests: { train: 0, valid: 0, eval: 0 },
  };
  for (const split of ['train', 'valid', 'eval'] as const) {
    const [from, to] = ranges[split];
    const file = join(opts.outDir, `${split}.${ext}`);
    function* batches(): Generator<ColumnBatch> {
      for (let r0 = from; r0 < to; r0 += p.batchRequests) {
        const r1 = Math.min(to, r0 + p.batchRequests);
        let n = 0;
        for (let r = r0; r < r1; r++) n += poolSize[r]!;
        const arrays = allocBatch(n);
        let at = 0;
        for (let r = r0; r < r1; r++) at += generateRequest(world, opts.seed, r, arrays, at, scratch);
        yield toColumnBatch(arrays, n);
        rowsWritten += n;
        opts.onProgress?.(rowsWritten, rowsTotal);
      }
    }
    const { rows } = await writeTable(file, SYNTH_SCHEMA, batches(), { format });
    summary.files[split] = file;
    summary.rows[split] = rows;
    summary.requests[split] = to - from;
  }
  return summary;
}
