/**
 * Reading one item ahead of the consumer. While the consumer awaits something that leaves this
 * thread idle (on `webgpu`, the GPU computing a step and its read-back; README.md, "Backends"),
 * the next item's file reading and decoding proceed in the gaps. Items and their order are those of
 * the source, so nothing a run computes changes; on the CPU backends a step never waits, and the
 * read simply happens at the next await instead of on demand.
 */
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  // An error is raised where the item is awaited, as without read-ahead; the empty handler only keeps
  // a read that nobody awaits any more (the consumer stopped early) from being an unhandled rejection.
  const ask = () => {
    const p = it.next();
    p.catch(() => undefined);
    return p;
  };
  let pending = ask();
  let done = false;
  try {
    for (;;) {
      const r = await pending;
      if (r.done) {
        done = true;
        return;
      }
      pending = ask();
      yield r.value;
    }
  } finally {
    // Stopped early (break, error, early stopping): the source is closed after the read in flight ends.
    if (!done) await it.return?.();
  }
}
