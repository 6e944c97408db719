/**
 * Memory for the embedding tables' weights (README.md, "Sparse embeddings"). A lookup reads one
 * row per table per example from anywhere in tables of megabytes to gigabytes: with 4 KiB pages
 * nearly every row costs an address translation that misses the TLB (dearer still in a virtual
 * machine, where the walk is two-level). So large tables are laid out together in shared
 * ArrayBuffers ("arenas") that start on a 2 MiB boundary and are advised for transparent huge pages
 * (the addon's `adviseHugePages`, before any page is touched), each table's first row on a 64-byte
 * cache line. Values, and so every result, are the same however the memory is laid out.
 */
import { loadAddon } from './addon.js';
import type { NativeAddon } from './native-api.js';

export const HUGE_PAGE_BYTES = 2 * 1024 * 1024;
/** Below this many bytes of weights in all, each table keeps an array of its own: no page would be saved. */
export const ARENA_MIN_BYTES = 2 * HUGE_PAGE_BYTES;
/** An arena's largest size; a table larger than this gets an arena of its own. */
export const ARENA_MAX_BYTES = 1024 * 1024 * 1024;
const ALIGN = 64;

export interface TableArrays {
  /** One zero-filled array per requested length, in order. */
  arrays: Float32Array[];
  /** Bytes of them the system was asked to back with huge pages (0: none). */
  hugePageBytes: number;
}

export interface TableArrayOptions {
  /** The addon (default: loadAddon()); null lays the arenas out without advice. */
  native?: NativeAddon | null;
  /** ARENA_MIN_BYTES unless given (tests lower it). */
  minBytes?: number;
  /** ARENA_MAX_BYTES unless given. */
  maxBytes?: number;
}

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** Zero-filled Float32Arrays of the given lengths, laid out for random row reads (see above). */
export function allocateTableArrays(lengths: readonly number[], options: TableArrayOptions = {}): TableArrays {
  // Each table's bytes in an arena: its floats, rounded up to whole cache lines.
  const slots = lengths.map((n) => roundUp(n * 4, ALIGN));
  if (slots.reduce((s, b) => s + b, 0) < (options.minBytes ?? ARENA_MIN_BYTES)) return { arrays: lengths.map((n) => new Float32Array(n)), hugePageBytes: 0 };
  const native = options.native === undefined ? loadAddon() : options.native;
  const maxBytes = options.maxBytes ?? ARENA_MAX_BYTES;
  const arrays: Float32Array[] = [];
  let hugePageBytes = 0;
  // Consecutive tables share an arena up to maxBytes; each arena is allocated, advised, then carved.
  for (let first = 0; first < lengths.length; ) {
    let end = first + 1;
    let bytes = slots[first]!;
    while (end < lengths.length && bytes + slots[end]! <= maxBytes) bytes += slots[end++]!;
    const arena = placeArena(bytes, native);
    hugePageBytes += arena.advised;
    for (let t = first, at = arena.start; t < end; at += slots[t++]!) arrays.push(new Float32Array(arena.buffer, at, lengths[t]!));
    first = end;
  }
  return { arrays, hugePageBytes };
}

/**
 * An ArrayBuffer with `bytes` usable from `start`. With the addon, it is a 2 MiB page longer than
 * the tables and rounded up to whole pages, so that [start, start + bytes) lies on whole 2 MiB pages
 * (the leading slack is never touched, so costs no memory), advised before anything is written.
 */
function placeArena(bytes: number, native: NativeAddon | null): { buffer: ArrayBuffer; start: number; advised: number } {
  if (native?.adviseHugePages === undefined || bytes < HUGE_PAGE_BYTES) return { buffer: new ArrayBuffer(bytes), start: 0, advised: 0 };
  const buffer = new ArrayBuffer(roundUp(bytes, HUGE_PAGE_BYTES) + HUGE_PAGE_BYTES);
  const { offset, bytes: advised } = native.adviseHugePages(buffer);
  return { buffer, start: offset, advised: Math.min(advised, roundUp(bytes, HUGE_PAGE_BYTES)) };
}
