// Single-precision GEMM for resflow: C[M,N] = op(A) * op(B), row-major, op = transpose if asked.
//
// Plain C++17 and GCC/Clang vector extensions (no intrinsics, no other dependency). The
// micro-kernel shape is chosen at compile time from the instruction set the compiler targets
// (binding.gyp builds with -march=native): see gemm.cc.
#ifndef RESFLOW_GEMM_H_
#define RESFLOW_GEMM_H_

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
// returns only when every participant has finished, so no work outlives the call.
class ThreadPool {
 public:
  using Job = void (*)(void* ctx, int slot) noexcept;
  ThreadPool() = default;
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool();  // stops and joins the workers
  // Starts workers until n participants exist (or thread creation fails); returns how many exist.
  int ensure(int n);
  // Runs job(ctx, slot) for slot in [0, n) with n <= ensure(n); slot 0 on the calling thread.
  void run(int n, Job job, void* ctx);

 private:
  void loop(int slot, uint64_t seen);
  std::vector<std::thread> workers_;
  std::mutex m_;
  std::condition_variable work_cv_, done_cv_;
  uint64_t generation_ = 0;
  int wanted_ = 0;
  int pending_ = 0;
  bool stop_ = false;
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
  void sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const float* A, const float* B, float* C,
             int threads, const Epilogue& epi = Epilogue());

 private:
  ThreadPool& pool_;
  AlignedBuffer bpack_;
  std::vector<AlignedBuffer> apack_;
};

}  // namespace resflow

#endif  // RESFLOW_GEMM_H_
