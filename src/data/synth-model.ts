/**
 * Synthetic search funnel with known ground truth (docs/domain.md, "The synthetic funnel").
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
 * Determinism: every random draw comes from KeyedRng streams (base/rng.ts) keyed by (seed, stream, index); each
 * request has its own stream, so the output does not depend on batching. Same seed, same bytes.
 * Memory: the world (users, queries, items) is small; requests are generated and written in batches.
 */
import type { ColumnDef } from './table-schema.js';

export type SynthPreset = 'tiny' | 'small' | 'medium';

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

