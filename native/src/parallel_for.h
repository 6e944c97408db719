// Element-wise work split over the instance's thread pool (gemm.h): [0, n) in chunks that the
// participants claim in turn, so the calling thread finishes the pass alone when a worker is late
// (asleep, or descheduled on a shared machine). Each element is computed by the same code whatever
// the split, so results do not depend on the thread count.
#ifndef RESFLOW_PARALLEL_FOR_H_
#define RESFLOW_PARALLEL_FOR_H_

#include <atomic>
#include <cstddef>

#include "gemm.h"

namespace resflow {

// Elements per participant below which a pass stays on the calling thread: waking a worker and
// moving its half of the data between cores costs more than a pass over fewer floats saves.
constexpr size_t kParallelMinPerThread = 16384;
// Chunks per participant: a late worker leaves the caller at most this fraction of its share to do
// on top of its own; more chunks, more claims (and cache lines shared at chunk bounds).
constexpr size_t kParallelChunksPerThread = 4;

// body(begin, end) over [0, n) on up to `threads` participants; chunk bounds are multiples of 16
// elements (a cache line of floats, when the arrays are 64-byte aligned): threads share at most
// one line of an output at each bound.
template <class Body>
void parallel_for(ThreadPool& pool, int threads, size_t n, const Body& body) {
  size_t parts = n / kParallelMinPerThread;
  if (parts > static_cast<size_t>(threads)) parts = static_cast<size_t>(threads);
  if (parts > 1) parts = static_cast<size_t>(pool.ensure(static_cast<int>(parts)));
  if (parts <= 1) {
    body(size_t{0}, n);
    return;
  }
  struct Split {
    const Body* body;
    size_t n, chunk;
    std::atomic<size_t> next{0};
  } split;
  split.body = &body;
  split.n = n;
  const size_t chunks = parts * kParallelChunksPerThread;
  split.chunk = (n + chunks - 1) / chunks;
  split.chunk = (split.chunk + 15) / 16 * 16;
  pool.run(static_cast<int>(parts), [](void* ctx, int /*slot*/) noexcept {
    Split& s = *static_cast<Split*>(ctx);
    for (size_t begin; (begin = s.next.fetch_add(s.chunk, std::memory_order_relaxed)) < s.n;) {
      const size_t end = begin + s.chunk < s.n ? begin + s.chunk : s.n;
      (*s.body)(begin, end);
    }
  }, &split);
}

}  // namespace resflow

#endif  // RESFLOW_PARALLEL_FOR_H_
