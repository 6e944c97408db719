// N-API binding of the GEMM (plain C API, node_api.h; no node-addon-api):
//
//   sgemm(transA, transB, M, N, K, A, B, C, threads?) -> undefined
//     C[M,N] = op(A) * op(B), row-major float32; op = transpose when the flag is true.
//     A: Float32Array of >= M*K elements ([M,K], or [K,M] when transA), B >= K*N ([K,N] or [N,K]),
//     C >= M*N, written in place. The arrays are used where they are (views into a
//     WebAssembly.Memory are fine): no copies. C must not overlap A or B. threads: 1..64
//     (default 1); results are bit-identical whatever it is. bias (a Float32Array of >= N, or
//     null) and activation (0 linear, 1 relu) give C = act(op(A) * op(B) + bias), applied to each
//     block of C as it is finished: the same bits as a separate bias add and relu. residual (a
//     Float32Array of >= M*N, or null, not overlapping C) is then added: C = act(...) + residual.
//   info() -> { simd, vectorBytes, mr, nr, kc, mc, maxThreads, hardwareThreads, compiler, version }
//
//   embeddingLookup(weights, ids, layout, n, x, D, threads?) -> undefined
//   embeddingUpdateLazy(optimizer, hyper, weights, m, v, slotOf, used, ids, layout, n, gradX, D, threads?) -> undefined
//     The sparse embedding kernels of embeddings.h over T tables. weights, ids (and m, v, slotOf)
//     are arrays of T Float32Arrays / Int32Arrays; layout is an Int32Array of T records
//     [rows, dim, width, offset, mean]; x and gradX are [n, D] Float32Arrays. optimizer is 0 (sgd),
//     1 (adagrad: m is the accumulator) or 2 (adam); m, v, slotOf and used may be null where the
//     optimizer has no use for them. The optimizer state is allocated per row on first touch
//     (embeddings.h, src/kernels/row-state.ts): m[t] / v[t] hold it by slot, slotOf[t] (rows
//     entries) maps a row to 1 + its slot (0: none), used (an Int32Array, one per table) counts
//     the slots in use and is updated in place; m[t] and v[t] must have room for
//     used[t] + min(n * width, rows - used[t]) slots. hyper is a Float64Array
//     [lr, epsilon, beta1, beta2, lrT, epsHat]. Every id must lie in [-1, rows). (Version 3;
//     version 2's embeddingUpdate took m and v of rows * dim.)
//
//   embeddingSgemm(weights, ids, layout, n, x, D, W, N, C, threads?, bias?, activation?, residual?) -> undefined
//     embeddingLookup(weights, ids, layout, n, x, D) fused with sgemm(false, false, n, N, D, x, W, C,
//     threads, bias, activation, residual): each row block of x is looked up just before the product
//     reads it, and the next block's table rows are prefetched meanwhile (embeddings.h). x and C get
//     the bits the two calls give; x's columns no table covers are read as they are. x must not
//     overlap W, C, the bias or the residual. (Version 6 on.)
//
//   adamStep(value, m, v, grad, constants, threads?) -> undefined
//     One tfjs Adam step on a variable in place (adam.h): value, m, v, grad are Float32Arrays of
//     the same length (grad may be longer), not overlapping; constants is a Float32Array [beta1,
//     1 - beta1, beta2, 1 - beta2, 1 - accBeta1, 1 - accBeta2, epsilon, -lr].
//
//   reluBackward(dy, y, dz, threads?) -> undefined
//     The gradient of a relu output y (relu.h): dz = dy * step(y) as tfjs computes it (NaN where y
//     is NaN). dy, y, dz are Float32Arrays of the length of y (dy, dz at least that); dz must not
//     overlap y (it may be dy itself). (Version 4 on.)
//
//   addArrays(a, b, out, threads?) -> undefined
//     out = a + b element-wise (add.h) for the length of a; b and out at least that long; out may
//     be a or b itself, else must not overlap them. (Version 5 on.)
//
//   adviseHugePages(buffer) -> { offset, bytes }
//     Transparent huge pages for an ArrayBuffer's memory (huge_pages.h): madvise(MADV_HUGEPAGE) on
//     the whole 2 MiB pages inside it. offset: bytes from the buffer's start to its first 2 MiB
//     boundary (where arrays meant for huge pages should start); bytes: how many bytes from there
//     were advised (0 where none fits, or the system takes no such advice). Contents unchanged.
//     (Version 7 on.)
//
//   threads (1..64, default 1) splits these element-wise passes over the pool (parallel_for.h);
//   the same bits whatever it is. Version 5 on: earlier builds ignore it.
//
// Every argument is checked (types, integer ranges, lengths, detached buffers, overlap) before
// any memory is touched; a bad call throws a TypeError/RangeError. The work is done on the
// calling thread and a persistent pool; all of it is finished when sgemm returns. Each Node
// environment (main thread, worker_threads) gets its own pool, joined when the environment exits.
#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <new>
#include <thread>
#include <vector>

#include "adam.h"
#include "add.h"
#include "embeddings.h"
#include "gemm.h"
#include "huge_pages.h"
#include "parallel_for.h"
#include "relu.h"

#define RESFLOW_NATIVE_VERSION "7"

namespace {

struct Instance {
  resflow::ThreadPool pool;  // declared first: destroyed (joined) after the engines that use it
  resflow::GemmEngine gemm{pool};
  resflow::EmbeddingEngine embeddings{pool};
};

// Throws the pending N-API error (if any call failed without throwing) and returns nullptr.
#define NAPI_CALL(env, call)                                                          \
  do {                                                                                \
    napi_status status_ = (call);                                                     \
    if (status_ != napi_ok) {                                                         \
      const napi_extended_error_info* info_ = nullptr;                                \
      napi_get_last_error_info((env), &info_);                                        \
      bool pending_ = false;                                                          \
      napi_is_exception_pending((env), &pending_);                                    \
      if (!pending_) {                                                                \
        const char* msg_ = (info_ != nullptr && info_->error_message != nullptr)      \
                               ? info_->error_message                                 \
                               : "N-API call failed";                                 \
        napi_throw_error((env), nullptr, msg_);                                       \
      }                                                                               \
      return nullptr;                                                                 \
    }                                                                                 \
  } while (0)

napi_value throw_type(napi_env env, const char* msg) {
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return nullptr;
}

napi_value throw_range(napi_env env, const char* msg) {
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return nullptr;
}

// Reads a boolean argument; false with an exception pending on failure.
bool get_bool(napi_env env, napi_value v, const char* name, bool* out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_boolean) {
    char msg[96];
    snprintf(msg, sizeof msg, "sgemm: %s must be a boolean", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  return napi_get_value_bool(env, v, out) == napi_ok;
}

// Reads an integer argument in [lo, hi]; false with an exception pending on failure.
bool get_int(napi_env env, const char* fn, napi_value v, const char* name, double lo, double hi, int64_t* out) {
  napi_valuetype t;
  double d = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: %s must be a number", fn, name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > hi) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: %s must be an integer in [%.0f, %.0f], got %g", fn, name, lo, hi, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

struct F32 {
  float* data;
  size_t length;
};

// Reads a typed array argument of type `type` (called `type_name` in messages) that must hold at
// least `need` elements; false with an exception pending on failure.
bool get_typed(napi_env env, const char* fn, napi_value v, const char* name, napi_typedarray_type type,
               const char* type_name, size_t need, void** out_data, size_t* out_length = nullptr) {
  bool is_ta = false;
  char msg[192];
  napi_typedarray_type have;
  size_t length = 0, byte_offset = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &have, &length, &data, &buffer, &byte_offset) != napi_ok || have != type) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) {
      snprintf(msg, sizeof msg, "%s: %s must be a %s", fn, name, type_name);
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    }
    return false;
  }
  bool detached = false;
  bool is_ab = false;
  // SharedArrayBuffers (threaded wasm memory) cannot be detached; napi_is_detached_arraybuffer
  // only applies to ArrayBuffers.
  if (napi_is_arraybuffer(env, buffer, &is_ab) == napi_ok && is_ab &&
      napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && detached) {
    snprintf(msg, sizeof msg, "%s: %s is a view of a detached ArrayBuffer (wasm memory grew?)", fn, name);
    napi_throw_type_error(env, "ERR_INVALID_STATE", msg);
    return false;
  }
  if (length < need) {
    snprintf(msg, sizeof msg, "%s: %s has %zu elements, needs at least %zu", fn, name, length, need);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  if (need > 0 && data == nullptr) {
    snprintf(msg, sizeof msg, "%s: %s has no data", fn, name);
    napi_throw_type_error(env, "ERR_INVALID_STATE", msg);
    return false;
  }
  *out_data = data;
  if (out_length != nullptr) *out_length = length;
  return true;
}

bool get_f32(napi_env env, const char* fn, napi_value v, const char* name, size_t need, F32* out) {
  void* data = nullptr;
  if (!get_typed(env, fn, v, name, napi_float32_array, "Float32Array", need, &data)) return false;
  out->data = static_cast<float*>(data);
  out->length = need;
  return true;
}

// Reads a Float32Array argument whole: its length sets the size the other arguments must match.
bool get_f32_whole(napi_env env, const char* fn, napi_value v, const char* name, F32* out) {
  void* data = nullptr;
  size_t n = 0;
  if (!get_typed(env, fn, v, name, napi_float32_array, "Float32Array", 0, &data, &n)) return false;
  *out = F32{static_cast<float*>(data), n};
  return true;
}

bool overlaps(const F32& x, const F32& y) {
  if (x.length == 0 || y.length == 0) return false;
  const uintptr_t x0 = reinterpret_cast<uintptr_t>(x.data), x1 = x0 + x.length * sizeof(float);
  const uintptr_t y0 = reinterpret_cast<uintptr_t>(y.data), y1 = y0 + y.length * sizeof(float);
  return x0 < y1 && y0 < x1;
}

// Dimensions up to 2^31 - 1 each, and each matrix up to 2^40 elements (far beyond memory) and
// small enough that its size in bytes fits a size_t (32-bit platforms), so that no size_t product
// below overflows.
constexpr double kMaxDim = 2147483647.0;
constexpr double kMaxElems =
    static_cast<double>(SIZE_MAX / 8) < 1099511627776.0 ? static_cast<double>(SIZE_MAX / 8) : 1099511627776.0;

// Reads the optional threads argument (default 1).
bool get_threads(napi_env env, const char* fn, size_t argc, napi_value* argv, size_t at, int64_t* threads) {
  *threads = 1;
  if (argc <= at) return true;
  napi_valuetype t;
  if (napi_typeof(env, argv[at], &t) != napi_ok) return false;
  return t == napi_undefined || get_int(env, fn, argv[at], "threads", 1, 64, threads);
}

// The addon instance of this Node environment; null with an exception pending when missing.
Instance* instance_of(napi_env env, const char* fn) {
  Instance* inst = nullptr;
  if (napi_get_instance_data(env, reinterpret_cast<void**>(&inst)) != napi_ok || inst == nullptr) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: addon not initialised", fn);
    napi_throw_error(env, nullptr, msg);
    return nullptr;
  }
  return inst;
}

// The start of every binding: its arguments (up to N; *argc gets how many were passed) and the addon
// instance. Null, with an exception pending, when the call failed or passed fewer than min_args;
// `usage` is the signature the TypeError quotes.
template <size_t N>
Instance* open_call(napi_env env, napi_callback_info cbinfo, const char* fn, const char* usage, size_t min_args,
                    napi_value (&argv)[N], size_t* argc) {
  *argc = N;
  if (napi_get_cb_info(env, cbinfo, argc, argv, nullptr, nullptr) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, nullptr, "resflow_native: could not read the arguments");
    return nullptr;
  }
  if (*argc < min_args) {
    char msg[224];
    snprintf(msg, sizeof msg, "%s needs at least %zu arguments", usage, min_args);
    throw_type(env, msg);
    return nullptr;
  }
  return instance_of(env, fn);
}

// The optional epilogue arguments bias, activation, residual at argv[first], [first + 1],
// [first + 2] of a product with the M x N output c (gemm.h's Epilogue: bias a Float32Array of >= N
// or null, activation 0 linear or 1 relu, residual a Float32Array of >= M*N or null; neither
// overlapping c); false with an exception pending when one is bad.
bool get_epilogue(napi_env env, const char* fn, size_t argc, napi_value* argv, size_t first, size_t M, size_t N,
                  const F32& c, resflow::Epilogue* epi) {
  char msg[128];
  const auto given = [&](size_t i, bool null_counts) {
    napi_valuetype t = napi_undefined;
    if (argc > i) napi_typeof(env, argv[i], &t);
    return t != napi_undefined && (null_counts || t != napi_null);
  };
  if (given(first, false)) {
    F32 bias;
    if (!get_f32(env, fn, argv[first], "bias", N, &bias)) return false;
    if (overlaps(c, bias)) {
      snprintf(msg, sizeof msg, "%s: C must not overlap the bias", fn);
      throw_range(env, msg);
      return false;
    }
    epi->bias = bias.data;
  }
  if (given(first + 1, true)) {
    int64_t act = 0;
    if (!get_int(env, fn, argv[first + 1], "activation", 0, 1, &act)) return false;
    epi->act = static_cast<resflow::Activation>(act);
  }
  if (given(first + 2, false)) {
    F32 res;
    if (!get_f32(env, fn, argv[first + 2], "residual", M * N, &res)) return false;
    if (overlaps(c, res)) {
      snprintf(msg, sizeof msg, "%s: C must not overlap the residual", fn);
      throw_range(env, msg);
      return false;
    }
    epi->residual = res.data;
  }
  return true;
}

napi_value Sgemm(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 0;
  napi_value argv[12];
  Instance* inst = open_call(env, cbinfo, "sgemm", "sgemm(transA, transB, M, N, K, A, B, C, threads?, bias?, activation?, residual?)", 8, argv, &argc);
  if (inst == nullptr) return nullptr;

  bool ta = false, tb = false;
  int64_t M = 0, N = 0, K = 0, threads = 1;
  if (!get_bool(env, argv[0], "transA", &ta) || !get_bool(env, argv[1], "transB", &tb)) return nullptr;
  if (!get_int(env, "sgemm", argv[2], "M", 0, kMaxDim, &M) || !get_int(env, "sgemm", argv[3], "N", 0, kMaxDim, &N) ||
      !get_int(env, "sgemm", argv[4], "K", 0, kMaxDim, &K))
    return nullptr;
  if (!get_threads(env, "sgemm", argc, argv, 8, &threads)) return nullptr;
  const double mk = static_cast<double>(M) * K, kn = static_cast<double>(K) * N, mn = static_cast<double>(M) * N;
  if (mk > kMaxElems || kn > kMaxElems || mn > kMaxElems) return throw_range(env, "sgemm: matrices too large");
  F32 a, b, c;
  if (!get_f32(env, "sgemm", argv[5], "A", static_cast<size_t>(M) * K, &a) ||
      !get_f32(env, "sgemm", argv[6], "B", static_cast<size_t>(K) * N, &b) ||
      !get_f32(env, "sgemm", argv[7], "C", static_cast<size_t>(M) * N, &c))
    return nullptr;
  if (overlaps(c, a) || overlaps(c, b)) return throw_range(env, "sgemm: C must not overlap A or B");
  resflow::Epilogue epi;
  if (!get_epilogue(env, "sgemm", argc, argv, 9, static_cast<size_t>(M), static_cast<size_t>(N), c, &epi)) return nullptr;
  try {
    inst->gemm.sgemm(ta, tb, static_cast<size_t>(M), static_cast<size_t>(N), static_cast<size_t>(K), a.data, b.data,
                     c.data, static_cast<int>(threads), epi);
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "sgemm: out of memory for packing buffers");
    return nullptr;
  } catch (...) {
    napi_throw_error(env, nullptr, "sgemm: unexpected C++ exception");
    return nullptr;
  }
  return nullptr;  // undefined
}

// ---------------------------------------------------------------------------------------------
// Embedding kernels
// ---------------------------------------------------------------------------------------------

// The T-element array argument `name`; false with an exception pending when it is not an array
// of that length.
bool get_array(napi_env env, const char* fn, napi_value v, const char* name, uint32_t want, std::vector<napi_value>* out) {
  bool is_array = false;
  uint32_t length = 0;
  char msg[160];
  if (napi_is_array(env, v, &is_array) != napi_ok || !is_array || napi_get_array_length(env, v, &length) != napi_ok) {
    snprintf(msg, sizeof msg, "%s: %s must be an array", fn, name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  if (length != want) {
    snprintf(msg, sizeof msg, "%s: %s has %u entries, expected one per table (%u)", fn, name, length, want);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  out->resize(length);
  for (uint32_t i = 0; i < length; ++i)
    if (napi_get_element(env, v, i, &(*out)[i]) != napi_ok) return false;
  return true;
}

// Reads and checks the tables of an embedding call: layout, weights, ids (every id in
// [-1, rows)) and, as `slots` asks (0: none, 1: m, 2: m and v), the optimizer state: m (and v)
// by slot, slot_of (rows entries) per table and used (one count per table, in [0, rows]), with
// room in m and v for every row the batch could touch for the first time. n and D are the
// batch's examples and the input matrix's columns.
bool get_tables(napi_env env, const char* fn, napi_value layout_v, napi_value weights_v, napi_value ids_v,
                napi_value m_v, napi_value v_v, napi_value slot_of_v, napi_value used_v, int slots, size_t n, size_t D,
                std::vector<resflow::EmbeddingTableView>* out) {
  char msg[200];
  void* layout_data = nullptr;
  size_t layout_len = 0;
  if (!get_typed(env, fn, layout_v, "layout", napi_int32_array, "Int32Array", 0, &layout_data, &layout_len)) return false;
  if (layout_len % 5 != 0) {
    snprintf(msg, sizeof msg, "%s: layout has %zu elements; needs [rows, dim, width, offset, mean] per table", fn, layout_len);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  const int32_t* layout = static_cast<const int32_t*>(layout_data);
  const uint32_t T = static_cast<uint32_t>(layout_len / 5);
  std::vector<napi_value> weights, ids, ms, vs, slot_ofs;
  int32_t* used = nullptr;
  if (!get_array(env, fn, weights_v, "weights", T, &weights) || !get_array(env, fn, ids_v, "ids", T, &ids)) return false;
  if (slots >= 1) {
    void* used_data = nullptr;
    if (!get_array(env, fn, m_v, "m", T, &ms) || !get_array(env, fn, slot_of_v, "slotOf", T, &slot_ofs) ||
        !get_typed(env, fn, used_v, "used", napi_int32_array, "Int32Array", T, &used_data))
      return false;
    used = static_cast<int32_t*>(used_data);
  }
  if (slots >= 2 && !get_array(env, fn, v_v, "v", T, &vs)) return false;
  out->assign(T, resflow::EmbeddingTableView{});
  for (uint32_t t = 0; t < T; ++t) {
    resflow::EmbeddingTableView& view = (*out)[t];
    const int32_t* rec = layout + 5 * t;
    view.rows = rec[0], view.dim = rec[1], view.width = rec[2], view.offset = rec[3], view.mean = rec[4] != 0;
    if (view.rows < 0 || view.dim < 1 || view.width < 1 || view.offset < 0 ||
        static_cast<size_t>(view.offset) + static_cast<size_t>(view.dim) > D || (rec[4] != 0 && rec[4] != 1)) {
      snprintf(msg, sizeof msg, "%s: table %u has layout [%d, %d, %d, %d, %d]; needs rows >= 0, dim >= 1, width >= 1, "
               "0 <= offset, offset + dim <= D (%zu), mean 0 or 1", fn, t, rec[0], rec[1], rec[2], rec[3], rec[4], D);
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
      return false;
    }
    const size_t size = static_cast<size_t>(view.rows) * static_cast<size_t>(view.dim);
    const size_t nids = n * static_cast<size_t>(view.width);
    char name[48];
    void* data = nullptr;
    snprintf(name, sizeof name, "weights[%u]", t);
    if (!get_typed(env, fn, weights[t], name, napi_float32_array, "Float32Array", size, &data)) return false;
    view.weights = static_cast<float*>(data);
    snprintf(name, sizeof name, "ids[%u]", t);
    if (!get_typed(env, fn, ids[t], name, napi_int32_array, "Int32Array", nids, &data)) return false;
    view.ids = static_cast<const int32_t*>(data);
    for (size_t i = 0; i < nids; ++i) {
      if (view.ids[i] < -1 || view.ids[i] >= view.rows) {
        snprintf(msg, sizeof msg, "%s: ids[%u][%zu] is %d, outside [-1, %d)", fn, t, i, view.ids[i], view.rows);
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
        return false;
      }
    }
    view.m = view.v = nullptr;
    view.slot_of = view.used = nullptr;
    view.capacity = 0;
    if (slots >= 1) {
      const int32_t u = used[t];
      if (u < 0 || u > view.rows) {
        snprintf(msg, sizeof msg, "%s: used[%u] is %d, outside [0, %d]", fn, t, u, view.rows);
        napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
        return false;
      }
      const size_t fresh = std::min(nids, static_cast<size_t>(view.rows - u));
      const size_t need = (static_cast<size_t>(u) + fresh) * static_cast<size_t>(view.dim);
      size_t m_len = 0;
      snprintf(name, sizeof name, "m[%u]", t);
      if (!get_typed(env, fn, ms[t], name, napi_float32_array, "Float32Array", need, &data, &m_len)) return false;
      view.m = static_cast<float*>(data);
      view.capacity = static_cast<int32_t>(std::min(m_len / static_cast<size_t>(view.dim), static_cast<size_t>(view.rows)));
      snprintf(name, sizeof name, "slotOf[%u]", t);
      if (!get_typed(env, fn, slot_ofs[t], name, napi_int32_array, "Int32Array", static_cast<size_t>(view.rows), &data)) return false;
      view.slot_of = static_cast<int32_t*>(data);
      view.used = used + t;
      if (slots >= 2) {
        snprintf(name, sizeof name, "v[%u]", t);
        if (!get_typed(env, fn, vs[t], name, napi_float32_array, "Float32Array", static_cast<size_t>(view.capacity) * static_cast<size_t>(view.dim), &data)) return false;
        view.v = static_cast<float*>(data);
      }
    }
  }
  return true;
}

napi_value EmbeddingLookup(napi_env env, napi_callback_info cbinfo) {
  const char* fn = "embeddingLookup";
  size_t argc = 0;
  napi_value argv[7];
  Instance* inst = open_call(env, cbinfo, fn, "embeddingLookup(weights, ids, layout, n, x, D, threads?)", 6, argv, &argc);
  if (inst == nullptr) return nullptr;
  int64_t n = 0, D = 0, threads = 1;
  if (!get_int(env, fn, argv[3], "n", 0, kMaxDim, &n) || !get_int(env, fn, argv[5], "D", 1, kMaxDim, &D) ||
      !get_threads(env, fn, argc, argv, 6, &threads))
    return nullptr;
  if (static_cast<double>(n) * static_cast<double>(D) > kMaxElems) return throw_range(env, "embeddingLookup: x too large");
  std::vector<resflow::EmbeddingTableView> tables;
  F32 x;
  if (!get_tables(env, fn, argv[2], argv[0], argv[1], nullptr, nullptr, nullptr, nullptr, 0, static_cast<size_t>(n), static_cast<size_t>(D), &tables) ||
      !get_f32(env, fn, argv[4], "x", static_cast<size_t>(n) * static_cast<size_t>(D), &x))
    return nullptr;
  try {
    inst->embeddings.lookup(tables, static_cast<size_t>(n), x.data, static_cast<size_t>(D), static_cast<int>(threads));
  } catch (...) {
    napi_throw_error(env, nullptr, "embeddingLookup: unexpected C++ exception");
  }
  return nullptr;
}

napi_value EmbeddingSgemm(napi_env env, napi_callback_info cbinfo) {
  const char* fn = "embeddingSgemm";
  size_t argc = 0;
  napi_value argv[13];
  Instance* inst = open_call(env, cbinfo, fn, "embeddingSgemm(weights, ids, layout, n, x, D, W, N, C, threads?, bias?, activation?, residual?)", 9, argv, &argc);
  if (inst == nullptr) return nullptr;
  int64_t n = 0, D = 0, N = 0, threads = 1;
  if (!get_int(env, fn, argv[3], "n", 0, kMaxDim, &n) || !get_int(env, fn, argv[5], "D", 1, kMaxDim, &D) ||
      !get_int(env, fn, argv[7], "N", 0, kMaxDim, &N) || !get_threads(env, fn, argc, argv, 9, &threads))
    return nullptr;
  const size_t rows = static_cast<size_t>(n), cols = static_cast<size_t>(N), width = static_cast<size_t>(D);
  if (static_cast<double>(n) * D > kMaxElems || static_cast<double>(D) * N > kMaxElems || static_cast<double>(n) * N > kMaxElems)
    return throw_range(env, "embeddingSgemm: matrices too large");
  std::vector<resflow::EmbeddingTableView> tables;
  F32 x, w, c;
  if (!get_tables(env, fn, argv[2], argv[0], argv[1], nullptr, nullptr, nullptr, nullptr, 0, rows, width, &tables) ||
      !get_f32(env, fn, argv[4], "x", rows * width, &x) || !get_f32(env, fn, argv[6], "W", width * cols, &w) ||
      !get_f32(env, fn, argv[8], "C", rows * cols, &c))
    return nullptr;
  if (overlaps(c, x) || overlaps(c, w) || overlaps(x, w)) return throw_range(env, "embeddingSgemm: x, W and C must not overlap");
  resflow::Epilogue epi;
  if (!get_epilogue(env, fn, argc, argv, 10, rows, cols, c, &epi)) return nullptr;
  // x is written while the product runs: nothing it reads besides x may lie in x.
  const auto in_x = [&](const float* p, size_t len) { return p != nullptr && overlaps(x, F32{const_cast<float*>(p), len}); };
  if (in_x(epi.bias, cols) || in_x(epi.residual, rows * cols)) return throw_range(env, "embeddingSgemm: the bias and the residual must not overlap x");
  try {
    inst->embeddings.lookup_sgemm(tables, rows, x.data, width, inst->gemm, w.data, cols, c.data, static_cast<int>(threads), epi);
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "embeddingSgemm: out of memory for packing buffers");
  } catch (...) {
    napi_throw_error(env, nullptr, "embeddingSgemm: unexpected C++ exception");
  }
  return nullptr;
}

napi_value EmbeddingUpdate(napi_env env, napi_callback_info cbinfo) {
  const char* fn = "embeddingUpdateLazy";
  size_t argc = 0;
  napi_value argv[13];
  Instance* inst = open_call(env, cbinfo, fn, "embeddingUpdateLazy(optimizer, hyper, weights, m, v, slotOf, used, ids, layout, n, gradX, D, threads?)", 12, argv, &argc);
  if (inst == nullptr) return nullptr;
  int64_t opt = 0, n = 0, D = 0, threads = 1;
  if (!get_int(env, fn, argv[0], "optimizer", 0, 2, &opt) || !get_int(env, fn, argv[9], "n", 0, kMaxDim, &n) ||
      !get_int(env, fn, argv[11], "D", 1, kMaxDim, &D) || !get_threads(env, fn, argc, argv, 12, &threads))
    return nullptr;
  if (static_cast<double>(n) * static_cast<double>(D) > kMaxElems) return throw_range(env, "embeddingUpdateLazy: gradX too large");
  void* hyper_data = nullptr;
  if (!get_typed(env, fn, argv[1], "hyper", napi_float64_array, "Float64Array", 6, &hyper_data)) return nullptr;
  const double* hv = static_cast<const double*>(hyper_data);
  const resflow::SparseHyper hyper{hv[0], hv[1], hv[2], hv[3], hv[4], hv[5]};
  const int slots = opt == 0 ? 0 : opt == 1 ? 1 : 2;
  std::vector<resflow::EmbeddingTableView> tables;
  F32 grad;
  if (!get_tables(env, fn, argv[8], argv[2], argv[7], argv[3], argv[4], argv[5], argv[6], slots, static_cast<size_t>(n), static_cast<size_t>(D), &tables) ||
      !get_f32(env, fn, argv[10], "gradX", static_cast<size_t>(n) * static_cast<size_t>(D), &grad))
    return nullptr;
  try {
    if (!inst->embeddings.update(static_cast<resflow::SparseOptimizer>(opt), hyper, tables, static_cast<size_t>(n), grad.data,
                                 static_cast<size_t>(D), static_cast<int>(threads)))
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "embeddingUpdateLazy: a table's slotOf held a slot beyond used (its state is damaged)");
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "embeddingUpdateLazy: out of memory for working buffers");
  } catch (...) {
    napi_throw_error(env, nullptr, "embeddingUpdateLazy: unexpected C++ exception");
  }
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Dense Adam
// ---------------------------------------------------------------------------------------------

napi_value AdamStep(napi_env env, napi_callback_info cbinfo) {
  const char* fn = "adamStep";
  size_t argc = 0;
  napi_value argv[6];
  Instance* inst = open_call(env, cbinfo, fn, "adamStep(value, m, v, grad, constants, threads?)", 5, argv, &argc);
  if (inst == nullptr) return nullptr;
  int64_t threads = 1;
  if (!get_threads(env, fn, argc, argv, 5, &threads)) return nullptr;
  F32 value;
  if (!get_f32_whole(env, fn, argv[0], "value", &value)) return nullptr;
  const size_t n = value.length;
  void* data = nullptr;
  F32 m, v, grad;
  if (!get_f32(env, fn, argv[1], "m", n, &m) || !get_f32(env, fn, argv[2], "v", n, &v) ||
      !get_f32(env, fn, argv[3], "grad", n, &grad))
    return nullptr;
  if (!get_typed(env, fn, argv[4], "constants", napi_float32_array, "Float32Array", 8, &data)) return nullptr;
  const float* k = static_cast<const float*>(data);
  if (overlaps(value, m) || overlaps(value, v) || overlaps(m, v) || overlaps(value, grad) || overlaps(m, grad) ||
      overlaps(v, grad))
    return throw_range(env, "adamStep: value, m, v and grad must not overlap");
  const resflow::AdamConstants c{k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]};
  resflow::parallel_for(inst->pool, static_cast<int>(threads), n, [&](size_t b, size_t e) {
    resflow::adam_step(value.data + b, m.data + b, v.data + b, grad.data + b, e - b, c);
  });
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Relu backward
// ---------------------------------------------------------------------------------------------

napi_value ReluBackward(napi_env env, napi_callback_info cbinfo) {
  const char* fn = "reluBackward";
  size_t argc = 0;
  napi_value argv[4];
  Instance* inst = open_call(env, cbinfo, fn, "reluBackward(dy, y, dz, threads?)", 3, argv, &argc);
  if (inst == nullptr) return nullptr;
  int64_t threads = 1;
  if (!get_threads(env, fn, argc, argv, 3, &threads)) return nullptr;
  F32 y;
  if (!get_f32_whole(env, fn, argv[1], "y", &y)) return nullptr;
  const size_t n = y.length;
  F32 dy, dz;
  if (!get_f32(env, fn, argv[0], "dy", n, &dy) || !get_f32(env, fn, argv[2], "dz", n, &dz)) return nullptr;
  if (overlaps(dz, y)) return throw_range(env, "reluBackward: dz must not overlap y");
  if (dz.data != dy.data && overlaps(dz, dy)) return throw_range(env, "reluBackward: dz must be dy or not overlap it");
  resflow::parallel_for(inst->pool, static_cast<int>(threads), n, [&](size_t b, size_t e) {
    resflow::relu_backward(dy.data + b, y.data + b, dz.data + b, e - b);
  });
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Element-wise add
// ---------------------------------------------------------------------------------------------

napi_value AddArrays(napi_env env, napi_callback_info cbinfo) {
  const char* fn = "addArrays";
  size_t argc = 0;
  napi_value argv[4];
  Instance* inst = open_call(env, cbinfo, fn, "addArrays(a, b, out, threads?)", 3, argv, &argc);
  if (inst == nullptr) return nullptr;
  F32 a;
  if (!get_f32_whole(env, fn, argv[0], "a", &a)) return nullptr;
  const size_t n = a.length;
  F32 b, out;
  int64_t threads = 1;
  if (!get_f32(env, fn, argv[1], "b", n, &b) || !get_f32(env, fn, argv[2], "out", n, &out) ||
      !get_threads(env, fn, argc, argv, 3, &threads))
    return nullptr;
  if ((out.data != a.data && overlaps(out, a)) || (out.data != b.data && overlaps(out, b)))
    return throw_range(env, "addArrays: out must be a, b or not overlap them");
  resflow::parallel_for(inst->pool, static_cast<int>(threads), n, [&](size_t lo, size_t hi) {
    resflow::add_arrays(a.data + lo, b.data + lo, out.data + lo, hi - lo);
  });
  return nullptr;
}

bool set_str(napi_env env, napi_value obj, const char* key, const char* value) {
  napi_value v;
  return napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok &&
         napi_set_named_property(env, obj, key, v) == napi_ok;
}

bool set_num(napi_env env, napi_value obj, const char* key, double value) {
  napi_value v;
  return napi_create_double(env, value, &v) == napi_ok && napi_set_named_property(env, obj, key, v) == napi_ok;
}

napi_value AdviseHugePages(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 0;
  napi_value argv[1];
  if (open_call(env, cbinfo, "adviseHugePages", "adviseHugePages(buffer)", 1, argv, &argc) == nullptr) return nullptr;
  bool is_buffer = false;
  NAPI_CALL(env, napi_is_arraybuffer(env, argv[0], &is_buffer));
  if (!is_buffer) return throw_type(env, "adviseHugePages: buffer must be an ArrayBuffer");
  void* data = nullptr;
  size_t length = 0;
  NAPI_CALL(env, napi_get_arraybuffer_info(env, argv[0], &data, &length));
  const size_t offset = data == nullptr ? 0 : resflow::huge_page_offset(data);
  const size_t bytes = data == nullptr ? 0 : resflow::advise_huge_pages(data, length);
  napi_value obj;
  NAPI_CALL(env, napi_create_object(env, &obj));
  if (!set_num(env, obj, "offset", static_cast<double>(offset < length ? offset : length)) || !set_num(env, obj, "bytes", static_cast<double>(bytes))) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, nullptr, "adviseHugePages: could not build the result object");
    return nullptr;
  }
  return obj;
}

napi_value Info(napi_env env, napi_callback_info /*cbinfo*/) {
  const resflow::GemmInfo gi = resflow::gemm_info();
  unsigned hw = std::thread::hardware_concurrency();
  if (hw == 0) hw = 1;
  napi_value obj;
  NAPI_CALL(env, napi_create_object(env, &obj));
#if defined(__clang__)
  const char* compiler = "clang " __clang_version__;
#elif defined(__GNUC__)
  const char* compiler = "gcc " __VERSION__;
#else
  const char* compiler = "unknown";
#endif
  if (!set_str(env, obj, "simd", gi.simd) || !set_num(env, obj, "vectorBytes", gi.vector_bytes) ||
      !set_num(env, obj, "mr", gi.mr) || !set_num(env, obj, "nr", gi.nr) || !set_num(env, obj, "kc", gi.kc) ||
      !set_num(env, obj, "mc", gi.mc) || !set_num(env, obj, "maxThreads", gi.max_threads) ||
      !set_num(env, obj, "threads", hw > 64 ? 64 : hw) || !set_num(env, obj, "hardwareThreads", hw) ||
      !set_str(env, obj, "compiler", compiler) || !set_str(env, obj, "version", RESFLOW_NATIVE_VERSION)) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (!pending) napi_throw_error(env, nullptr, "info: could not build the result object");
    return nullptr;
  }
  return obj;
}

void FinalizeInstance(napi_env /*env*/, void* data, void* /*hint*/) {
  delete static_cast<Instance*>(data);  // joins the pool's workers
}

}  // namespace

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  Instance* inst = new (std::nothrow) Instance();
  if (inst == nullptr) {
    napi_throw_error(env, nullptr, "resflow_native: out of memory");
    return nullptr;
  }
  if (napi_set_instance_data(env, inst, FinalizeInstance, nullptr) != napi_ok) {
    delete inst;
    napi_throw_error(env, nullptr, "resflow_native: napi_set_instance_data failed");
    return nullptr;
  }
  napi_property_descriptor props[] = {
      {"sgemm", nullptr, Sgemm, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"info", nullptr, Info, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"embeddingLookup", nullptr, EmbeddingLookup, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"embeddingSgemm", nullptr, EmbeddingSgemm, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"embeddingUpdateLazy", nullptr, EmbeddingUpdate, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"adamStep", nullptr, AdamStep, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"reluBackward", nullptr, ReluBackward, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"addArrays", nullptr, AddArrays, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
      {"adviseHugePages", nullptr, AdviseHugePages, nullptr, nullptr, nullptr, napi_enumerable, nullptr},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return nullptr;
  return exports;
}
