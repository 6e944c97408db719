// Stress test of the thread pool's call protocol (gemm.h), without Node. Build it with
// ThreadSanitizer to check for races:
//
//   g++ -O1 -g -fsanitize=thread -std=c++17 -pthread -I native/src
//       native/src/gemm.cc native/tools/pool-stress.cc -o /tmp/pool-stress && /tmp/pool-stress
//
// 20,000 calls of 1-4 participants, each handing out 1-64 tasks by an atomic counter, with random
// pauses between calls so that workers are sometimes asleep when a call starts. Every task must run
// exactly once, the caller must take part once, no worker slot at or above the call's count may
// run, and (checked by ThreadSanitizer) no worker may touch a call's context after run() returned:
// each context lives on the stack of one loop iteration. Exits 1 on a failed check.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>
#include <vector>

#include "gemm.h"

namespace {
struct Call {
  std::atomic<size_t> next{0};
  size_t tasks = 0;
  std::vector<int>* runs = nullptr;
  std::atomic<int> slots[8];
};

void job(void* ctx, int slot) noexcept {
  Call& c = *static_cast<Call*>(ctx);
  c.slots[slot].fetch_add(1);
  for (size_t t; (t = c.next.fetch_add(1)) < c.tasks;) {
    (*c.runs)[t] += 1;
    if (t % 7 == 0) std::this_thread::yield();
  }
}
}  // namespace

int main() {
  resflow::ThreadPool pool;
  const int have = pool.ensure(4);
  std::mt19937 rng(1);
  long bad = 0, absent = 0;
  for (int i = 0; i < 20000; ++i) {
    std::vector<int> runs(1 + rng() % 64, 0);
    const int n = 1 + static_cast<int>(rng() % static_cast<unsigned>(have));
    {
      Call c;
      c.tasks = runs.size();
      c.runs = &runs;
      for (auto& s : c.slots) s = 0;
      pool.run(n, job, &c);
      if (c.slots[0].load() != 1) ++bad;
      for (int s = 1; s < 8; ++s) {
        const int v = c.slots[s].load();
        if (v > 1 || (s >= n && v != 0)) ++bad;
        if (s < n && v == 0) ++absent;
      }
    }
    for (int r : runs) bad += r != 1;
    if (rng() % 50 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 600));
  }
  std::printf("%d participants; %ld failed checks; %ld worker slots skipped a call they were late for\n", have, bad, absent);
  return bad != 0 ? 1 : 0;
}
