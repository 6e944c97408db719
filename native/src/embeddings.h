// Sparse embedding kernels for resflow: the gather/pool of a batch's rows into the model's input
// matrix, and the row-wise optimizer step on the rows a batch touched.
//
// They compute exactly what src/kernels/sparse-js.ts's JavaScript loops compute, bit for bit:
// the same operations in the same order, in double precision where JavaScript works in doubles,
// rounded to float32 where JavaScript stores into a Float32Array, and with no fused multiply-adds
// (embeddings.cc turns contraction off). The native path is only faster: work is spread over
// threads (the update gives each table to one thread, which works it in example order, so results
// do not depend on the thread count; the lookup, where examples are independent, takes blocks of
// tables x examples) and rows are prefetched ahead of use, since a step's cost is dominated by
// cache misses on randomly touched rows of large tables.
#ifndef RESFLOW_EMBEDDINGS_H_
#define RESFLOW_EMBEDDINGS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "gemm.h"

namespace resflow {

// One table and the batch's ids for it.
struct EmbeddingTableView {
  float* weights;        // rows * dim
  // The optimizer state, allocated per row on first touch (src/kernels/row-state.ts): slot_of[row]
  // is 0 for a row without state, else 1 + its slot; slot k's state is at [k * dim, (k + 1) * dim)
  // of m (and v). A touched row without a slot takes slot *used (then ++*used); the caller has
  // made room (capacity slots, initialised) for every row the batch could touch for the first time.
  float* m;              // Adam first moment or Adagrad accumulator (capacity * dim), or null
  float* v;              // Adam second moment (capacity * dim), or null
  int32_t* slot_of;      // rows entries, or null when m is null
  int32_t* used;         // slots in use, updated in place, or null when m is null
  int32_t capacity;      // slots m (and v) have room for
  const int32_t* ids;    // n * width ids in [-1, rows); -1 = absent (padding or missing value)
  int32_t rows;
  int32_t dim;
  int32_t width;         // ids per example: 1 for a single-valued feature, more for a list
  int32_t offset;        // first column of this table in the input matrix
  bool mean;             // list pooling: mean (else sum)
};

enum class SparseOptimizer : int { kSgd = 0, kAdagrad = 1, kAdam = 2 };

struct SparseHyper {
  double lr;        // SGD and Adagrad learning rate
  double epsilon;   // Adagrad epsilon
  double beta1;     // Adam
  double beta2;
  double lr_t;      // Adam step size with the bias corrections of this step folded in
  double eps_hat;   // Adam epsilon scaled likewise
};

class EmbeddingEngine {
 public:
  explicit EmbeddingEngine(ThreadPool& pool) : pool_(pool) {}

  // x[i, offset + d] = pooled embedding of example i, for every table; x is [n, D] row-major. All
  // of a table's columns are written (zeros where an example has no id).
  void lookup(const std::vector<EmbeddingTableView>& tables, size_t n, float* x, size_t D, int threads);

  // lookup() fused into the product that reads x: C = act(x·W + bias) + residual (gemm.h's
  // epilogue; W is D x N), x written row block by row block just before the product reads it,
  // the next block's table rows prefetched while it computes. x and C are the same as lookup()
  // then sgemm() give.
  void lookup_sgemm(const std::vector<EmbeddingTableView>& tables, size_t n, float* x, size_t D, GemmEngine& gemm,
                    const float* W, size_t N, float* C, int threads, const Epilogue& epi);

  // Sums grad_x's columns of each table per distinct touched row (in example order), then applies
  // the optimizer to those rows, giving rows without state the next slots in that order. May
  // throw std::bad_alloc before anything is written. Returns false if a table's slot_of held a
  // slot beyond *used or room ran out (the caller broke the contract above); that table's update
  // stopped at that row.
  bool update(SparseOptimizer opt, const SparseHyper& hyper, const std::vector<EmbeddingTableView>& tables,
              size_t n, const float* grad_x, size_t D, int threads);

  // Per-thread working memory: a row -> slot map kept at -1 between calls, the touched rows and
  // their summed gradients.
  struct Scratch {
    std::vector<int32_t> slot;
    std::vector<int32_t> touched;
    std::vector<float> acc;
  };

 private:
  ThreadPool& pool_;
  std::vector<Scratch> scratch_;
};

}  // namespace resflow

#endif  // RESFLOW_EMBEDDINGS_H_
