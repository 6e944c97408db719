// N-API binding of the GEMM (plain C API, node_api.h; no node-addon-api):
//
//   sgemm(transA, transB, M, N, K, A, B, C, threads?) -> undefined
//     C[M,N] = op(A) * op(B), row-major float32; op = transpose when the flag is true.
//     A: Float32Array of >= M*K elements ([M,K], or [K,M] when transA), B >= K*N ([K,N] or [N,K]),
//     C >= M*N, written in place. The arrays are used where they are (views into a
//     WebAssembly.Memory are fine): no copies. C must not overlap A or B. threads: 1..64
//     (default 1); results are bit-identical whatever it is.
//   info() -> { simd, vectorBytes, mr, nr, kc, mc, maxThreads, hardwareThreads, compiler, version }
//
// Every argument is checked (types, integer ranges, lengths, detached buffers, overlap) before
// any memory is touched; a bad call throws a TypeError/RangeError. The work is done on the
// calling thread and a persistent pool; all of it is finished when sgemm returns. Each Node
// environment (main thread, worker_threads) gets its own pool, joined when the environment exits.
#include <node_api.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <new>
#include <thread>

#include "gemm.h"

#define RESFLOW_NATIVE_VERSION "1"

namespace {

struct Instance {
  resflow::GemmEngine engine;
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
bool get_int(napi_env env, napi_value v, const char* name, double lo, double hi, int64_t* out) {
  napi_valuetype t;
  double d = 0;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_number || napi_get_value_double(env, v, &d) != napi_ok) {
    char msg[96];
    snprintf(msg, sizeof msg, "sgemm: %s must be a number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  if (!std::isfinite(d) || d != std::floor(d) || d < lo || d > hi) {
    char msg[128];
    snprintf(msg, sizeof msg, "sgemm: %s must be an integer in [%.0f, %.0f], got %g", name, lo, hi, d);
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

// Reads a Float32Array argument that must hold at least `need` elements.
bool get_f32(napi_env env, napi_value v, const char* name, size_t need, F32* out) {
  bool is_ta = false;
  char msg[160];
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) {
    snprintf(msg, sizeof msg, "sgemm: %s must be a Float32Array", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  napi_typedarray_type type;
  size_t length = 0, byte_offset = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &buffer, &byte_offset) != napi_ok) return false;
  if (type != napi_float32_array) {
    snprintf(msg, sizeof msg, "sgemm: %s must be a Float32Array", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  bool detached = false;
  bool is_ab = false;
  // SharedArrayBuffers (threaded wasm memory) cannot be detached; napi_is_detached_arraybuffer
  // only applies to ArrayBuffers.
  if (napi_is_arraybuffer(env, buffer, &is_ab) == napi_ok && is_ab &&
      napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && detached) {
    snprintf(msg, sizeof msg, "sgemm: %s is a view of a detached ArrayBuffer (wasm memory grew?)", name);
    napi_throw_type_error(env, "ERR_INVALID_STATE", msg);
    return false;
  }
  if (length < need) {
    snprintf(msg, sizeof msg, "sgemm: %s has %zu elements, needs at least %zu", name, length, need);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  if (need > 0 && data == nullptr) {
    snprintf(msg, sizeof msg, "sgemm: %s has no data", name);
    napi_throw_type_error(env, "ERR_INVALID_STATE", msg);
    return false;
  }
  out->data = static_cast<float*>(data);
  out->length = need;
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

napi_value Sgemm(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 9;
  napi_value argv[9];
  void* data = nullptr;
  NAPI_CALL(env, napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, &data));
  if (argc < 8) return throw_type(env, "sgemm(transA, transB, M, N, K, A, B, C, threads?) needs at least 8 arguments");
  Instance* inst = nullptr;
  NAPI_CALL(env, napi_get_instance_data(env, reinterpret_cast<void**>(&inst)));
  if (inst == nullptr) return throw_type(env, "sgemm: addon not initialised");

  bool ta = false, tb = false;
  int64_t M = 0, N = 0, K = 0, threads = 1;
  if (!get_bool(env, argv[0], "transA", &ta) || !get_bool(env, argv[1], "transB", &tb)) return nullptr;
  if (!get_int(env, argv[2], "M", 0, kMaxDim, &M) || !get_int(env, argv[3], "N", 0, kMaxDim, &N) ||
      !get_int(env, argv[4], "K", 0, kMaxDim, &K))
    return nullptr;
  if (argc >= 9) {
    napi_valuetype t;
    NAPI_CALL(env, napi_typeof(env, argv[8], &t));
    if (t != napi_undefined && !get_int(env, argv[8], "threads", 1, 64, &threads)) return nullptr;
  }
  const double mk = static_cast<double>(M) * K, kn = static_cast<double>(K) * N, mn = static_cast<double>(M) * N;
  if (mk > kMaxElems || kn > kMaxElems || mn > kMaxElems) return throw_range(env, "sgemm: matrices too large");
  F32 a, b, c;
  if (!get_f32(env, argv[5], "A", static_cast<size_t>(M) * K, &a) ||
      !get_f32(env, argv[6], "B", static_cast<size_t>(K) * N, &b) ||
      !get_f32(env, argv[7], "C", static_cast<size_t>(M) * N, &c))
    return nullptr;
  if (overlaps(c, a) || overlaps(c, b)) return throw_range(env, "sgemm: C must not overlap A or B");
  try {
    inst->engine.sgemm(ta, tb, static_cast<size_t>(M), static_cast<size_t>(N), static_cast<size_t>(K), a.data, b.data,
                       c.data, static_cast<int>(threads));
  } catch (const std::bad_alloc&) {
    napi_throw_error(env, "ERR_MEMORY_ALLOCATION_FAILED", "sgemm: out of memory for packing buffers");
    return nullptr;
  } catch (...) {
    napi_throw_error(env, nullptr, "sgemm: unexpected C++ exception");
    return nullptr;
  }
  return nullptr;  // undefined
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
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return nullptr;
  return exports;
}
