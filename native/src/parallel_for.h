// Element-wise work split over the instance's thread pool (gemm.h): one contiguous range of
// [0, n) per participant, the calling thread taking the first. Each element is computed by the
// same code whatever the split, so results do not depend on the thread count.
#ifndef RESFLOW_PARALLEL_FOR_H_
#define RESFLOW_PARALLEL_FOR_H_

#include <cstddef>

#include "gemm.h"

namespace resflow {

// Elements per participant below which a pass stays on the calling thread: waking a worker and
// moving its half of the data between cores costs more than a pass over fewer floats saves.
constexpr size_t kParallelMinPerThread = 16384;

// body(begin, end) over [0, n) on up to `threads` participants; range bounds are multiples of 16
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
    size_t n, parts;
  } split{&body, n, parts};
  pool.run(static_cast<int>(parts), [](void* ctx, int slot) noexcept {
    const Split& s = *static_cast<const Split*>(ctx);
    const size_t k = static_cast<size_t>(slot);
    const size_t begin = k == 0 ? 0 : (s.n * k / s.parts) / 16 * 16;
    const size_t end = k + 1 == s.parts ? s.n : (s.n * (k + 1) / s.parts) / 16 * 16;
    (*s.body)(begin, end);
  }, &split);
}

}  // namespace resflow

#endif  // RESFLOW_PARALLEL_FOR_H_
