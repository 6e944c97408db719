/**
 * Dense ids for request and user keys without JavaScript `Map`, whose 16,777,216-entry limit an
 * evaluation set with more distinct requests would hit (README.md, "Scale").
 *
 * An open-addressing hash table on typed arrays, linear probing, doubled when more than half full.
 * Keys are integers (any JavaScript number) or strings; the number 5 and the string "5" are different
 * keys, as in a `Map`, -0 is the same key as 0 and NaN is one key. A key is placed by its 32-bit MurmurHash3-style
 * hash (data/hash.ts, the project's id hash with a fixed seed); whether a slot holds the key is decided
 * by comparing the stored hash and then the stored key itself (the number, or every UTF-16 code unit
 * of the string), never by the hash alone. Two keys with the same hash therefore never merge: a
 * collision only costs a longer probe. That is why 32 hash bits are enough here.
 *
 * Memory, per distinct key: 4 bytes of slot per 2 slots at most half full (8 to 16 bytes), 4 (hash)
 * + 8 (number, or the string's start) + 4 (string length) + 1 (kind) bytes of per-id columns, grown by
 * doubling (so up to twice that), and 2 bytes per UTF-16 code unit of string keys: about 25-50 bytes
 * per key, e.g. under 1 GiB for 20M integer keys. Nothing is allocated per key on the JavaScript heap.
 */
import { hashInteger, hashString } from './hash.js';

const SEED = 0x2545f491;
const NUMBER = 0;
const STRING = 1;

export class KeyTable {
  /** id + 1 per slot; 0 = empty. */
  private slots = new Int32Array(1024);
  private hashes = new Uint32Array(512);
  private nums = new Float64Array(512);
  private lens = new Uint32Array(512);
  private kinds = new Uint8Array(512);
  private chars = new Uint16Array(4096);
  private charsUsed = 0;
  private count = 0;

  /** Distinct keys so far. */
  get size(): number {
    return this.count;
  }

  /** The dense id of `key` (0, 1, 2, ... in order of first appearance), adding it when new. */
  idOf(key: number | string): number {
    const isString = typeof key === 'string';
    const h = isString ? hashString(key, SEED) : hashInteger(key === 0 ? 0 : key, SEED);
    const slots = this.slots;
    const mask = slots.length - 1;
    let s = h & mask;
    for (;;) {
      const v = slots[s]!;
      if (v === 0) break;
      const id = v - 1;
      if (this.hashes[id] === h && this.matches(id, key, isString)) return id;
      s = (s + 1) & mask;
    }
    const id = this.count;
    if (id >= 0x7ffffffe) throw new RangeError('more than 2,147,483,646 distinct keys');
    if (id === this.hashes.length) this.growColumns();
    this.hashes[id] = h;
    if (isString) {
      const n = key.length;
      if (this.charsUsed + n > this.chars.length) this.growChars(this.charsUsed + n);
      for (let i = 0; i < n; i++) this.chars[this.charsUsed + i] = key.charCodeAt(i);
      this.nums[id] = this.charsUsed;
      this.lens[id] = n;
      this.kinds[id] = STRING;
      this.charsUsed += n;
    } else {
      this.nums[id] = key === 0 ? 0 : key;
      this.kinds[id] = NUMBER;
    }
    slots[s] = id + 1;
    this.count++;
    if (this.count * 2 > slots.length) this.rehash(slots.length * 2);
    return id;
  }

  /** The dense id of `key`, or -1 when it has not been seen. */
  find(key: number | string): number {
    const isString = typeof key === 'string';
    const h = isString ? hashString(key, SEED) : hashInteger(key === 0 ? 0 : key, SEED);
    const mask = this.slots.length - 1;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const v = this.slots[s]!;
      if (v === 0) return -1;
      if (this.hashes[v - 1] === h && this.matches(v - 1, key, isString)) return v - 1;
    }
  }

  /** The key of dense id `id` (as it was given: a number or a string). */
  keyOf(id: number): number | string {
    if (!(id >= 0 && id < this.count)) throw new RangeError(`no key with id ${id} (${this.count} keys)`);
    if (this.kinds[id] === NUMBER) return this.nums[id]!;
    const start = this.nums[id]!;
    const n = this.lens[id]!;
    let out = '';
    for (let i = 0; i < n; i += 4096) out += String.fromCharCode(...this.chars.subarray(start + i, start + Math.min(n, i + 4096)));
    return out;
  }

  /** Bytes held by the table's typed arrays. */
  get bytes(): number {
    return this.slots.byteLength + this.hashes.byteLength + this.nums.byteLength + this.lens.byteLength + this.kinds.byteLength + this.chars.byteLength;
  }

  private matches(id: number, key: number | string, isString: boolean): boolean {
    if (!isString) return this.kinds[id] === NUMBER && (this.nums[id] === key || (key !== key && this.nums[id] !== this.nums[id]));
    if (this.kinds[id] !== STRING) return false;
    const s = key as string;
    const n = s.length;
    if (this.lens[id] !== n) return false;
    const start = this.nums[id]!;
    const chars = this.chars;
    for (let i = 0; i < n; i++) if (chars[start + i] !== s.charCodeAt(i)) return false;
    return true;
  }

  private growColumns(): void {
    const cap = this.hashes.length * 2;
    const grow = <T extends Uint32Array | Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(cap);
      b.set(a);
      return b;
    };
    this.hashes = grow(this.hashes, (n) => new Uint32Array(n));
    this.nums = grow(this.nums, (n) => new Float64Array(n));
    this.lens = grow(this.lens, (n) => new Uint32Array(n));
    this.kinds = grow(this.kinds, (n) => new Uint8Array(n));
  }

  private growChars(need: number): void {
    let cap = this.chars.length * 2;
    while (cap < need) cap *= 2;
    const b = new Uint16Array(cap);
    b.set(this.chars.subarray(0, this.charsUsed));
    this.chars = b;
  }

  private rehash(size: number): void {
    const slots = new Int32Array(size);
    const mask = size - 1;
    for (let id = 0; id < this.count; id++) {
      let s = this.hashes[id]! & mask;
      while (slots[s] !== 0) s = (s + 1) & mask;
      slots[s] = id + 1;
    }
    this.slots = slots;
  }
}

/** A set of dense ids (non-negative integers) as a bit array grown by doubling: 1 bit per id up to the largest. */
export class IdBits {
  private bits = new Uint8Array(1024);

  has(id: number): boolean {
    const byte = id >>> 3;
    return byte < this.bits.length && (this.bits[byte]! & (1 << (id & 7))) !== 0;
  }

  add(id: number): void {
    if (!(id >= 0 && id <= 0x7fffffff && Number.isInteger(id))) throw new RangeError(`ids must be integers in 0..2^31-1; found ${id}`);
    const byte = id >>> 3;
    if (byte >= this.bits.length) {
      let cap = this.bits.length * 2;
      while (cap <= byte) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.bits);
      this.bits = next;
    }
    this.bits[byte]! |= 1 << (id & 7);
  }
}
