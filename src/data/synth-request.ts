/**
 * One request of the synthetic funnel: the user and query, the retrieved pool, the true relevances and
 * the production pre-ranker's score, the teacher's scores, the funnel stages and the labels. Every draw
 * comes from the request's own KeyedRng stream, in the order below (part of the data set: do not
 * reorder).
 */
import { KeyedRng, type RandomSource } from '../base/rng.js';
import { orderByTeacher, positionBias } from './funnel.js';
import type { BatchArrays } from './synth-batch.js';
import { STREAM, pickCumulative, q3, sigmoid } from './synth-math.js';
import { SYNTH_MODEL as M, type SynthPresetParams } from './synth-model.js';
import type { World } from './synth-world.js';

const D = M.dim;
const STAGE_NAMES = ['prerank_candidate', 'ranking_candidate', 'exposure'] as const;
const EXPOSURE = 2;
const RANKING = 1;

/** Pool size and exposure count of request r: the first two draws of its stream. */
export function requestSizes(p: SynthPresetParams, seed: number, r: number): { pool: number; exposed: number; rng: KeyedRng } {
  const rng = new KeyedRng(seed, STREAM.request, r);
  const pool = p.poolMin + rng.int(p.poolMax - p.poolMin + 1);
  const exposed = p.exposeMin + rng.int(p.exposeMax - p.exposeMin + 1);
  return { pool, exposed, rng };
}

/** Scratch space for one request, sized for the largest pool. */
export class RequestScratch {
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

/** Who asks what: the user, the query and what the relevance model needs of them. */
interface Asker {
  u: number;
  q: number;
  qCat: number;
  seg: number;
  gamma: number;
  recentFrom: number;
  recentTo: number;
}

/** A skewed user (index floor(U x²)), a query of a preferred category (half the time) or a popular one. */
function drawAsker(w: World, rng: RandomSource): Asker {
  const p = w.p;
  const x = rng.next();
  const u = Math.min(p.users - 1, Math.floor(p.users * x * x));
  const pref = w.userPref[u]!;
  const k =
    rng.next() < M.queryFromPreferredProb && pref.length > 0 ? pref[rng.int(pref.length)]! : pickCumulative(w.catCum, rng.next());
  const qs = w.queriesOfCat[k]!;
  const q = qs.length > 0 ? qs[rng.int(qs.length)]! : rng.int(p.queries);
  const seg = w.userSeg[u]!;
  return { u, q, qCat: w.queryCat[q]!, seg, gamma: w.segGamma[seg]!, recentFrom: w.recentOffsets[u]!, recentTo: w.recentOffsets[u + 1]! };
}

/** The retrieved pool: mostly from the query's category, the rest from anywhere, no item twice, in random order. */
function drawPool(w: World, rng: RandomSource, sc: RequestScratch, P: number, qCat: number, stampId: number): void {
  const stamp = sc.stamp;
  const catItems = w.itemsOfCat[qCat]!;
  const nCat = Math.min(Math.round(P * M.poolFromCategory), catItems.length);
  let n = 0;
  const take = (it: number) => {
    if (stamp[it] === stampId) return;
    stamp[it] = stampId;
    sc.items[n++] = it;
  };
  while (n < nCat) take(catItems[rng.int(catItems.length)]!);
  while (n < P) take(rng.int(w.p.items));
  for (let i = P - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = sc.items[i]!;
    sc.items[i] = sc.items[j]!;
    sc.items[j] = t;
  }
}

/** True relevance logits of every pooled item, and the production pre-ranker's noisy score. */
function scoreCandidates(w: World, a: Asker, rng: RandomSource, sc: RequestScratch, P: number): void {
  const meanGamma = (M.priceSensitivityMin + M.priceSensitivityMax) / 2;
  for (let i = 0; i < P; i++) {
    const it = sc.items[i]!;
    let dot = 0;
    let dotc = 0;
    for (let d = 0; d < D; d++) {
      dot += (w.userVec[a.u * D + d]! + w.queryVec[a.q * D + d]!) * w.itemVec[it * D + d]!;
      dotc += w.userCvrVec[a.u * D + d]! * w.itemCvrVec[it * D + d]!;
    }
    const iCat = w.itemCat[it]!;
    const match = iCat === a.qCat ? 1 : 0;
    let inRecent = 0;
    for (let j = a.recentFrom; j < a.recentTo; j++) {
      if (w.recentValues[j] === iCat) {
        inRecent = 1;
        break;
      }
    }
    const relativePrice = w.itemLogPrice[it]! - w.catLevel[iCat]!;
    const ctrL = M.ctrBias + dot + M.ctrCategoryMatch * match + M.ctrRecentMatch * inRecent + w.itemPop[it]!;
    const cvrL = M.cvrBias + dotc + w.itemQual[it]! - a.gamma * relativePrice + M.cvrCategoryMatch * match;
    sc.ctrLogit[i] = ctrL;
    sc.cvrLogit[i] = cvrL;
    // the production pre-ranker sees popularity, quality, price level and the category match fully,
    // the user/query/item interactions only at a fraction of their weight
    const staticScore =
      w.itemPop[it]! + w.itemQual[it]! - meanGamma * relativePrice + (M.ctrCategoryMatch + M.cvrCategoryMatch) * match;
    const personal = ctrL + cvrL - staticScore - M.ctrBias - M.cvrBias;
    sc.pre[i] = staticScore + M.prerankPersonalWeight * personal + M.prerankNoiseStd * rng.normal();
  }
}

/** Teacher scores and the published (rounded) relevances of every row. */
function teacherScores(rng: RandomSource, sc: RequestScratch, out: BatchArrays, at: number, P: number): void {
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
}

/** The pre-ranker keeps the top R by its score; the ranking stage shows the top nShow of those. */
function funnelStages(sc: RequestScratch, teacherCtcvr: Float32Array, at: number, P: number, R: number, nShow: number): void {
  const order = sc.order;
  order.length = P;
  for (let i = 0; i < P; i++) order[i] = i;
  const pre = sc.pre;
  order.sort((a, b) => pre[b]! - pre[a]! || a - b);
  const kept = sc.kept;
  kept.length = R;
  for (let i = 0; i < R; i++) kept[i] = order[i]!;
  orderByTeacher(kept, teacherCtcvr, at);
  sc.stage.fill(0, 0, P);
  sc.pos.fill(0, 0, P);
  for (let j = 0; j < R; j++) {
    const i = kept[j]!;
    if (j < nShow) {
      sc.stage[i] = EXPOSURE;
      sc.pos[i] = j + 1;
    } else sc.stage[i] = RANKING;
  }
}

interface RowLabels {
  pClick: number;
  pPurchase: number;
  pAllClick: number;
  pAllPurchase: number;
  click: number;
  purchase: number;
  allClick: number;
  allPurchase: number;
}

/** In-scenario labels (exposures only) and all-scenario labels, with the probabilities they are drawn with. */
function drawLabels(rng: RandomSource, relCtr: number, relCvr: number, exposedAt: number): RowLabels {
  let pC = 0;
  let pP = 0;
  let click = 0;
  let purchase = 0;
  if (exposedAt > 0) {
    pC = Math.fround(relCtr * positionBias(exposedAt));
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
  return { pClick: pC, pPurchase: pP, pAllClick: pAC, pAllPurchase: pAP, click, purchase, allClick, allPurchase };
}

/** Labels and the row's id and feature columns. */
function writeRows(w: World, r: number, a: Asker, rng: RandomSource, sc: RequestScratch, out: BatchArrays, at: number, P: number): void {
  for (let i = 0; i < P; i++) {
    const row = at + i;
    const it = sc.items[i]!;
    const st = sc.stage[i]!;
    const pos = sc.pos[i]!;
    const l = drawLabels(rng, out.relevance_ctr[row]!, out.relevance_cvr[row]!, st === EXPOSURE ? pos : 0);
    out.request_id[row] = r + 1;
    out.user_id[row] = a.u + 1;
    out.query_id[row] = a.q + 1;
    out.item_id[row] = it + 1;
    out.user_segment[row] = a.seg;
    out.query_category[row] = a.qCat;
    out.item_category[row] = w.itemCat[it]!;
    out.item_brand[row] = w.itemBrand[it]!;
    out.item_price[row] = w.itemPrice[it]!;
    out.item_hist_ctr[row] = w.itemHistCtr[it]!;
    for (let j = a.recentFrom; j < a.recentTo; j++) out.recentValues.push(w.recentValues[j]!);
    out.recentOffsets[row + 1] = out.recentValues.length;
    out.stage[row] = STAGE_NAMES[st]!;
    out.position[row] = pos;
    out.click[row] = l.click;
    out.purchase[row] = l.purchase;
    out.all_click[row] = l.allClick;
    out.all_purchase[row] = l.allPurchase;
    out.p_click[row] = l.pClick;
    out.p_purchase[row] = l.pPurchase;
    out.p_all_click[row] = l.pAllClick;
    out.p_all_purchase[row] = l.pAllPurchase;
  }
}

/** Generates request r into rows [at, at + pool) of the batch arrays; returns the rows written. */
export function generateRequest(w: World, seed: number, r: number, out: BatchArrays, at: number, sc: RequestScratch): number {
  const { pool: P, exposed: E, rng } = requestSizes(w.p, seed, r);
  const R = Math.min(w.p.rankKeep, P);
  const asker = drawAsker(w, rng);
  drawPool(w, rng, sc, P, asker.qCat, r + 1);
  scoreCandidates(w, asker, rng, sc, P);
  teacherScores(rng, sc, out, at, P);
  funnelStages(sc, out.teacher_ctcvr, at, P, R, Math.min(E, R));
  writeRows(w, r, asker, rng, sc, out, at, P);
  return P;
}
