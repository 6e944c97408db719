/**
 * Seeded, stable hashing of ids into embedding buckets. The same id gets the same bucket whatever
 * the file format or reader, so a model trained on Parquet scores Arrow data correctly.
 */

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3-style hash of an integer id (exact for |id| < 2^53) as two 32-bit words. */
export function hashInteger(id: number, seed: number): number {
  const lo = id % 4294967296 >>> 0;
  const hi = Math.floor(id / 4294967296) | 0;
  return fmix32(mix(mix(seed | 0, lo), hi) ^ 8);
}

/** MurmurHash3-style hash of a string over its UTF-16 code units. */
export function hashString(s: string, seed: number): number {
  let h = seed | 0;
  for (let i = 0; i < s.length; i++) h = mix(h, s.charCodeAt(i));
  return fmix32(h ^ s.length ^ 0x5bd1e995);
}

/** A per-feature seed from its name, so two features never share a bucket layout. */
export function featureSeed(name: string): number {
  return hashString(name, 0x9747b28c);
}

/**
 * Reads an id that arrives as a number or a string the same way, so an integer column and its
 * string spelling ("123") hash alike.
 */
export function hashId(id: number | string, seed: number): number {
  if (typeof id === 'number') return hashInteger(id, seed);
  const n = Number(id);
  return id !== '' && Number.isSafeInteger(n) && String(n) === id ? hashInteger(n, seed) : hashString(id, seed);
}
