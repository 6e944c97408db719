/**
 * Letting the event loop turn. A training or scoring loop that only awaits promises never leaves
 * the microtask queue, so signal handlers (Ctrl-C, SIGTERM) and timers (the heartbeat) would wait
 * until the next real I/O, possibly the end of the run (README.md, "Reliability").
 */

/** Resolves after one turn of the event loop (pending signal handlers and due timers have run). */
export function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A yieldToEvents that turns the loop at most once per `ms` (calls in between resolve at once). */
export function throttledYield(ms = 20): () => Promise<void> {
  let last = 0;
  return async () => {
    const now = Date.now();
    if (now - last < ms) return;
    await yieldToEvents();
    last = Date.now();
  };
}
