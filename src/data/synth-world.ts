/**
 * The synthetic funnel's world: categories, brands, items, user segments, users and queries, drawn in
 * that order from one KeyedRng stream (the order of draws is part of the data set: do not reorder).
 */
import { KeyedRng, type RandomSource } from '../base/rng.js';
import { SYNTH_MODEL as M, type SynthPresetParams } from './synth-model.js';
import { STREAM, gaussVec, pickCumulative, pricePoint, roundSignificant, sigmoid } from './synth-math.js';

const D = M.dim;

export interface World {
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

interface Categories {
  catCum: Float64Array;
  catVec: Float64Array;
  catLevel: Float64Array;
}

function buildCategories(rng: RandomSource, C: number): Categories {
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
  return { catCum, catVec, catLevel };
}

interface Brands {
  brandVec: Float64Array;
  brandPremium: Float64Array;
  brandsOfCat: number[][];
}

/** Brand b sells in category b mod C. */
function buildBrands(rng: RandomSource, B: number, C: number): Brands {
  const brandVec = new Float64Array(B * D);
  const brandPremium = new Float64Array(B);
  const brandsOfCat: number[][] = Array.from({ length: C }, () => []);
  for (let b = 0; b < B; b++) {
    gaussVec(rng, brandVec, b * D, D, M.brandVecStd);
    brandPremium[b] = M.brandPremiumStd * rng.normal();
    brandsOfCat[b % C]!.push(b);
  }
  return { brandVec, brandPremium, brandsOfCat };
}

type Items = Pick<
  World,
  'itemCat' | 'itemBrand' | 'itemVec' | 'itemCvrVec' | 'itemPop' | 'itemQual' | 'itemLogPrice' | 'itemPrice' | 'itemHistCtr' | 'itemsOfCat'
>;

/** Each category first gets enough items for a pool, the rest follow category popularity. */
function buildItems(rng: RandomSource, p: SynthPresetParams, cats: Categories, brands: Brands): Items {
  const { catCum, catVec, catLevel } = cats;
  const { brandVec, brandPremium, brandsOfCat } = brands;
  const C = p.categories;
  const I = p.items;
  const minPerCat = Math.ceil(p.poolMax * M.poolFromCategory * 1.5);
  const itemCat = new Int32Array(I);
  for (let i = 0; i < I; i++) itemCat[i] = i < minPerCat * C ? i % C : pickCumulative(catCum, rng.next());
  const it: Items = {
    itemCat,
    itemBrand: new Int32Array(I),
    itemVec: new Float64Array(I * D),
    itemCvrVec: new Float64Array(I * D),
    itemPop: new Float64Array(I),
    itemQual: new Float64Array(I),
    itemLogPrice: new Float64Array(I),
    itemPrice: new Float32Array(I),
    itemHistCtr: new Float32Array(I),
    itemsOfCat: [],
  };
  const catItems: number[][] = Array.from({ length: C }, () => []);
  for (let i = 0; i < I; i++) {
    const k = itemCat[i]!;
    const ofCat = brandsOfCat[k]!;
    const b = ofCat.length > 0 ? ofCat[rng.int(ofCat.length)]! : rng.int(p.brands);
    it.itemBrand[i] = b;
    for (let d = 0; d < D; d++) it.itemVec[i * D + d] = catVec[k * D + d]! + brandVec[b * D + d]! + M.itemVecNoiseStd * rng.normal();
    gaussVec(rng, it.itemCvrVec, i * D, D, M.cvrVecStd);
    it.itemPop[i] = M.itemPopStd * rng.normal();
    it.itemQual[i] = M.qualityBrandWeight * brandPremium[b]! + M.qualityStd * rng.normal();
    const price = pricePoint(Math.exp(catLevel[k]! + brandPremium[b]! + M.priceNoiseStd * rng.normal()));
    it.itemPrice[i] = Math.fround(price);
    it.itemLogPrice[i] = Math.log(price);
    it.itemHistCtr[i] = roundSignificant(sigmoid(M.histCtrBias + it.itemPop[i]! + M.histCtrNoiseStd * rng.normal()), 2);
    catItems[k]!.push(i);
  }
  it.itemsOfCat = catItems.map((a) => Int32Array.from(a));
  return it;
}

function buildSegments(rng: RandomSource, S: number): { segVec: Float64Array; segGamma: Float64Array } {
  const segVec = new Float64Array(S * D);
  const segGamma = new Float64Array(S);
  for (let s = 0; s < S; s++) {
    gaussVec(rng, segVec, s * D, D, M.segmentVecStd);
    segGamma[s] = M.priceSensitivityMin + ((M.priceSensitivityMax - M.priceSensitivityMin) * s) / Math.max(1, S - 1);
  }
  return { segVec, segGamma };
}

type Users = Pick<World, 'userSeg' | 'userVec' | 'userCvrVec' | 'userPref' | 'recentOffsets' | 'recentValues'>;

/** Distinct categories from `draws` draws of `draw` (repeats are dropped, so fewer may come back). */
function distinctDraws(draws: number, draw: () => number): number[] {
  const out: number[] = [];
  for (let j = 0; j < draws; j++) {
    const k = draw();
    if (!out.includes(k)) out.push(k);
  }
  return out;
}

function buildUsers(rng: RandomSource, p: SynthPresetParams, catCum: Float64Array, segVec: Float64Array): Users {
  const U = p.users;
  const userSeg = new Int32Array(U);
  const userVec = new Float64Array(U * D);
  const userCvrVec = new Float64Array(U * D);
  const userPref: Int32Array[] = [];
  const recentOffsets = new Int32Array(U + 1);
  const recent: number[] = [];
  const popularCategory = () => pickCumulative(catCum, rng.next());
  for (let u = 0; u < U; u++) {
    const s = rng.int(p.segments);
    userSeg[u] = s;
    gaussVec(rng, userVec, u * D, D, M.userVecNoiseStd, segVec, s * D);
    gaussVec(rng, userCvrVec, u * D, D, M.cvrVecStd);
    const pref = distinctDraws(1 + rng.int(3), popularCategory);
    userPref.push(Int32Array.from(pref));
    const len = rng.next() < M.recentEmptyProb ? 0 : 1 + rng.int(M.recentMax);
    const mine = distinctDraws(len, () => (rng.next() < M.recentPreferredProb ? pref[rng.int(pref.length)]! : popularCategory()));
    recent.push(...mine);
    recentOffsets[u + 1] = recent.length;
  }
  return { userSeg, userVec, userCvrVec, userPref, recentOffsets, recentValues: Int32Array.from(recent) };
}

/** Every category gets one query, the rest follow category popularity. */
function buildQueries(rng: RandomSource, p: SynthPresetParams, cats: Categories): Pick<World, 'queryCat' | 'queryVec' | 'queriesOfCat'> {
  const Q = p.queries;
  const queryCat = new Int32Array(Q);
  const queryVec = new Float64Array(Q * D);
  const catQueries: number[][] = Array.from({ length: p.categories }, () => []);
  for (let q = 0; q < Q; q++) {
    const k = q < p.categories ? q : pickCumulative(cats.catCum, rng.next());
    queryCat[q] = k;
    gaussVec(rng, queryVec, q * D, D, M.queryVecNoiseStd, cats.catVec, k * D);
    catQueries[k]!.push(q);
  }
  return { queryCat, queryVec, queriesOfCat: catQueries.map((a) => Int32Array.from(a)) };
}

export function buildWorld(p: SynthPresetParams, seed: number): World {
  const rng = new KeyedRng(seed, STREAM.world, 0);
  const cats = buildCategories(rng, p.categories);
  const brands = buildBrands(rng, p.brands, p.categories);
  const items = buildItems(rng, p, cats, brands);
  const { segVec, segGamma } = buildSegments(rng, p.segments);
  const users = buildUsers(rng, p, cats.catCum, segVec);
  const queries = buildQueries(rng, p, cats);
  return { p, catCum: cats.catCum, catLevel: cats.catLevel, ...items, ...users, segGamma, ...queries };
}
