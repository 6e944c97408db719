// Single-precision GEMM for resflow: C[M,N] = op(A) * op(B), row-major, op = transpose if asked.
//
// Plain C++17 and GCC/Clang vector extensions (no intrinsics, no other dependency). The
// micro-kernel shape is chosen at compile time from the instruction set the compiler targets
// (binding.gyp builds with -march=native): see gemm.cc.
#ifndef RESFLOW_GEMM_H_
#define RESFLOW_GEMM_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

namespace resflow {

struct GemmInfo {
  const char* simd;   // "avx512", "avx2", "avx", "sse", "neon" or "generic"
  int vector_bytes;   // width of the vectors the micro-kernel uses
  int mr, nr;         // micro-kernel rows x columns
  int kc;             // largest K block
  int mc;             // largest M block
  int max_threads;    // hard cap on threads per call
};

GemmInfo gemm_info();

enum class Activation : int { kLinear = 0, kRelu = 1 };

// What sgemm applies to each finished element: C[i, j] = act(C[i, j] + bias[j]) + R[i, j] (bias
// and residual R optional; R is M x N, row-major like C).
struct Epilogue {
  const float* bias = nullptr;      // N floats, or null
  Activation act = Activation::kLinear;
  const float* residual = nullptr;  // M*N floats, or null
  bool empty() const { return bias == nullptr && act == Activation::kLinear && residual == nullptr; }
};

// Rows of A written on demand, for a product whose input is made row by row (the embedding lookup
// fused into a scoring pass's first layers, native/README.md): before a task reads rows [i0, i1) of
// A, sgemm calls fill(ctx, i0, i1), which writes them; between the task's micro-kernels it calls
// prefetch(ctx, i0, i1) on slices of the rows the thread will likely take next, so that their
// memory latency passes while it computes. Both run on the thread that calls them, for disjoint
// rows. The values of A are the same as if they had been written first: so are the results.
struct RowSource {
  void (*fill)(void* ctx, size_t i0, size_t i1) noexcept = nullptr;
  void (*prefetch)(void* ctx, size_t i0, size_t i1) noexcept = nullptr;
  void* ctx = nullptr;
};

// 64-byte aligned float buffer that only grows. Not copyable.
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept : p_(o.p_), cap_(o.cap_) { o.p_ = nullptr; o.cap_ = 0; }
  ~AlignedBuffer();
  // Makes room for n floats (throws std::bad_alloc); returns the data pointer.
  float* reserve(size_t n);
  float* data() const { return p_; }

 private:
  float* p_ = nullptr;
  size_t cap_ = 0;
};

// A small persistent pool: the calling thread is participant 0, workers are 1..n-1. run()
// returns only when every worker that joined the call has finished, so no work outlives it; a
// worker that comes too late skips the call (see call_ below).
//
// Between calls a worker polls for the next one for a short while (kSpin in gemm.cc) before it
// blocks, and the caller polls for the workers to finish before it blocks: a training step makes
// ~30 calls a few microseconds to a few hundred apart, and waking a blocked thread through the
// kernel costs 25-65 us on a virtual machine (an interrupt between virtual CPUs), 5-10 on bare metal.
class ThreadPool {
 public:
  using Job = void (*)(void* ctx, int slot) noexcept;
  ThreadPool() = default;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();  // stops and joins the workers
  // Starts workers until n participants exist (or thread creation fails); returns how many exist.
  int ensure(int n);
  // Runs job(ctx, 0) on the calling thread and job(ctx, slot) on each worker slot in [1, n) that
  // joins before the caller's own share is done (n <= ensure(n)); job must hand out its work by
  // an atomic counter, so that any set of participants finishes it.
  void run(int n, Job job, void* ctx);

 private:
  void loop(int slot, uint64_t seen);
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable work_cv_, done_cv_;
  // A call is announced by one word, (its number << 8) | its participant count, stored (release)
  // after job_, ctx_ and the call's gate, so a worker reads them together. A worker takes part
  // only by joining the gate, (number << 16) | closed bit | joined count, while it is open; the
  // caller closes it once its own share is done (every job hands out its work by an atomic
  // counter, so the caller alone finishes it when a worker is late) and then waits only for the
  // workers that joined. A worker still asleep or descheduled when the caller is done never holds
  // the caller up, and never touches job_ or ctx_ once the call has returned. sleepers_ and
  // caller_waiting_ change only under m_, so a wake-up is never lost.
  std::atomic<uint64_t> call_{0};
  std::atomic<uint64_t> gate_{0};
  std::atomic<int> finished_{0};
  std::atomic<bool> stop_{false};
  int sleepers_ = 0;             // workers blocked (or about to block) on work_cv_
  bool caller_waiting_ = false;  // the caller blocked on done_cv_
  Job job_ = nullptr;
  void* ctx_ = nullptr;
};

// Per-addon-instance GEMM state: packing buffers (grown on the calling thread only, before any
// worker runs, so workers never allocate) and the instance's thread pool, shared with the
// embedding kernels.
class GemmEngine {
 public:
  explicit GemmEngine(ThreadPool& pool) : pool_(pool) {}

  // C[M,N] = op(A)[M,K] * op(B)[K,N], then the epilogue; A holds M*K floats (K*M if trans_a),
  // B K*N, C M*N, the epilogue's bias N. C must not overlap A, B or the bias (the caller
  // checks). threads >= 1 is an upper bound; results do not depend on it (each element is summed
  // in the same order whatever the split). May throw std::bad_alloc before any output is written.
  // With `rows`, A (row-major, not transposed) is written by rows->fill as the product needs it.
  void sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const float* A, const float* B, float* C,
             int threads, const Epilogue& epi = Epilogue(), const RowSource* rows = nullptr);

 private:
  ThreadPool& pool_;
  AlignedBuffer bpack_;
  std::vector<AlignedBuffer> apack_;
};

}  // namespace resflow

#endif  // RESFLOW_GEMM_H_
