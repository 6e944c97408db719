// Blocked single-precision GEMM (see gemm.h).
//
// Layout of the computation (the classic Goto/BLIS scheme, sized for small training matmuls):
//   for each NC block of columns (jc):          transposed B[:, jc block] packed once into NR-wide
//                                               panels (all of K, zero-padded columns)
//     parallel over tasks = (MC rows) x (NT columns) of that block, taken dynamically:
//       for each KC block of K (pc):            a partial MR-row panel of A packed
//         for each NR panel in the task (jr):   its kc x NR slice of B
//           for each MR panel (ir):             micro-kernel: MR x NR accumulators in registers
// Full panels of A and of untransposed B are read where they lie: the micro-kernel steps through
// them with their own strides (12 rows of row-major A, or 12 contiguous values a k of transposed
// A; NR contiguous values a k of B). Only transposed B and partial panels (zero-padded) are
// packed; there is no separate transpose pass. (Packing copies cost ~1.2 ms of a 17 ms training
// step on one thread, most of it in the weight gradients, whose operands are seldom cached;
// docs/performance-log.md, the entry of 2026-12-04 08:59 UTC.)
//
// Determinism: the value of C[i][j] is ((block_0 + block_1) + ...) where block_p is a chain of
// fused multiply-adds over k in K block p, in increasing k, starting from 0. The K blocks depend
// only on K; edge tiles run the same micro-kernel on zero-padded panels (only the valid part is
// stored). So neither the thread count, nor the task split, nor a tile's position changes any
// result bit.
#include "gemm.h"
#include "parallel_for.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <new>
#include <system_error>

// ---------------------------------------------------------------------------------------------
// Micro-kernel shape, from the instruction set the compiler targets. Override with -D for tuning.
// ---------------------------------------------------------------------------------------------
#if defined(__AVX512F__)
#define RF_SIMD_NAME "avx512"
#define RF_DEFAULT_VB 64
#define RF_DEFAULT_MR 12
#define RF_DEFAULT_NV 2
#elif defined(__AVX2__) || defined(__AVX__)
#if defined(__AVX2__)
#define RF_SIMD_NAME "avx2"
#else
#define RF_SIMD_NAME "avx"
#endif
#define RF_DEFAULT_VB 32
#define RF_DEFAULT_MR 6
#define RF_DEFAULT_NV 2
#elif defined(__SSE2__) || defined(_M_X64)
#define RF_SIMD_NAME "sse"
#define RF_DEFAULT_VB 16
#define RF_DEFAULT_MR 6
#define RF_DEFAULT_NV 2
#elif defined(__ARM_NEON) || defined(__aarch64__)
#define RF_SIMD_NAME "neon"
#define RF_DEFAULT_VB 16
#define RF_DEFAULT_MR 8
#define RF_DEFAULT_NV 3
#else
#define RF_SIMD_NAME "generic"
#define RF_DEFAULT_VB 16
#define RF_DEFAULT_MR 4
#define RF_DEFAULT_NV 2
#endif

#ifndef RESFLOW_VB
#define RESFLOW_VB RF_DEFAULT_VB
#endif
#ifndef RESFLOW_MR
#define RESFLOW_MR RF_DEFAULT_MR
#endif
#ifndef RESFLOW_NV
#define RESFLOW_NV RF_DEFAULT_NV
#endif
#ifndef RESFLOW_KC
#define RESFLOW_KC 384
#endif
#ifndef RESFLOW_MC
#define RESFLOW_MC 144
#endif
// Bytes of packed B per NC block (all of K x NC columns).
#ifndef RESFLOW_BPACK_BYTES
#define RESFLOW_BPACK_BYTES (4u << 20)
#endif
// From this many floats of packed B (K x NC) on, B is packed on the call's threads.
#ifndef RESFLOW_PAR_PACK_B
#define RESFLOW_PAR_PACK_B (1u << 16)
#endif
// Below this many multiply-adds a call runs on the calling thread only, unless it writes at least
// RESFLOW_PAR_MIN_OUT elements of C: with a short K (a one-wide layer's input gradient, 1024 x 128 x 1)
// writing C is the cost, and two cores store it faster than one (parallel_for.h's threshold, two
// threads' worth).
#ifndef RESFLOW_PAR_MIN
#define RESFLOW_PAR_MIN (1u << 20)
#endif
#ifndef RESFLOW_PAR_MIN_OUT
#define RESFLOW_PAR_MIN_OUT (1u << 15)
#endif

namespace resflow {
namespace {

constexpr int kMaxThreads = 64;
constexpr int MR = RESFLOW_MR;
constexpr int NV = RESFLOW_NV;
constexpr size_t KC_MAX = RESFLOW_KC;
constexpr size_t kParallelPackB = RESFLOW_PAR_PACK_B;
constexpr size_t MC_MAX = (RESFLOW_MC / MR > 0 ? RESFLOW_MC / MR : 1) * MR;
constexpr size_t kRowSourceMc = 4 * MR;

#if (defined(__GNUC__) || defined(__clang__)) && !defined(RESFLOW_NO_VECTOR)
#define RF_VECTOR 1
#define RF_RESTRICT __restrict__
#define RF_INLINE inline __attribute__((always_inline))
constexpr int VB = RESFLOW_VB;
constexpr int VL = VB / 4;
typedef float vf __attribute__((vector_size(VB)));

RF_INLINE vf vload(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
RF_INLINE void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// Every lane set to x. GCC's lane shuffle compiles to a broadcast from memory, done in the load
// unit; `vf{} + x` (kept for other compilers) was a scalar add of 0.0f and a register broadcast
// per row of a micro-kernel step, two uops on the FP pipes the FMAs need. Same values: the FMA
// accumulators start at +0.0f and never become -0.0f, so a -0.0f multiplier adds the same bits.
RF_INLINE vf vbroadcast(float x) {
#if defined(__clang__)
  vf v = {};
  return v + x;
#else
  typedef int vi __attribute__((vector_size(VB)));
  vf v = {x};
  return __builtin_shuffle(v, vi{});
#endif
}
#else
#define RF_VECTOR 0
#define RF_RESTRICT
#define RF_INLINE inline
constexpr int VB = 4;
constexpr int VL = 1;
#endif

constexpr int NR = VL * NV;
static_assert(MR >= 1 && NV >= 1 && NR >= 1, "bad micro-kernel shape");
static_assert(KC_MAX >= 1 && MC_MAX >= static_cast<size_t>(MR), "bad blocking");

inline size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
inline size_t round_up(size_t a, size_t b) { return ceil_div(a, b) * b; }
inline size_t min_sz(size_t a, size_t b) { return a < b ? a : b; }
inline size_t max_sz(size_t a, size_t b) { return a > b ? a : b; }
// a * b for buffer sizes; throws std::bad_alloc instead of wrapping (32-bit size_t).
inline size_t mul_checked(size_t a, size_t b) {
  if (a != 0 && b > SIZE_MAX / a) throw std::bad_alloc();
  return a * b;
}

// Where the micro-kernel reads its MR rows of op(A) over kc values of k:
//   kPanel: element (r, k) at a[k*a_step + r]: a packed panel (a_step = MR) or transposed A read
//           in place (a_step = M);
//   kRows:  element (r, k) at a[r*a_step + k]: row-major A read in place (a_step = K).
// Reading row-major A in place skips packing it (for a forward GEMM, a tenth of its time on a core
// with two 512-bit FMA units); the values and the order of the FMAs are the same, so are the bits.
enum class ARead { kPanel, kRows };

#if RF_VECTOR
// One k step of the micro-kernel: B's NR values, then one row's NV multiply-adds with them.
RF_INLINE void load_b(vf (&b)[NV], const float* RF_RESTRICT pb) {
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) b[v] = vload(pb + v * VL);
}
RF_INLINE void fma_row(vf (&acc)[NV], vf x, const vf (&b)[NV]) {
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) acc[v] += x * b[v];
}
// x < 0 ? +0.0f : x per lane, as apply_epilogue's scalar relu: NaN and -0.0f stay (their compare
// is false). Clearing the bits of the lanes the compare sets, which GCC and Clang both take.
RF_INLINE vf relu(vf x) {
  typedef int vi __attribute__((vector_size(VB)));
  return reinterpret_cast<vf>(reinterpret_cast<vi>(x) & ~(x < vf{}));
}
#endif

// C[r, c] = act(C[r, c] + bias[c]) + R[r, c] over rows [r0, r1) and columns [c0, c1); C is the
// output's base and ldc its row stride (R, when given, has the same layout). The same float
// operations as a separate bias add, relu and residual add, so the same bits.
void apply_epilogue(const Epilogue& e, float* C, size_t ldc, size_t r0, size_t r1, size_t c0, size_t c1) {
  if (e.empty()) return;
  for (size_t r = r0; r < r1; ++r) {
    float* cr = C + r * ldc;
    if (e.bias != nullptr)
      for (size_t c = c0; c < c1; ++c) cr[c] += e.bias[c];
    if (e.act == Activation::kRelu)
      for (size_t c = c0; c < c1; ++c) cr[c] = cr[c] < 0.0f ? 0.0f : cr[c];  // NaN stays NaN
    if (e.residual != nullptr) {
      const float* rr = e.residual + r * ldc;
      for (size_t c = c0; c < c1; ++c) cr[c] += rr[c];
    }
  }
}

// C[0:mv, 0:nv] (=|+=) op(A)(MR x kc) * packedB(kc x NR), op(A) read as `kRead` says; pb: kc groups
// of NR values. Rows >= mv / columns >= nv are zero padding (rows only in packed panels: in-place
// reads are of full panels) and are computed but not stored. With `epi` (given for the last K
// block; its bias and residual pointing at the tile's first column and element, the residual's row
// stride ldc), each stored value then gets the epilogue, from registers: a separate pass over the
// block read it back from L2 (bias and relu layers of a scoring pass ran 3-4% faster without it).
// With `pf`, the micro-kernel also fetches into L2, over its k loop, the op(A) rows of the tile
// that will be computed next: pf is that tile's first element, read as `kRead` says with the same
// a_step (see run_task).
template <ARead kRead>
void micro_kernel(size_t kc, const float* RF_RESTRICT a, size_t a_step, const float* RF_RESTRICT pb, size_t b_step,
                  float* RF_RESTRICT c, size_t ldc, int mv, int nv, bool accumulate, const Epilogue* epi,
                  const float* pf) {
#if RF_VECTOR
  // The tile's lines of C, fetched for writing while the k loop runs (the first K block only: the
  // later ones read C back right after). In a training step the outputs' lines are rarely cached,
  // and their misses at the stores cost ~0.4 ms of the step's 14 ms of products on the AMD machine
  // (docs/performance-log.md, 2026-12-04 06:48 UTC).
  if (!accumulate)
    for (int r = 0; r < mv; ++r) {
      const char* cr = reinterpret_cast<const char*>(c + static_cast<size_t>(r) * ldc);
      for (int q = 0; q < nv * static_cast<int>(sizeof(float)); q += 64) __builtin_prefetch(cr + q, 1, 3);
    }
  vf acc[MR][NV];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = vf{};
  if constexpr (kRead == ARead::kPanel) {
    for (size_t k = 0; k < kc; ++k) {
      vf b[NV];
      if (pf != nullptr) {  // the next tile's MR values of this k: one line, or two when they straddle
        __builtin_prefetch(pf + k * a_step, 0, 2);
        __builtin_prefetch(pf + k * a_step + MR - 1, 0, 2);
      }
      load_b(b, pb);
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) fma_row(acc[r], vbroadcast(a[r]), b);
      a += a_step;
      pb += b_step;
    }
  } else {
    // Rows in groups of three, each group one base pointer with offsets 0, K and 2K: x86 addresses
    // all three from two registers, so the 12 rows need no pointer spills.
    constexpr int G = (MR + 2) / 3;
    const float* g[G];
#pragma GCC unroll 32
    for (int q = 0; q < G; ++q) g[q] = a + static_cast<size_t>(3 * q) * a_step;
    const size_t l1 = a_step, l2 = 2 * a_step;
    for (size_t k = 0; k < kc; ++k) {
      vf b[NV];
      if (pf != nullptr && k % 16 == 0) {  // the next tile's MR rows, a line of each every 16 k
#pragma GCC unroll 32
        for (int r = 0; r < MR; ++r) __builtin_prefetch(pf + r * a_step + k, 0, 2);
      }
      load_b(b, pb);
#pragma GCC unroll 32
      for (int q = 0; q < G; ++q) {
        const size_t off[3] = {k, k + l1, k + l2};
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j)
          if (3 * q + j < MR) fma_row(acc[3 * q + j], vbroadcast(g[q][off[j]]), b);
      }
      pb += b_step;
    }
  }
  if (mv == MR && nv == NR) {
    if (epi == nullptr) {
#pragma GCC unroll 32
      for (int r = 0; r < MR; ++r) {
        float* cr = c + static_cast<size_t>(r) * ldc;
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          if (accumulate)
            vstore(cr + v * VL, vload(cr + v * VL) + acc[r][v]);
          else
            vstore(cr + v * VL, acc[r][v]);
        }
      }
      return;
    }
    // The same float operations as apply_epilogue, in the same order: the same bits.
    vf bias[NV];
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) bias[v] = epi->bias != nullptr ? vload(epi->bias + v * VL) : vf{};
#pragma GCC unroll 32
    for (int r = 0; r < MR; ++r) {
      float* cr = c + static_cast<size_t>(r) * ldc;
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        vf x = accumulate ? vload(cr + v * VL) + acc[r][v] : acc[r][v];
        if (epi->bias != nullptr) x += bias[v];
        if (epi->act == Activation::kRelu) x = relu(x);
        if (epi->residual != nullptr) x += vload(epi->residual + static_cast<size_t>(r) * ldc + v * VL);
        vstore(cr + v * VL, x);
      }
    }
    return;
  }
  alignas(64) float t[MR * NR];
#pragma GCC unroll 32
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) vstore(t + r * NR + v * VL, acc[r][v]);
#else
  // Portable path (compilers without vector extensions): the same per-element order, with fmaf
  // replaced by a*b+c as the compiler contracts it (identically in every call). No prefetching.
  (void)pf;
  float t[MR * NR] = {};
  for (size_t k = 0; k < kc; ++k) {
    for (int r = 0; r < MR; ++r) {
      const float x = kRead == ARead::kPanel ? a[k * a_step + r] : a[r * a_step + k];
      for (int j = 0; j < NR; ++j) t[r * NR + j] += x * pb[j];
    }
    pb += b_step;
  }
#endif
  for (int r = 0; r < mv; ++r) {
    float* cr = c + static_cast<size_t>(r) * ldc;
    const float* tr = t + r * NR;
    if (accumulate)
      for (int j = 0; j < nv; ++j) cr[j] += tr[j];
    else
      for (int j = 0; j < nv; ++j) cr[j] = tr[j];
  }
  if (epi != nullptr) apply_epilogue(*epi, c, ldc, 0, static_cast<size_t>(mv), 0, static_cast<size_t>(nv));
}

// Packs the mv <= MR rows [i, i+mv) x k in [p0, p0+kc) of row-major A (op(A)(i, k) = A[i*K + k])
// into one MR-row panel, element (r, k) at pa[k*MR + r], rows mv.. zero: a last partial row panel
// (full ones are read in place; run_task).
void pack_a_rows(const float* A, size_t K, size_t i, int mv, size_t p0, size_t kc, float* RF_RESTRICT pa) {
  for (size_t k = 0; k < kc; ++k) {
    float* d = pa + k * MR;
    int r = 0;
    for (; r < mv; ++r) d[r] = A[(i + r) * K + p0 + k];
    for (; r < MR; ++r) d[r] = 0.0f;
  }
}

// The same for transposed A (op(A)(i, k) = A[k*M + i]): mv <= MR contiguous values a k.
void pack_a_trans(const float* A, size_t M, size_t i, int mv, size_t p0, size_t kc, float* RF_RESTRICT pa) {
  for (size_t k = 0; k < kc; ++k) {
    const float* src = A + (p0 + k) * M + i;
    float* d = pa + k * MR;
    int r = 0;
    for (; r < mv; ++r) d[r] = src[r];
    for (; r < MR; ++r) d[r] = 0.0f;
  }
}

// Packs columns [j0, j0+nc) (all K rows) of op(B) into NR-wide panels: panel q at pb + q*K*NR,
// element (k, c) at [k*NR + c]; missing columns are zero.
// Panels [q0, q1) (in columns, multiples of NR) only; pack_b_entry spreads them over threads.
void pack_b(bool trans_b, const float* B, size_t N, size_t K, size_t j0, size_t nc, float* RF_RESTRICT pb,
            size_t q0, size_t q1) {
  for (size_t q = q0; q < q1 && q < nc; q += NR) {
    const size_t nv = min_sz(NR, nc - q);
    const size_t j = j0 + q;
    float* dst = pb + q * K;  // (q / NR) * K * NR
    if (!trans_b) {
      // op(B)(k, j) = B[k*N + j]: NR contiguous values per k.
      // (Vector builds read full panels of untransposed B in place and come here for a last
      // partial panel only.)
      const float* src = B + j;
      for (size_t k = 0; k < K; ++k, src += N) {
        float* d = dst + k * NR;
        size_t c = 0;
        for (; c < nv; ++c) d[c] = src[c];
        for (; c < static_cast<size_t>(NR); ++c) d[c] = 0.0f;
      }
    } else {
      // op(B)(k, j) = B[j*K + k]: one contiguous stream per column.
      for (size_t c = 0; c < static_cast<size_t>(NR); ++c) {
        if (c < nv) {
          const float* src = B + (j + c) * K;
          for (size_t k = 0; k < K; ++k) dst[k * NR + c] = src[k];
        } else {
          for (size_t k = 0; k < K; ++k) dst[k * NR + c] = 0.0f;
        }
      }
    }
  }
}

// Packing B on several threads: panels taken from an atomic counter, a few at a time.
struct PackBJob {
  bool trans_b;
  const float* B;
  size_t N, K, j0, nc;
  float* pb;
  size_t chunk;  // columns per task, a multiple of NR
  std::atomic<size_t> next{0};
};

void pack_b_entry(void* ctx, int /*slot*/) noexcept {
  PackBJob& job = *static_cast<PackBJob*>(ctx);
  for (size_t q; (q = job.next.fetch_add(job.chunk, std::memory_order_relaxed)) < job.nc;)
    pack_b(job.trans_b, job.B, job.N, job.K, job.j0, job.nc, job.pb, q, q + job.chunk);
}

// The K blocks: nk blocks of kc_nominal (the last one shorter), depending on K only.
struct KBlocks {
  size_t nk, kc;
};
KBlocks k_blocks(size_t K) {
  const size_t nk = ceil_div(K, KC_MAX);
  return {nk, ceil_div(K, nk)};
}

struct Job {
  bool trans_a;
  size_t M, N, K;
  const float* A;
  float* C;
  KBlocks kb;
  // Current NC block: its columns [j0, j0 + nc); those before in_place_b (relative to j0) read
  // from B (untransposed, leading dimension N) where it lies, the rest from packed panels pb.
  size_t j0, nc;
  const float* B;
  size_t in_place_b;
  const float* pb;
  // Task grid over (rows, columns of the block).
  size_t mc, nt, tasks_m, tasks_n;
  std::atomic<size_t> next;
  float* const* apack;  // one buffer per slot: >= MR * kc floats (a partial row panel)
  Epilogue epi;
  // A's rows written on demand (gemm.h), or null; set only when each task is a whole row block.
  const RowSource* rows;
  size_t participants;
};

// A prefetch of rows [r0, r0 + count) spread evenly over `calls` steps (the task's micro-kernel
// calls of its first K block): a few rows' misses at a time keep the core's miss buffers busy
// without stalling the multiply-adds behind a burst of thousands.
struct SpreadPrefetch {
  const RowSource* src = nullptr;
  size_t r0 = 0, count = 0, calls = 1, done = 0;
  void step() {
    if (src == nullptr || done >= calls) return;
    const size_t a = r0 + count * done / calls;
    ++done;
    const size_t b = r0 + count * done / calls;
    if (b > a) src->prefetch(src->ctx, a, b);
  }
};

void run_task(Job& job, size_t t, float* pa) {
  const size_t tm = t / job.tasks_n, tn = t % job.tasks_n;
  const size_t i0 = tm * job.mc, mc = min_sz(job.mc, job.M - i0);
  const size_t c0 = tn * job.nt, c1 = min_sz(job.nc, c0 + job.nt);  // within the NC block
  const size_t K = job.K, N = job.N;
  SpreadPrefetch ahead;
  if (job.rows != nullptr) {
    job.rows->fill(job.rows->ctx, i0, i0 + mc);
    // The task this thread will likely take next: the counter hands them out in order, one to each
    // participant in turn (a wrong guess costs only useless prefetches).
    const size_t next = t + job.participants;
    if (next < job.tasks_m * job.tasks_n) {
      ahead.src = job.rows;
      ahead.r0 = (next / job.tasks_n) * job.mc;
      ahead.count = min_sz(job.mc, job.M - ahead.r0);
      ahead.calls = ceil_div(c1 - c0, NR) * ceil_div(mc, MR);
    }
  }
  for (size_t b = 0; b < job.kb.nk; ++b) {
    const size_t p0 = b * job.kb.kc, kc = min_sz(job.kb.kc, K - p0);
    // Full MR-row panels of A are read where they lie; a last partial panel is packed.
    const size_t in_place = mc / MR * MR;
    if (in_place < mc) {
      const int mv = static_cast<int>(mc - in_place);
      if (job.trans_a) pack_a_trans(job.A, job.M, i0 + in_place, mv, p0, kc, pa);
      else pack_a_rows(job.A, K, i0 + in_place, mv, p0, kc, pa);
    }
    // Full panels of transposed A: MR contiguous values a k, a row of A (M floats) apart.
    const float* a_trans = job.A + p0 * job.M + i0;
    for (size_t jr = c0; jr < c1; jr += NR) {
      const int nv = static_cast<int>(min_sz(NR, c1 - jr));
      // Panel jr/NR, K block b: B in place, or its packed panel.
      const bool b_in_place = jr < job.in_place_b;
      const float* pbp = b_in_place ? job.B + p0 * N + job.j0 + jr : job.pb + jr * K + p0 * NR;
      const size_t b_step = b_in_place ? N : static_cast<size_t>(NR);
      float* cj = job.C + i0 * N + job.j0 + jr;
      // The last K block applies the epilogue as it stores each tile: te, moved to the tile.
      const bool last = b + 1 == job.kb.nk && !job.epi.empty();
      Epilogue te = job.epi;
      if (te.bias != nullptr) te.bias += job.j0 + jr;
      const float* res = te.residual != nullptr ? te.residual + i0 * N + job.j0 + jr : nullptr;
      const Epilogue* epi = last ? &te : nullptr;
      for (size_t ir = 0; ir < in_place; ir += MR) {
        if (b == 0) ahead.step();
        if (res != nullptr) te.residual = res + ir * N;
        // The first column panel reads this K block of A from memory (the later ones find it in L2):
        // each tile fetches the next one's rows meanwhile, the last the next K block's first tile,
        // or after the last K block the first tile of the task this thread likely takes next (the
        // counter hands tasks out in turn; a wrong guess costs only useless prefetches). A row
        // source's rows were just written: not fetched. (docs/performance-log.md, 2026-12-04
        // 14:30-15:40 UTC)
        const float* pf = nullptr;
        if (jr == c0 && job.rows == nullptr) {
          if (ir + MR < in_place) {
            pf = job.trans_a ? a_trans + ir + MR : job.A + (i0 + ir + MR) * K + p0;
          } else if (b + 1 < job.kb.nk) {
            pf = job.trans_a ? job.A + (p0 + kc) * job.M + i0 : job.A + i0 * K + p0 + kc;
          } else if (t + job.participants < job.tasks_m * job.tasks_n) {
            const size_t n0 = ((t + job.participants) / job.tasks_n) * job.mc;
            if (n0 + MR <= job.M) pf = job.trans_a ? job.A + n0 : job.A + n0 * K;
          }
        }
        if (job.trans_a)
          micro_kernel<ARead::kPanel>(kc, a_trans + ir, job.M, pbp, b_step, cj + ir * N, N, MR, nv, b > 0, epi, pf);
        else
          micro_kernel<ARead::kRows>(kc, job.A + (i0 + ir) * K + p0, K, pbp, b_step, cj + ir * N, N, MR, nv, b > 0, epi, pf);
      }
      for (size_t ir = in_place; ir < mc; ir += MR) {
        if (b == 0) ahead.step();
        if (res != nullptr) te.residual = res + ir * N;
        micro_kernel<ARead::kPanel>(kc, pa, MR, pbp, b_step, cj + ir * N, N, static_cast<int>(mc - ir), nv, b > 0, epi, nullptr);
      }
    }
  }
}

void job_entry(void* ctx, int slot) noexcept {
  Job& job = *static_cast<Job*>(ctx);
  float* pa = job.apack[slot];
  const size_t total = job.tasks_m * job.tasks_n;
  for (;;) {
    const size_t t = job.next.fetch_add(1, std::memory_order_relaxed);
    if (t >= total) break;
    run_task(job, t, pa);
  }
}

// ---------------------------------------------------------------------------------------------
// Matrix-vector products (M == 1 or N == 1), where the packed path would waste most of a tile
// and pack a whole operand for a single use. Two forms cover the four transpose cases:
//   rows form: out[j] = sum_k s[k] * X[k*ldx + j]   (X read row by row; vector lanes over j)
//   dot form:  out[i] = sum_k X[i*K + k] * s[k]     (X read row by row; vector lanes over k)
// Each output element is computed by the same code whichever task it falls in (task bounds are
// multiples of the chunk width), so these are deterministic too.
// ---------------------------------------------------------------------------------------------
constexpr size_t kRowsChunk = static_cast<size_t>(VL) * 4;  // output columns per register block

void gemv_rows(size_t K, const float* s, const float* X, size_t ldx, float* out, size_t j0, size_t j1) {
  size_t j = j0;
#if RF_VECTOR
  for (; j + kRowsChunk <= j1; j += kRowsChunk) {
    vf a0 = {}, a1 = {}, a2 = {}, a3 = {};
    const float* x = X + j;
    for (size_t k = 0; k < K; ++k, x += ldx) {
      const vf sk = vbroadcast(s[k]);
      a0 += sk * vload(x);
      a1 += sk * vload(x + VL);
      a2 += sk * vload(x + 2 * VL);
      a3 += sk * vload(x + 3 * VL);
    }
    vstore(out + j, a0);
    vstore(out + j + VL, a1);
    vstore(out + j + 2 * VL, a2);
    vstore(out + j + 3 * VL, a3);
  }
  for (; j + VL <= j1; j += VL) {
    vf a = {};
    const float* x = X + j;
    for (size_t k = 0; k < K; ++k, x += ldx) a += vbroadcast(s[k]) * vload(x);
    vstore(out + j, a);
  }
#endif
  for (; j < j1; ++j) {
    float a = 0.0f;
    const float* x = X + j;
    for (size_t k = 0; k < K; ++k, x += ldx) a += s[k] * x[0];
    out[j] = a;
  }
}

float dot_row(size_t K, const float* RF_RESTRICT x, const float* RF_RESTRICT s) {
  size_t k = 0;
  float total = 0.0f;
#if RF_VECTOR
  vf a0 = {}, a1 = {}, a2 = {}, a3 = {};
  for (; k + 4 * VL <= K; k += 4 * VL) {
    a0 += vload(x + k) * vload(s + k);
    a1 += vload(x + k + VL) * vload(s + k + VL);
    a2 += vload(x + k + 2 * VL) * vload(s + k + 2 * VL);
    a3 += vload(x + k + 3 * VL) * vload(s + k + 3 * VL);
  }
  for (; k + VL <= K; k += VL) a0 += vload(x + k) * vload(s + k);
  const vf a = (a0 + a1) + (a2 + a3);
  for (int l = 0; l < VL; ++l) total += a[l];
#endif
  for (; k < K; ++k) total += x[k] * s[k];
  return total;
}

void gemv_dot(size_t K, const float* X, const float* s, float* out, size_t i0, size_t i1) {
  for (size_t i = i0; i < i1; ++i) out[i] = dot_row(K, X + i * K, s);
}

struct GemvJob {
  bool rows_form;
  size_t K, len, ldx, chunk, tasks;
  const float* X;
  const float* s;
  float* out;
  std::atomic<size_t> next;
  Epilogue epi;
  bool out_is_row;  // out is C's one row (M == 1), else C's one column (N == 1)
};

void gemv_entry(void* ctx, int /*slot*/) noexcept {
  GemvJob& job = *static_cast<GemvJob*>(ctx);
  for (;;) {
    const size_t t = job.next.fetch_add(1, std::memory_order_relaxed);
    if (t >= job.tasks) break;
    const size_t a = t * job.chunk, b = min_sz(job.len, a + job.chunk);
    if (job.rows_form)
      gemv_rows(job.K, job.s, job.X, job.ldx, job.out, a, b);
    else
      gemv_dot(job.K, job.X, job.s, job.out, a, b);
    if (job.out_is_row) apply_epilogue(job.epi, job.out, 0, 0, 1, a, b);
    else apply_epilogue(job.epi, job.out, 1, a, b, 0, 1);
  }
}

#if RF_VECTOR
// C[b, e) of an M x N product with K = 1 (C = a·bᵀ, a the M values of op(A), b the N of op(B)),
// row-major: each element the micro-kernel's first FMA on a +0 accumulator (so a -0 product gives
// +0), then the epilogue's operations in its order: the bits of the blocked path, which packs
// panels and walks tiles for a single multiply per element (a one-wide layer's input gradient).
void outer_product(const float* a, const float* b, float* C, size_t N, const Epilogue& e, size_t lo, size_t hi) {
  for (size_t i = lo / N; i * N < hi; ++i) {
    const size_t j0 = (lo > i * N ? lo - i * N : 0), j1 = (hi < (i + 1) * N ? hi - i * N : N);
    const float ai = a[i];
    float* c = C + i * N;
    const float* r = e.residual != nullptr ? e.residual + i * N : nullptr;
    for (size_t j = j0; j < j1; ++j) {
      float x = __builtin_fmaf(ai, b[j], 0.0f);
      if (e.bias != nullptr) x += e.bias[j];
      if (e.act == Activation::kRelu) x = x < 0.0f ? 0.0f : x;
      if (r != nullptr) x += r[j];
      c[j] = x;
    }
  }
}
#endif

}  // namespace

GemmInfo gemm_info() {
  return {RF_SIMD_NAME, VB, MR, NR, static_cast<int>(KC_MAX), static_cast<int>(MC_MAX), kMaxThreads};
}

// ---------------------------------------------------------------------------------------------
// AlignedBuffer
// ---------------------------------------------------------------------------------------------
AlignedBuffer::~AlignedBuffer() {
  if (p_ != nullptr) ::operator delete(p_, std::align_val_t(64));
}

float* AlignedBuffer::reserve(size_t n) {
  if (n <= cap_ && p_ != nullptr) return p_;
  if (n > (SIZE_MAX / sizeof(float)) - 16) throw std::bad_alloc();
  const size_t cap = round_up(n == 0 ? 1 : n, 16);
  float* p = static_cast<float*>(::operator new(cap * sizeof(float), std::align_val_t(64)));
  if (p_ != nullptr) ::operator delete(p_, std::align_val_t(64));
  p_ = p;
  cap_ = cap;
  return p_;
}

// ---------------------------------------------------------------------------------------------
// ThreadPool
// ---------------------------------------------------------------------------------------------
// How long a worker polls for the next call, and the caller for the workers, before blocking: a
// training step's calls are mostly under 250 us apart (the loss's small tfjs kernels and the
// step's bookkeeping lie between them), and a worker that blocked costs a wake-up of 25-65 us on a
// virtual machine and arrives late. 250 against 50 us: -0.15 to -0.85 ms per 2-thread step of
// ~9.7 ms for +0.6-0.9 ms of CPU (docs/performance-log.md). A core is held at most this long
// after the last call.
constexpr auto kSpin = std::chrono::microseconds(250);
static_assert(kMaxThreads < 256, "a call's participant count is the low byte of its word");

// Polls `done` with a pause between tries (a steady-clock read every 64) until it is true or kSpin
// has passed; returns whether it became true.
template <class Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 1;; ++i) {
    if (done()) return true;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
    if (i % 64 == 0 && std::chrono::steady_clock::now() >= deadline) return done();
  }
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(m_);
    stop_.store(true);
  }
  work_cv_.notify_all();
  for (std::thread& t : workers_)
    if (t.joinable()) t.join();
}

int ThreadPool::ensure(int n) {
  if (n > kMaxThreads) n = kMaxThreads;
  while (static_cast<int>(workers_.size()) + 1 < n) {
    const int slot = static_cast<int>(workers_.size()) + 1;
    const uint64_t gen = call_.load(std::memory_order_acquire);
    try {
      workers_.emplace_back(&ThreadPool::loop, this, slot, gen);
    } catch (...) {  // std::system_error (no more threads) or bad_alloc: use what we have
      break;
    }
  }
  return static_cast<int>(workers_.size()) + 1;
}

namespace {
constexpr uint64_t kGateClosed = uint64_t{1} << 15;
constexpr uint64_t kGateJoined = kGateClosed - 1;
// The gate holds a call's number in its upper 48 bits.
constexpr uint64_t gate_number(uint64_t call_number) { return call_number & ((uint64_t{1} << 48) - 1); }
}  // namespace

void ThreadPool::loop(int slot, uint64_t seen) {
  for (;;) {
    const auto announced = [&] { return stop_.load(std::memory_order_acquire) || call_.load(std::memory_order_acquire) != seen; };
    if (!spin_until(announced)) {
      std::unique_lock<std::mutex> lk(m_);
      ++sleepers_;
      work_cv_.wait(lk, announced);
      --sleepers_;
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = call_.load(std::memory_order_acquire);
    if (slot >= static_cast<int>(seen & 0xff)) continue;  // not a participant of this call
    // Join this call's gate, unless the caller has closed it (or moved on to a later call).
    const uint64_t number = gate_number(seen >> 8);
    uint64_t g = gate_.load(std::memory_order_seq_cst);
    bool joined = false;
    while ((g >> 16) == number && (g & kGateClosed) == 0) {
      if (gate_.compare_exchange_weak(g, g + 1, std::memory_order_seq_cst)) {
        joined = true;
        break;
      }
    }
    if (!joined) continue;
    job_(ctx_, slot);
    const int done = finished_.fetch_add(1, std::memory_order_seq_cst) + 1;
    // The caller waits for `done` only once it has closed the gate: if it has not, it will see
    // this worker's count when it does.
    g = gate_.load(std::memory_order_seq_cst);
    if ((g & kGateClosed) != 0 && static_cast<uint64_t>(done) == (g & kGateJoined)) {
      std::lock_guard<std::mutex> lk(m_);
      if (caller_waiting_) done_cv_.notify_one();
    }
  }
}

void ThreadPool::run(int n, Job job, void* ctx) {
  const int have = static_cast<int>(workers_.size()) + 1;
  if (n > have) n = have;
  if (n <= 1) {
    job(ctx, 0);
    return;
  }
  job_ = job;
  ctx_ = ctx;
  finished_.store(0, std::memory_order_relaxed);
  bool wake;
  {
    std::lock_guard<std::mutex> lk(m_);
    const uint64_t number = (call_.load(std::memory_order_relaxed) >> 8) + 1;
    gate_.store(gate_number(number) << 16, std::memory_order_relaxed);
    call_.store((number << 8) | static_cast<uint64_t>(n), std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake) work_cv_.notify_all();
  job(ctx, 0);
  const int joined = static_cast<int>(gate_.fetch_or(kGateClosed, std::memory_order_seq_cst) & kGateJoined);
  const auto finished = [&] { return finished_.load(std::memory_order_seq_cst) == joined; };
  if (!finished() && !spin_until(finished)) {
    std::unique_lock<std::mutex> lk(m_);
    caller_waiting_ = true;
    done_cv_.wait(lk, finished);
    caller_waiting_ = false;
  }
  job_ = nullptr;
  ctx_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// GemmEngine
// ---------------------------------------------------------------------------------------------
void GemmEngine::sgemm(bool trans_a, bool trans_b, size_t M, size_t N, size_t K, const float* A, const float* B,
                       float* C, int threads, const Epilogue& epi, const RowSource* rows) {
  if (M == 0 || N == 0) return;
  // Forms that do not walk A by row blocks (and an empty A) take its rows all at once.
  if (rows != nullptr && (trans_a || K <= 1 || M == 1 || N == 1)) {
    rows->fill(rows->ctx, 0, M);
    rows = nullptr;
  }
  if (K == 0) {
    std::memset(C, 0, M * N * sizeof(float));
    apply_epilogue(epi, C, N, 0, M, 0, N);
    return;
  }
  if (threads < 1) threads = 1;
  if (threads > kMaxThreads) threads = kMaxThreads;
  // Small problems: not worth waking a worker.
  const double outputs = static_cast<double>(M) * static_cast<double>(N);
  if (outputs * static_cast<double>(K) < static_cast<double>(RESFLOW_PAR_MIN) && outputs < static_cast<double>(RESFLOW_PAR_MIN_OUT)) threads = 1;
  if (threads > 1) threads = pool_.ensure(threads);

#if RF_VECTOR
  if (K == 1 && M > 1 && N > 1) {
    // op(A) is M x 1 and op(B) 1 x N: M and N contiguous floats, transposed or not.
    parallel_for(pool_, threads, M * N, [&](size_t lo, size_t hi) { outer_product(A, B, C, N, epi, lo, hi); });
    return;
  }
#endif
  if (M == 1 || N == 1) {
    // op(A) is 1 x K (M == 1) or op(B) is K x 1 (N == 1): either way that operand is K
    // contiguous floats, transposed or not.
    GemvJob g;
    if (M == 1 && N == 1) {
      g.rows_form = false, g.X = A, g.s = B, g.len = 1, g.ldx = K;
    } else if (M == 1) {
      g.rows_form = !trans_b, g.X = B, g.s = A, g.len = N, g.ldx = N;  // rows: B[k*N + j]; dot: B[j*K + k]
    } else {
      g.rows_form = trans_a, g.X = A, g.s = B, g.len = M, g.ldx = M;  // rows: A[k*M + i]; dot: A[i*K + k]
    }
    g.K = K;
    g.out = C;
    g.epi = epi;
    g.out_is_row = M == 1;
    const size_t unit = g.rows_form ? kRowsChunk : 16;
    const size_t target = threads > 1 ? static_cast<size_t>(threads) * 4 : 1;
    g.chunk = max_sz(unit, round_up(ceil_div(g.len, target), unit));
    g.tasks = ceil_div(g.len, g.chunk);
    g.next.store(0, std::memory_order_relaxed);
    pool_.run(static_cast<int>(min_sz(static_cast<size_t>(threads), g.tasks)), gemv_entry, &g);
    return;
  }

  const KBlocks kb = k_blocks(K);
  // NC: as many NR panels as fit in RESFLOW_BPACK_BYTES with all of K, at least one.
  const size_t panels_fit = max_sz(1, RESFLOW_BPACK_BYTES / (K * NR * sizeof(float)));
  const size_t nc_max = min_sz(round_up(N, NR), panels_fit * NR);

  // Task grid: rows in MC blocks, columns of an NC block in NT chunks; with threads, aim at
  // >= 4 tasks per thread so that a thread slowed by other load does not hold up the call.
  const size_t target = threads > 1 ? static_cast<size_t>(threads) * 4 : 1;
  size_t mc = min_sz(MC_MAX, round_up(M, MR));
  if (ceil_div(M, mc) < target) {
    mc = max_sz(MR, round_up(ceil_div(M, target), MR));
  } else if (threads > 1) {
    // Row tasks of equal height, as many as MC allows rounded up to a multiple of the threads: 1024
    // rows on 2 threads as 8 x 128 (132 with MR = 12), not 7 x 144 + 16, which left one thread
    // 576 rows and the other 448.
    const size_t tasks = round_up(ceil_div(M, mc), static_cast<size_t>(threads));
    mc = max_sz(MR, round_up(ceil_div(M, tasks), MR));
  }
  // A row source's blocks are smaller: the next block's table rows, prefetched while this one
  // computes, then stay in L2 beside the packed B and the block's A and C (48 rows: the scoring
  // batch 1-2% faster than with 144; docs/performance-log.md, 2026-12-03).
  if (rows != nullptr) mc = min_sz(mc, kRowSourceMc);
  const size_t tasks_m = ceil_div(M, mc);

  // Packing buffers, allocated here on the calling thread (workers never allocate).
  if (apack_.size() < static_cast<size_t>(threads)) apack_.resize(threads);
  float* apack[kMaxThreads];
  for (int s = 0; s < threads; ++s) apack[s] = apack_[s].reserve(mul_checked(MR, kb.kc));
  float* pb = bpack_.reserve(mul_checked(nc_max, K));

  Job job;
  job.trans_a = trans_a;
  job.M = M;
  job.N = N;
  job.K = K;
  job.A = A;
  job.C = C;
  job.kb = kb;
  job.B = B;
  job.pb = pb;
  job.mc = mc;
  job.tasks_m = tasks_m;
  job.apack = apack;
  job.epi = epi;
  for (size_t j0 = 0; j0 < N; j0 += nc_max) {
    const size_t nc = min_sz(nc_max, N - j0);
    const size_t panels = ceil_div(nc, NR);
    // Untransposed B's full panels are read in place (NR contiguous floats a k); transposed B, and a
    // last partial panel, are packed. The portable path packs all of B: GCC 12's vectorizer turned
    // its k loop over B in place into loads past B's last row (-O3, -DRESFLOW_NO_VECTOR).
    const size_t in_place_b = (RF_VECTOR && !trans_b) ? nc / NR * NR : 0;
    if (in_place_b == nc) {
      // nothing to pack
    } else if (in_place_b == 0 && threads > 1 && panels > 1 && K * nc >= kParallelPackB) {
      // B is packed before any task starts; on one thread that left the others waiting
      PackBJob pj;
      pj.trans_b = trans_b, pj.B = B, pj.N = N, pj.K = K, pj.j0 = j0, pj.nc = nc, pj.pb = pb;
      pj.chunk = ceil_div(panels, static_cast<size_t>(threads) * 2) * NR;
      pool_.run(static_cast<int>(min_sz(static_cast<size_t>(threads), panels)), pack_b_entry, &pj);
    } else {
      pack_b(trans_b, B, N, K, j0, nc, pb, in_place_b, nc);
    }
    size_t tasks_n = 1;
    if (tasks_m < target) tasks_n = min_sz(panels, ceil_div(target, tasks_m));
    const size_t nt = ceil_div(panels, tasks_n) * NR;
    job.j0 = j0;
    job.nc = nc;
    job.in_place_b = in_place_b;
    job.nt = nt;
    job.tasks_n = ceil_div(nc, nt);
    job.next.store(0, std::memory_order_relaxed);
    const size_t tasks = job.tasks_m * job.tasks_n;
    job.participants = min_sz(static_cast<size_t>(threads), tasks);
    // A's rows are written in the first NC block, by the task of their row block; when row blocks
    // are split over several tasks (few rows, several threads), all at once before it.
    job.rows = j0 == 0 ? rows : nullptr;
    if (job.rows != nullptr && job.tasks_n > 1) {
      rows->fill(rows->ctx, 0, M);
      job.rows = nullptr;
    }
    pool_.run(static_cast<int>(job.participants), job_entry, &job);
  }
}

}  // namespace resflow
