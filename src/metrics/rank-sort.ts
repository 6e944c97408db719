/**
 * The sorting core that every metric in src/metrics shares: rows ranked by score, inside their groups.
 *
 * Sorting. Rows are sorted with a stable LSD radix sort over the IEEE-754 bits of the score
 * (11-bit digits: 3 passes for Float32 scores, up to 6 for Float64; a pass whose digit is the same
 * for every row is skipped), then, when groups are given, with one stable counting-sort pass over
 * the dense group ids. Nothing is boxed and nothing goes through Array.prototype.sort.
 *
 * Order inside a request (the tie-break every @K metric uses): higher score first; among equal
 * scores, lower row index first. `-0` and `+0` are equal. NaN scores rank below -Infinity (last in
 * a request); AUC and gAUC return NaN when their sample space holds a NaN score.
 */

/** Scores or probabilities, one per row. */
export type ScoreArray = Float32Array | Float64Array;
/** 0/1 labels, one per row; a row is positive when its label is > 0. */
export type LabelArray = Uint8Array | Int8Array | Float32Array;
/** Non-negative per-row weights. */
export type WeightArray = Float32Array | Float64Array;

/** Rows ranked inside their groups (requests or users). */
export interface RankedGroups {
  /**
   * Row indices (only rows in the mask, when one was given), group by group in increasing group
   * id; inside a group in the requested score order (for `rankWithinGroups`: best first, ties by
   * lower row index).
   */
  order: Int32Array;
  /** Length G + 1: group g occupies `order[groupStart[g] .. groupStart[g + 1])`; empty groups allowed. */
  groupStart: Int32Array;
  /** Number of rows of the input arrays (not only those in the mask). */
  numRows: number;
}

// ---------------------------------------------------------------------------------------------
// Sorting core

const DIGIT_BITS = 11;
const BUCKETS = 1 << DIGIT_BITS;
const DIGIT_MASK = BUCKETS - 1;
/** Guard against sparse ids (e.g. raw user ids) that would allocate a huge count array. */
const MAX_GROUPS = 1 << 28;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/**
 * Stable LSD radix sort of `idx[0..m)` by the 32-bit unsigned `keys[0..m)`. `bits` is the number
 * of low key bits that can differ (32 for a full key). Returns the array holding the sorted
 * indices (either `idx` or `idxTmp`); when `wantKeys` the matching buffer of keys is returned too.
 */
function radixSort32(
  keys: Uint32Array,
  idx: Int32Array,
  keyTmp: Uint32Array,
  idxTmp: Int32Array,
  m: number,
  wantKeys: boolean,
): { idx: Int32Array; keys: Uint32Array } {
  const passes = Math.ceil(32 / DIGIT_BITS);
  // All histograms in one read pass.
  const hist = new Int32Array(BUCKETS * passes);
  for (let i = 0; i < m; i++) {
    const k = keys[i];
    hist[k & DIGIT_MASK]++;
    hist[BUCKETS + ((k >>> DIGIT_BITS) & DIGIT_MASK)]++;
    hist[2 * BUCKETS + (k >>> (2 * DIGIT_BITS))]++;
  }
  const live: number[] = [];
  for (let p = 0; p < passes; p++) {
    const base = p * BUCKETS;
    let trivial = false;
    for (let b = 0; b < BUCKETS; b++) {
      const c = hist[base + b];
      if (c === m) trivial = true;
      if (c !== 0) break;
    }
    if (!trivial) live.push(p);
  }
  let srcK = keys;
  let srcI = idx;
  let dstK = keyTmp;
  let dstI = idxTmp;
  for (let li = 0; li < live.length; li++) {
    const p = live[li];
    const shift = p * DIGIT_BITS;
    const off = new Int32Array(BUCKETS);
    let sum = 0;
    for (let b = 0; b < BUCKETS; b++) {
      off[b] = sum;
      sum += hist[p * BUCKETS + b];
    }
    const last = li === live.length - 1 && !wantKeys;
    if (last) {
      for (let i = 0; i < m; i++) dstI[off[(srcK[i] >>> shift) & DIGIT_MASK]++] = srcI[i];
    } else {
      for (let i = 0; i < m; i++) {
        const k = srcK[i];
        const pos = off[(k >>> shift) & DIGIT_MASK]++;
        dstK[pos] = k;
        dstI[pos] = srcI[i];
      }
    }
    const tk = srcK;
    srcK = dstK;
    dstK = tk;
    const ti = srcI;
    srcI = dstI;
    dstI = ti;
  }
  return { idx: srcI, keys: srcK };
}

/**
 * Row indices of the rows in `mask` (all rows when absent), sorted by score, ascending by default
 * or descending, ties (equal scores, `-0 == +0`) by lower row index first. NaN scores sort below
 * -Infinity: first when ascending, last when descending. The result's length is the number of
 * rows in the mask.
 */
export function sortRowsByScore(scores: ScoreArray, opts: { mask?: Uint8Array; descending?: boolean } = {}): Int32Array {
  const n = scores.length;
  const mask = opts.mask;
  if (mask !== undefined && mask.length !== n) {
    throw new RangeError(`mask has ${mask.length} rows, scores have ${n}`);
  }
  const flip = opts.descending === true ? 0xffffffff : 0;
  let m = 0;
  if (mask === undefined) m = n;
  else for (let i = 0; i < n; i++) if (mask[i] !== 0) m++;
  const idx = new Int32Array(m);
  const idxTmp = new Int32Array(m);
  if (scores instanceof Float32Array) {
    const bits = new Uint32Array(scores.buffer, scores.byteOffset, n);
    const keys = new Uint32Array(m);
    let j = 0;
    for (let i = 0; i < n; i++) {
      if (mask !== undefined && mask[i] === 0) continue;
      const s = scores[i];
      let k: number;
      if (s !== s) k = 0;
      else if (s === 0) k = 0x80000000;
      else {
        const u = bits[i];
        k = u & 0x80000000 ? ~u : u | 0x80000000;
      }
      keys[j] = (k ^ flip) >>> 0;
      idx[j] = i;
      j++;
    }
    const out = radixSort32(keys, idx, new Uint32Array(m), idxTmp, m, false);
    return out.idx;
  }
  // Float64: sort by the low 32 bits, gather the high 32 bits in that order, sort by them.
  const bits = new Uint32Array(scores.buffer, scores.byteOffset, 2 * n);
  const LO = LITTLE_ENDIAN ? 0 : 1;
  const HI = 1 - LO;
  const keys = new Uint32Array(m);
  const keyTmp = new Uint32Array(m);
  let j = 0;
  for (let i = 0; i < n; i++) {
    if (mask !== undefined && mask[i] === 0) continue;
    const s = scores[i];
    let lo: number;
    if (s !== s) lo = 0;
    else if (s === 0) lo = 0;
    else if (bits[2 * i + HI] & 0x80000000) lo = ~bits[2 * i + LO];
    else lo = bits[2 * i + LO];
    keys[j] = (lo ^ flip) >>> 0;
    idx[j] = i;
    j++;
  }
  const first = radixSort32(keys, idx, keyTmp, idxTmp, m, false);
  const order = first.idx;
  const other = order === idx ? idxTmp : idx;
  // Reuse both key buffers for the high halves.
  const hiKeys = keys;
  for (let q = 0; q < m; q++) {
    const i = order[q];
    const s = scores[i];
    let hi: number;
    if (s !== s) hi = 0;
    else if (s === 0) hi = 0x80000000;
    else {
      const u = bits[2 * i + HI];
      hi = u & 0x80000000 ? ~u : u | 0x80000000;
    }
    hiKeys[q] = (hi ^ flip) >>> 0;
  }
  return radixSort32(hiKeys, order, keyTmp, other, m, false).idx;
}

/** Number of groups (max id + 1) in `groups`, checking ids are non-negative and not absurdly sparse. */
export function countGroups(groups: Int32Array): number {
  let max = -1;
  for (let i = 0; i < groups.length; i++) {
    const g = groups[i];
    if (g > max) max = g;
    else if (g < 0) throw new RangeError(`group ids must be dense integers 0..G-1; row ${i} has ${g}`);
  }
  if (max >= MAX_GROUPS) {
    throw new RangeError(`group ids must be dense integers 0..G-1; found id ${max} (map raw ids to dense ones first)`);
  }
  return max + 1;
}

/**
 * Stable partition of `order` (row indices) by `groups[row]`: keeps the order inside each group.
 * One counting-sort pass; `numGroups` defaults to max id + 1.
 */
export function partitionByGroup(order: Int32Array, groups: Int32Array, numGroups?: number): RankedGroups {
  const n = groups.length;
  const G = numGroups ?? countGroups(groups);
  const m = order.length;
  const gOf = new Int32Array(m);
  const start = new Int32Array(G + 1);
  for (let q = 0; q < m; q++) {
    const g = groups[order[q]];
    if (!(g >= 0 && g < G)) throw new RangeError(`row ${order[q]} has group id ${g}, outside 0..${G - 1}`);
    gOf[q] = g;
    start[g + 1]++;
  }
  for (let g = 0; g < G; g++) start[g + 1] += start[g];
  const next = start.slice(0, G);
  const out = new Int32Array(m);
  for (let q = 0; q < m; q++) out[next[gOf[q]]++] = order[q];
  return { order: out, groupStart: start, numRows: n };
}

/**
 * Ranks the rows of every group (request) by score: higher score first, then lower row index first
 * (NaN last). Rows outside `mask` are left out of the ranking (they are not in any pool).
 * The one ranking every @K metric uses: sort once, then compute all Ks in a single pass.
 */
export function rankWithinGroups(scores: ScoreArray, groups: Int32Array, mask?: Uint8Array, numGroups?: number): RankedGroups {
  if (groups.length !== scores.length) {
    throw new RangeError(`groups have ${groups.length} rows, scores have ${scores.length}`);
  }
  const order = sortRowsByScore(scores, { mask, descending: true });
  return partitionByGroup(order, groups, numGroups);
}

/**
 * 0-based position of every row inside its group in `ranked` (0 = best); -1 for rows outside the
 * mask. A row is in the top K of its request exactly when `rankOf[row] < K`.
 */
export function rankOf(ranked: RankedGroups): Int32Array {
  const r = new Int32Array(ranked.numRows).fill(-1);
  const { order, groupStart } = ranked;
  for (let g = 0; g + 1 < groupStart.length; g++) {
    const s = groupStart[g];
    const e = groupStart[g + 1];
    for (let j = s; j < e; j++) r[order[j]] = j - s;
  }
  return r;
}
