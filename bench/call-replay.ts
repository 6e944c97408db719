/**
 * Recorded native calls made replayable (bench/step-replay.ts): a step's addon calls keep views of
 * buffers that are freed, or changed, once the step is over, so a replay runs them on copies.
 */

/** One recorded call: the function and the arguments it was given. */
export type RecordedCall = [fn: (...a: unknown[]) => unknown, args: unknown[]];

/**
 * The calls with every typed array among their arguments (also inside arrays) copied. Two views of
 * the same bytes (same buffer, offset, length and type) get one copy, so a call that reads what an
 * earlier one wrote still does in the replay; numbers and other values are passed as they are.
 */
export function copiedCalls(steps: RecordedCall[][]): RecordedCall[][] {
  const copies = new Map<ArrayBufferLike, Map<string, ArrayBufferView>>();
  const copy = (v: unknown): unknown => {
    if (ArrayBuffer.isView(v)) {
      const key = `${v.byteOffset}:${v.byteLength}:${v.constructor.name}`;
      let byView = copies.get(v.buffer);
      if (byView === undefined) copies.set(v.buffer, (byView = new Map()));
      let c = byView.get(key);
      if (c === undefined) byView.set(key, (c = (v as unknown as { slice(): ArrayBufferView }).slice()));
      return c;
    }
    return Array.isArray(v) ? v.map(copy) : v;
  };
  return steps.map((calls) => calls.map(([fn, a]): RecordedCall => [fn, a.map(copy)]));
}
