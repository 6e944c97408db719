// Sparse embedding kernels; see embeddings.h. Every expression mirrors the JavaScript loop it
// replaces (src/kernels/sparse-js.ts) so that both give the same bits.

#include "strict_fp.h"  // first: JavaScript never fuses a*b+c

#include "embeddings.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

namespace resflow {
namespace {

// How many examples (lookup) or touched rows (update) ahead to prefetch: enough to cover a DRAM
// miss at a few ns of work per row.
constexpr size_t kPrefetch = 8;
// How many examples ahead sum_gradients fetches its slice of grad_x.
constexpr size_t kPrefetchGrad = 16;
// Examples per lookup task, and tables per lookup task.
constexpr size_t kLookupChunk = 256;
constexpr size_t kLookupGroup = 4;
// Below this many ids a call stays on one thread (waking a worker costs more).
constexpr size_t kParallelMinIds = 4096;

inline void prefetch_row(const float* p, int32_t dim, bool write) {
#if defined(__GNUC__) || defined(__clang__)
  const char* c = reinterpret_cast<const char*>(p);
  const size_t bytes = static_cast<size_t>(dim) * sizeof(float);
  for (size_t b = 0; b < bytes; b += 64) {
    if (write) __builtin_prefetch(c + b, 1, 3);
    else __builtin_prefetch(c + b, 0, 3);
  }
  if (write) __builtin_prefetch(c + bytes - 1, 1, 3);
  else __builtin_prefetch(c + bytes - 1, 0, 3);
#else
  (void)p, (void)dim, (void)write;
#endif
}

// One row of dim floats. The common widths are fixed-length copies the compiler does in a few
// vector moves; a variable-length memcpy was a library call per row (~2% of a training step).
inline void copy_row(float* dst, const float* src, size_t dim) {
  switch (dim) {
    case 8: std::memcpy(dst, src, 8 * sizeof(float)); return;
    case 16: std::memcpy(dst, src, 16 * sizeof(float)); return;
    case 32: std::memcpy(dst, src, 32 * sizeof(float)); return;
    case 64: std::memcpy(dst, src, 64 * sizeof(float)); return;
    default: std::memcpy(dst, src, dim * sizeof(float));
  }
}

// Example i of one table into x, prefetching the rows of example `ahead` (none if ahead >= end).
inline void gather_one(const EmbeddingTableView& t, size_t i, size_t ahead, size_t end, float* x, size_t D) {
  const size_t dim = static_cast<size_t>(t.dim);
  const size_t w = static_cast<size_t>(t.width);
  const float* W = t.weights;
  if (ahead < end) {
    for (size_t j = 0; j < w; ++j) {
      const int32_t r = t.ids[ahead * w + j];
      if (r >= 0) prefetch_row(W + static_cast<size_t>(r) * dim, t.dim, false);
    }
  }
  float* dst = x + i * D + static_cast<size_t>(t.offset);
  if (w == 1) {
    const int32_t r = t.ids[i];
    if (r < 0) std::memset(dst, 0, dim * sizeof(float));
    else copy_row(dst, W + static_cast<size_t>(r) * dim, dim);
    return;
  }
  std::memset(dst, 0, dim * sizeof(float));
  int count = 0;
  for (size_t j = 0; j < w; ++j) {
    const int32_t r = t.ids[i * w + j];
    if (r < 0) continue;
    ++count;
    const float* src = W + static_cast<size_t>(r) * dim;
    for (size_t d = 0; d < dim; ++d) dst[d] += src[d];
  }
  if (t.mean && count > 1) {
    const double inv = 1.0 / count;
    for (size_t d = 0; d < dim; ++d) dst[d] = static_cast<float>(static_cast<double>(dst[d]) * inv);
  }
}

// Examples [i0, i1) of tables [t0, t1) into x, example by example: an example's columns of these
// tables are next to each other in x, so its writes fill whole lines, and its tables' rows are
// fetched together (a table at a time was ~20% slower: a 64-byte write per 1,280-byte row of x).
void gather(const std::vector<EmbeddingTableView>& tables, size_t t0, size_t t1, size_t i0, size_t i1, float* x,
            size_t D) {
  for (size_t i = i0; i < i1; ++i)
    for (size_t t = t0; t < t1; ++t) gather_one(tables[t], i, i + kPrefetch, i1, x, D);
}

// Sums the table's columns of grad_x per distinct row, in example order; returns the number of
// distinct rows (listed in s.touched, sums in s.acc).
size_t sum_gradients(const EmbeddingTableView& t, size_t n, const float* grad_x, size_t D,
                     EmbeddingEngine::Scratch& s) {
  const size_t dim = static_cast<size_t>(t.dim);
  const size_t w = static_cast<size_t>(t.width);
  int32_t* slot = s.slot.data();
  int32_t* touched = s.touched.data();
  float* acc = s.acc.data();
  size_t count = 0;
  for (size_t i = 0; i < n; ++i) {
    const float* g = grad_x + i * D + static_cast<size_t>(t.offset);
    // grad_x's rows are D floats apart (a stride the hardware prefetchers barely follow) and were
    // just written, half of them by the other core: fetched ahead, like the rows in apply_rows.
    if (i + kPrefetchGrad < n) prefetch_row(g + kPrefetchGrad * D, t.dim, false);
    double scale = 1.0;
    if (w > 1) {
      int present = 0;
      for (size_t j = 0; j < w; ++j) present += t.ids[i * w + j] >= 0;
      if (present == 0) continue;
      if (t.mean) scale = 1.0 / present;
    }
    for (size_t j = 0; j < w; ++j) {
      const int32_t r = t.ids[i * w + j];
      if (r < 0) continue;
      int32_t k = slot[r];
      if (k < 0) {
        k = static_cast<int32_t>(count++);
        slot[r] = k;
        touched[k] = r;
        float* a = acc + static_cast<size_t>(k) * dim;
        for (size_t d = 0; d < dim; ++d) a[d] = static_cast<float>(static_cast<double>(g[d]) * scale);
      } else {
        float* a = acc + static_cast<size_t>(k) * dim;
        for (size_t d = 0; d < dim; ++d)
          a[d] = static_cast<float>(static_cast<double>(a[d]) + static_cast<double>(g[d]) * scale);
      }
    }
  }
  return count;
}

// Applies the optimizer to the touched rows; false when a slot is out of range (see update()).
bool apply_rows(SparseOptimizer opt, const SparseHyper& h, const EmbeddingTableView& t, size_t count,
                const EmbeddingEngine::Scratch& s) {
  const size_t dim = static_cast<size_t>(t.dim);
  const int32_t* rows = s.touched.data();
  const float* grad = s.acc.data();
  float* W = t.weights;
  float* M = t.m;
  float* V = t.v;
  int32_t used = t.used != nullptr ? *t.used : 0;
  const double c1 = 1 - h.beta1;
  const double c2 = 1 - h.beta2;
  bool ok = true;
  for (size_t k = 0; k < count; ++k) {
    // the index entry two strides ahead, then (its entry now cached) the row and its state one stride ahead
#if defined(__GNUC__) || defined(__clang__)
    if (M != nullptr && k + 2 * kPrefetch < count) __builtin_prefetch(t.slot_of + rows[k + 2 * kPrefetch], 0, 3);
#endif
    if (k + kPrefetch < count) {
      const int32_t ahead_row = rows[k + kPrefetch];
      prefetch_row(W + static_cast<size_t>(ahead_row) * dim, t.dim, true);
      if (M != nullptr) {
        const int32_t ahead_slot = t.slot_of[ahead_row];
        if (ahead_slot > 0 && ahead_slot <= t.capacity) {
          const size_t at = static_cast<size_t>(ahead_slot - 1) * dim;
          prefetch_row(M + at, t.dim, true);
          if (V != nullptr) prefetch_row(V + at, t.dim, true);
        }
      }
    }
    const size_t base = static_cast<size_t>(rows[k]) * dim;
    const float* gk = grad + k * dim;
    if (opt == SparseOptimizer::kSgd) {
      for (size_t d = 0; d < dim; ++d)
        W[base + d] = static_cast<float>(static_cast<double>(W[base + d]) - h.lr * static_cast<double>(gk[d]));
      continue;
    }
    int32_t slot = t.slot_of[rows[k]];
    const bool fresh = slot == 0;
    if (fresh) {
      if (used >= t.capacity) { ok = false; break; }
      slot = ++used;
      t.slot_of[rows[k]] = slot;
    } else if (slot < 0 || slot > used) {
      ok = false;
      break;
    }
    const size_t sb = static_cast<size_t>(slot - 1) * dim;
    if (opt == SparseOptimizer::kAdagrad) {
      for (size_t d = 0; d < dim; ++d) {
        const double g = gk[d];
        const size_t i = base + d;
        const size_t a = sb + d;
        M[a] = static_cast<float>(static_cast<double>(M[a]) + g * g);
        W[i] = static_cast<float>(static_cast<double>(W[i]) - (h.lr * g) / (std::sqrt(static_cast<double>(M[a])) + h.epsilon));
      }
    } else {
      // Adam's state starts at zero, so a new slot's moments are not read but taken as 0.0f (the
      // same value, so the same bits): a slot's page is often touched here for the first time, and
      // reading it first would map the shared zero page, making the write that follows a second
      // fault with a TLB shootdown across the process's threads (a quarter of a step's time on
      // 1M-row tables, README.md "What fits in 24 GiB").
      for (size_t d = 0; d < dim; ++d) {
        const double g = gk[d];
        const size_t i = base + d;
        const size_t a = sb + d;
        const float m0 = fresh ? 0.0f : M[a];
        const float v0 = fresh ? 0.0f : V[a];
        const double m = h.beta1 * static_cast<double>(m0) + c1 * g;
        const double v = h.beta2 * static_cast<double>(v0) + c2 * g * g;
        M[a] = static_cast<float>(m);
        V[a] = static_cast<float>(v);
        W[i] = static_cast<float>(static_cast<double>(W[i]) - (h.lr_t * m) / (std::sqrt(v) + h.eps_hat));
      }
    }
  }
  if (t.used != nullptr) *t.used = used;
  return ok;
}

size_t total_ids(const std::vector<EmbeddingTableView>& tables, size_t n) {
  size_t ids = 0;
  for (const EmbeddingTableView& t : tables) ids += n * static_cast<size_t>(t.width);
  return ids;
}

struct LookupJob {
  const std::vector<EmbeddingTableView>* tables;
  size_t n, D, chunks, groups;
  float* x;
  std::atomic<size_t> next{0};
};

void lookup_entry(void* ctx, int /*slot*/) noexcept {
  LookupJob& job = *static_cast<LookupJob*>(ctx);
  const size_t tasks = job.groups * job.chunks;
  for (size_t task; (task = job.next.fetch_add(1, std::memory_order_relaxed)) < tasks;) {
    const size_t t0 = (task / job.chunks) * kLookupGroup;
    const size_t i0 = (task % job.chunks) * kLookupChunk;
    gather(*job.tables, t0, std::min(job.tables->size(), t0 + kLookupGroup), i0, std::min(job.n, i0 + kLookupChunk), job.x, job.D);
  }
}

struct UpdateJob {
  const std::vector<EmbeddingTableView>* tables;
  SparseOptimizer opt;
  const SparseHyper* hyper;
  size_t n, D;
  const float* grad_x;
  EmbeddingEngine::Scratch* scratch;
  std::atomic<size_t> next{0};
  std::atomic<bool> ok{true};
};

void update_entry(void* ctx, int slot) noexcept {
  UpdateJob& job = *static_cast<UpdateJob*>(ctx);
  EmbeddingEngine::Scratch& s = job.scratch[slot];
  for (size_t ti; (ti = job.next.fetch_add(1, std::memory_order_relaxed)) < job.tables->size();) {
    const EmbeddingTableView& t = (*job.tables)[ti];
    const size_t count = sum_gradients(t, job.n, job.grad_x, job.D, s);
    if (!apply_rows(job.opt, *job.hyper, t, count, s)) job.ok.store(false, std::memory_order_relaxed);
    for (size_t k = 0; k < count; ++k) s.slot[static_cast<size_t>(s.touched[k])] = -1;
  }
}

}  // namespace

void EmbeddingEngine::lookup(const std::vector<EmbeddingTableView>& tables, size_t n, float* x, size_t D,
                             int threads) {
  if (n == 0 || tables.empty()) return;
  LookupJob job;
  job.tables = &tables;
  job.n = n;
  job.D = D;
  job.x = x;
  job.chunks = (n + kLookupChunk - 1) / kLookupChunk;
  job.groups = (tables.size() + kLookupGroup - 1) / kLookupGroup;
  const size_t tasks = job.groups * job.chunks;
  if (threads > 1 && total_ids(tables, n) >= kParallelMinIds) threads = pool_.ensure(threads);
  else threads = 1;
  pool_.run(static_cast<int>(std::min(static_cast<size_t>(threads), tasks)), lookup_entry, &job);
}

namespace {
struct LookupRows {
  const std::vector<EmbeddingTableView>* tables;
  float* x;
  size_t D;
};

void fill_rows(void* ctx, size_t i0, size_t i1) noexcept {
  const LookupRows& r = *static_cast<const LookupRows*>(ctx);
  gather(*r.tables, 0, r.tables->size(), i0, i1, r.x, r.D);
}

// Into L2, not L1 (locality 2: prefetcht1): a row block's rows (60-120 KB for 48 rows of 20 tables
// of dim 16, a row on one or two lines) arrive while the product works on the block before, whose
// panels L1 holds; fetched into L1 they evicted those panels and each other, for no gain.
void prefetch_rows(void* ctx, size_t i0, size_t i1) noexcept {
  const LookupRows& r = *static_cast<const LookupRows*>(ctx);
  for (const EmbeddingTableView& t : *r.tables) {
    const size_t w = static_cast<size_t>(t.width), bytes = static_cast<size_t>(t.dim) * sizeof(float);
    for (size_t k = i0 * w; k < i1 * w; ++k) {
      if (t.ids[k] < 0) continue;
      const char* c = reinterpret_cast<const char*>(t.weights + static_cast<size_t>(t.ids[k]) * static_cast<size_t>(t.dim));
#if defined(__GNUC__) || defined(__clang__)
      for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 0, 2);
      __builtin_prefetch(c + bytes - 1, 0, 2);
#else
      (void)c, (void)bytes;
#endif
    }
  }
}
}  // namespace

void EmbeddingEngine::lookup_sgemm(const std::vector<EmbeddingTableView>& tables, size_t n, float* x, size_t D,
                                   GemmEngine& gemm, const float* W, size_t N, float* C, int threads,
                                   const Epilogue& epi) {
  LookupRows ctx{&tables, x, D};
  RowSource rows;
  rows.fill = fill_rows;
  rows.prefetch = prefetch_rows;
  rows.ctx = &ctx;
  gemm.sgemm(false, false, n, N, D, x, W, C, threads, epi, &rows);
}

bool EmbeddingEngine::update(SparseOptimizer opt, const SparseHyper& hyper, const std::vector<EmbeddingTableView>& tables,
                             size_t n, const float* grad_x, size_t D, int threads) {
  if (n == 0 || tables.empty()) return true;
  if (threads > 1 && total_ids(tables, n) >= kParallelMinIds) threads = pool_.ensure(threads);
  else threads = 1;
  threads = static_cast<int>(std::min(static_cast<size_t>(threads), tables.size()));
  // Working memory for the largest table, grown here before any worker runs.
  size_t max_rows = 0, max_ids = 0, max_acc = 0;
  for (const EmbeddingTableView& t : tables) {
    const size_t ids = std::min(n * static_cast<size_t>(t.width), static_cast<size_t>(t.rows));
    max_rows = std::max(max_rows, static_cast<size_t>(t.rows));
    max_ids = std::max(max_ids, ids);
    max_acc = std::max(max_acc, ids * static_cast<size_t>(t.dim));
  }
  if (scratch_.size() < static_cast<size_t>(threads)) scratch_.resize(static_cast<size_t>(threads));
  for (int k = 0; k < threads; ++k) {
    Scratch& s = scratch_[static_cast<size_t>(k)];
    if (s.slot.size() < max_rows) s.slot.resize(max_rows, -1);
    if (s.touched.size() < max_ids) s.touched.resize(max_ids);
    if (s.acc.size() < max_acc) s.acc.resize(max_acc);
  }
  UpdateJob job;
  job.tables = &tables;
  job.opt = opt;
  job.hyper = &hyper;
  job.n = n;
  job.D = D;
  job.grad_x = grad_x;
  job.scratch = scratch_.data();
  pool_.run(threads, update_entry, &job);
  return job.ok.load();
}

}  // namespace resflow
