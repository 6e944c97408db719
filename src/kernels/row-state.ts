/**
 * The optimizer state of one embedding table, allocated row by row on first touch (README.md,
 * "Sparse embeddings"): a row no update has touched holds no state and costs only its entry in the
 * index, 4 bytes. `slotOf[row]` is 0 for such a row, else 1 + the row's slot; slot s holds the
 * row's state at [s·dim, (s + 1)·dim) of `m` (and `v`). Slots are handed out by the kernels in the
 * order they first touch rows (tables in order, touched rows in example order), the same in the
 * JavaScript and the native kernels. The state values are those an eagerly allocated table would
 * hold: a row without a slot holds the initial state (zeros; Adagrad's initial accumulator), and a
 * row's arithmetic does not depend on where its slot is.
 *
 * The slot arrays grow by half (at least `MIN_SLOTS`, at most the table's rows) when a step could
 * touch more new rows than they have room for; `reserve()` makes that room before a kernel runs.
 * They live in resizable ArrayBuffers that reserve address space for every row up front and grow
 * in place: no copy, no moment with the old and the new arrays both held, and pages of memory only
 * where slots were written. Where a buffer cannot be made resizable (an address space too small
 * for the reservation), the arrays are copied into larger ones instead.
 */

/** Slots of the first allocation. */
export const MIN_SLOTS = 1024;
/** Capacity grows by this factor (amortised: each slot is copied about twice over a run). */
export const GROWTH = 1.5;

interface ResizableBuffer extends ArrayBuffer {
  readonly resizable: boolean;
  readonly maxByteLength: number;
  resize(byteLength: number): void;
}
const ResizableArrayBuffer = ArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => ResizableBuffer;

/** An empty buffer that can grow in place to `maxBytes`, or null where the reservation fails. */
function reserveBuffer(maxBytes: number): ResizableBuffer | null {
  try {
    const b = new ResizableArrayBuffer(0, { maxByteLength: maxBytes });
    return b.resizable ? b : null;
  } catch {
    return null;
  }
}

export class RowState {
  /** Row -> 1 + slot; 0: the row holds no state. Written through once when made (4 bytes a row), see the constructor. */
  readonly slotOf: Int32Array;
  /** Adam's first moment or Adagrad's accumulator, by slot; capacity × dim. */
  m: Float32Array;
  /** Adam's second moment, by slot (capacity × dim); null for Adagrad. */
  v: Float32Array | null;
  /** Slots in use (rows holding state). */
  used = 0;
  private readonly buffers: [ResizableBuffer | null, ResizableBuffer | null];

  constructor(
    readonly rows: number,
    readonly dim: number,
    /** 2 for Adam (m and v), 1 for Adagrad (m, the accumulator). */
    readonly moments: 1 | 2,
    /** The value of untouched state: 0, or Adagrad's initial accumulator. */
    readonly initial = 0,
    /** false: grow by copying, as where address space cannot be reserved (tests take this path). */
    inPlace = true,
  ) {
    this.slotOf = new Int32Array(rows);
    // Write the zeros through now: the kernels read a row's entry before they write it, and a page
    // read first maps the shared zero page, so its first write costs a second fault and a TLB
    // shootdown across threads. Measured (1M rows x 20 tables): the first steps 43 -> 160-250 per
    // second, the build no slower.
    this.slotOf.fill(0);
    const max = rows * dim * 4;
    this.buffers = inPlace ? [reserveBuffer(max), moments === 2 ? reserveBuffer(max) : null] : [null, null];
    this.m = new Float32Array(0);
    this.v = moments === 2 ? new Float32Array(0) : null;
  }

  /** Slots the arrays have room for. */
  get capacity(): number {
    return this.m.length / this.dim;
  }

  /** Whether the arrays grow in place (resizable buffers) rather than by copying. */
  get growsInPlace(): boolean {
    return this.buffers[0] !== null;
  }

  /** Bytes allocated now: the index plus the slot arrays at their capacity. */
  get bytes(): number {
    return this.slotOf.byteLength + this.m.byteLength + (this.v?.byteLength ?? 0);
  }

  /** Bytes of state one row takes once touched. */
  get bytesPerRow(): number {
    return this.dim * 4 * this.moments;
  }

  /** Makes room for `newRows` more rows holding state (capped at the rows still without); copies the slots in use. */
  reserve(newRows: number): void {
    const need = this.used + Math.min(newRows, this.rows - this.used);
    const capacity = this.capacity;
    if (need <= capacity) return;
    this.resize(Math.min(this.rows, Math.max(need, Math.ceil(capacity * GROWTH), MIN_SLOTS)));
  }

  private resize(slots: number): void {
    const n = slots * this.dim;
    const grow = (old: Float32Array, buffer: ResizableBuffer | null): Float32Array => {
      if (buffer) {
        // in place: the slots in use stay where they are; the new bytes read as zeros
        buffer.resize(n * 4);
        return new Float32Array(buffer, 0, n);
      }
      const next = new Float32Array(n);
      next.set(old.subarray(0, this.used * this.dim));
      return next;
    };
    this.m = grow(this.m, this.buffers[0]);
    // Adagrad reads a new slot's accumulator before writing it: written through here even when 0
    // (see the constructor on pages read first). Adam's kernels take a new slot's moments as zeros
    // without reading them, so its pages are first touched by a write.
    if (this.moments === 1) this.m.fill(this.initial, this.used * this.dim);
    if (this.v) this.v = grow(this.v, this.buffers[1]);
  }

  /** The rows holding state, in slot order (a scan of the index). */
  rowsInSlotOrder(): Int32Array {
    const rows = new Int32Array(this.used);
    const { slotOf } = this;
    for (let r = 0; r < slotOf.length; r++) if (slotOf[r] !== 0) rows[slotOf[r]! - 1] = r;
    return rows;
  }

  /** The state of `row` (dim values of m, then dim of v for Adam), the initial state for a row without a slot. */
  rowState(row: number): Float32Array {
    const out = new Float32Array(this.dim * this.moments).fill(this.initial, 0, this.dim);
    const s = this.slotOf[row]!;
    if (s === 0) return out;
    const at = (s - 1) * this.dim;
    out.set(this.m.subarray(at, at + this.dim));
    if (this.v) out.set(this.v.subarray(at, at + this.dim), this.dim);
    return out;
  }

  /**
   * Replaces the state with `rows` (in slot order) and their m (and v) values, `rows.length × dim`
   * each (a checkpoint's). Returns a problem (a row out of range or listed twice, sizes that do
   * not match) instead of loading, or null.
   */
  load(rows: Int32Array, m: Float32Array, v: Float32Array | null): string | null {
    const n = rows.length;
    if (m.length !== n * this.dim || (this.v !== null) !== (v !== null) || (v !== null && v.length !== n * this.dim)) return `state of ${n} rows needs ${n * this.dim} values per moment`;
    const seen = new Uint8Array(this.rows);
    for (let s = 0; s < n; s++) {
      const r = rows[s]!;
      if (!(r >= 0 && r < this.rows)) return `row ${r} is outside [0, ${this.rows})`;
      if (seen[r]) return `row ${r} is listed twice`;
      seen[r] = 1;
    }
    this.slotOf.fill(0);
    // the slots are rewritten from 0: the values of the old ones are overwritten or reset below
    if (this.initial !== 0) this.m.fill(this.initial);
    else this.m.fill(0);
    this.v?.fill(0);
    this.used = 0;
    this.reserve(n);
    for (let s = 0; s < n; s++) this.slotOf[rows[s]!] = s + 1;
    this.m.set(m);
    if (v) this.v!.set(v);
    this.used = n;
    return null;
  }

  /**
   * Takes eagerly laid out state (rows × dim per moment, as checkpoints before lazy state held it):
   * a row gets a slot when its state differs from the initial state, which gives the same updates.
   */
  loadDense(m: Float32Array, v: Float32Array | null): string | null {
    const { dim } = this;
    if (m.length !== this.rows * dim || (v !== null && v.length !== m.length)) return `dense state needs ${this.rows * dim} values per moment`;
    const init = Math.fround(this.initial);
    const rows: number[] = [];
    for (let r = 0; r < this.rows; r++) {
      for (let d = r * dim; d < (r + 1) * dim; d++) {
        if (!Object.is(m[d], init) || (v !== null && !Object.is(v[d], 0))) {
          rows.push(r);
          break;
        }
      }
    }
    const pick = (a: Float32Array) => {
      const out = new Float32Array(rows.length * dim);
      rows.forEach((r, s) => out.set(a.subarray(r * dim, (r + 1) * dim), s * dim));
      return out;
    };
    return this.load(Int32Array.from(rows), pick(m), v && pick(v));
  }
}
