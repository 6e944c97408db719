// Stand-alone check and timing of the GEMM, without Node (for tuning the blocking constants).
//
//   g++ -O3 -march=native -ffp-contract=fast -std=c++17 -pthread -I native/src
//       native/src/gemm.cc native/tools/gemm-check.cc -o /tmp/gemm-check && /tmp/gemm-check
//
// Checks every transpose combination on odd sizes against a double-precision reference, checks
// that 1 and 2 threads give bit-identical results, then prints GFLOP/s for resflow's shapes.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <vector>

#include "gemm.h"

using resflow::GemmEngine;

static void reference(bool ta, bool tb, size_t M, size_t N, size_t K, const float* A, const float* B, double* C) {
  for (size_t i = 0; i < M; ++i)
    for (size_t j = 0; j < N; ++j) {
      double s = 0;
      for (size_t k = 0; k < K; ++k) {
        const double a = ta ? A[k * M + i] : A[i * K + k];
        const double b = tb ? B[j * K + k] : B[k * N + j];
        s += a * b;
      }
      C[i * N + j] = s;
    }
}

static int check(GemmEngine& eng, std::mt19937& rng, bool ta, bool tb, size_t M, size_t N, size_t K) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> A(M * K), B(K * N), C1(M * N + 2, 12345.f), C2(M * N + 2, 54321.f);
  for (auto& x : A) x = u(rng);
  for (auto& x : B) x = u(rng);
  std::vector<double> R(M * N);
  reference(ta, tb, M, N, K, A.data(), B.data(), R.data());
  // C1 at offset 1 so that stores are unaligned; the guard elements must stay untouched.
  eng.sgemm(ta, tb, M, N, K, A.data(), B.data(), C1.data() + 1, 1);
  eng.sgemm(ta, tb, M, N, K, A.data(), B.data(), C2.data() + 1, 2);
  int bad = 0;
  if (C1[0] != 12345.f || C1[M * N + 1] != 12345.f || C2[0] != 54321.f || C2[M * N + 1] != 54321.f) {
    std::printf("FAIL guard overwritten ta=%d tb=%d M=%zu N=%zu K=%zu\n", ta, tb, M, N, K);
    ++bad;
  }
  if (std::memcmp(C1.data() + 1, C2.data() + 1, M * N * sizeof(float)) != 0) {
    std::printf("FAIL 1 vs 2 threads differ ta=%d tb=%d M=%zu N=%zu K=%zu\n", ta, tb, M, N, K);
    ++bad;
  }
  double worst = 0;
  for (size_t i = 0; i < M * N; ++i) {
    const double err = std::fabs(C1[i + 1] - R[i]) / (1e-3 + std::sqrt(static_cast<double>(K)));
    if (err > worst) worst = err;
  }
  if (worst > 1e-5) {
    std::printf("FAIL error %.3g ta=%d tb=%d M=%zu N=%zu K=%zu\n", worst, ta, tb, M, N, K);
    ++bad;
  }
  return bad;
}

static double gflops(GemmEngine& eng, bool ta, bool tb, size_t M, size_t N, size_t K, int threads, int reps) {
  std::vector<float> A(M * K, 0.5f), B(K * N, 0.25f), C(M * N);
  eng.sgemm(ta, tb, M, N, K, A.data(), B.data(), C.data(), threads);
  std::vector<double> ts;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    int inner = 0;
    double el = 0;
    do {
      eng.sgemm(ta, tb, M, N, K, A.data(), B.data(), C.data(), threads);
      ++inner;
      el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (el < 0.05);
    ts.push_back(el / inner);
  }
  std::sort(ts.begin(), ts.end());
  return 2.0 * M * N * K / ts[ts.size() / 2] / 1e9;
}

// The core's multiply-add peak on one thread: 12 independent chains of vector FMAs on registers
// only (no loads), so the rates below can be read as a fraction of what the core can do at all.
// Named chains, not an array, with distinct starting values, so that the compiler can neither run
// them one after the other nor merge them; no call inside, so they stay in registers.
#if defined(__AVX512F__)
constexpr int kPeakBytes = 64;
#elif defined(__AVX__)
constexpr int kPeakBytes = 32;
#else
constexpr int kPeakBytes = 16;
#endif
typedef float peak_vec __attribute__((vector_size(kPeakBytes)));
constexpr int kPeakChains = 12;

__attribute__((noinline)) static float fma_chains(long steps, float seed) {
  typedef peak_vec vec;
  const vec a = vec{} + 0.9999f, b = vec{} + seed;
  vec c0 = b * 0.f, c1 = b * 1.f, c2 = b * 2.f, c3 = b * 3.f, c4 = b * 4.f, c5 = b * 5.f, c6 = b * 6.f,
      c7 = b * 7.f, c8 = b * 8.f, c9 = b * 9.f, c10 = b * 10.f, c11 = b * 11.f;
  for (long n = 0; n < steps; ++n) {  // each line contracted to one FMA
    c0 = c0 * a + b, c1 = c1 * a + b, c2 = c2 * a + b, c3 = c3 * a + b, c4 = c4 * a + b, c5 = c5 * a + b;
    c6 = c6 * a + b, c7 = c7 * a + b, c8 = c8 * a + b, c9 = c9 * a + b, c10 = c10 * a + b, c11 = c11 * a + b;
  }
  const vec all = c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11;
  float lanes[kPeakBytes / 4];
  std::memcpy(lanes, &all, sizeof lanes);
  float sum = 0;
  for (float x : lanes) sum += x;
  return sum;
}

static double fma_peak_gflops() {
  const long steps = 20000000;
  std::vector<double> rates;
  float sink = 0;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sink += fma_chains(steps, 0.0001f);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rates.push_back(2.0 * (kPeakBytes / 4) * kPeakChains * steps / el / 1e9);
  }
  if (sink == 12345.0f) std::printf(" ");  // keeps the result live
  std::sort(rates.begin(), rates.end());
  return rates[rates.size() / 2];
}

int main(int argc, char** argv) {
  resflow::ThreadPool pool;
  GemmEngine eng(pool);
  const resflow::GemmInfo info = resflow::gemm_info();
  std::printf("simd %s, vector %d bytes, micro-kernel %dx%d, kc %d, mc %d\n", info.simd, info.vector_bytes, info.mr,
              info.nr, info.kc, info.mc);
  const bool quick = argc > 1 && std::strcmp(argv[1], "--bench") == 0;
  int bad = 0;
  if (!quick) {
    std::mt19937 rng(42);
    const size_t sizes[] = {1, 2, 3, 5, 7, 13, 16, 17, 31, 64, 100, 257};
    int n = 0;
    for (int tt = 0; tt < 4; ++tt)
      for (size_t M : sizes)
        for (size_t N : sizes)
          for (size_t K : {1, 7, 64, 257, 400, 1025}) {
            if (M * N * K > 4000000 && (M + N + K) % 3 != 0) continue;
            bad += check(eng, rng, tt & 1, tt & 2, M, N, K);
            ++n;
          }
    // Big enough for the threaded path.
    for (int tt = 0; tt < 4; ++tt) {
      bad += check(eng, rng, tt & 1, tt & 2, 1024, 256, 320);
      bad += check(eng, rng, tt & 1, tt & 2, 333, 517, 129);
      bad += check(eng, rng, tt & 1, tt & 2, 1, 4000, 700);
      bad += check(eng, rng, tt & 1, tt & 2, 3000, 1, 700);
      bad += check(eng, rng, tt & 1, tt & 2, 100, 3000, 2000);
      // Few multiply-adds but a large C: threaded by its size (RESFLOW_PAR_MIN_OUT).
      bad += check(eng, rng, tt & 1, tt & 2, 1024, 128, 1);
      bad += check(eng, rng, tt & 1, tt & 2, 257, 300, 3);
      n += 7;
    }
    std::printf("%d cases, %d failures\n", n, bad);
  }
  struct Shape {
    const char* name;
    bool ta, tb;
    size_t M, N, K;
  } shapes[] = {
      {"x.W1      [1024x320].[320x256]", false, false, 1024, 256, 320},
      {"h1.W2     [1024x256].[256x128]", false, false, 1024, 128, 256},
      {"xT.dy1    [320x1024].[1024x256]", true, false, 320, 256, 1024},
      {"dy1.W1T   [1024x256].[256x320]T", false, true, 1024, 320, 256},
      {"h1T.dy2   [256x1024].[1024x128]", true, false, 256, 128, 1024},
      {"dy2.W2T   [1024x128].[128x256]T", false, true, 1024, 256, 128},
      {"ones.dy1  [1x1024].[1024x256]", false, false, 1, 256, 1024},
      {"h2.w      [1024x128].[128x1]", false, false, 1024, 1, 128},
      {"512^3", false, false, 512, 512, 512},
  };
  std::printf("FMA peak, registers only, 1 thread: %.1f GFLOP/s\n", fma_peak_gflops());
  for (const Shape& s : shapes) {
    const double g1 = gflops(eng, s.ta, s.tb, s.M, s.N, s.K, 1, 7);
    const double g2 = gflops(eng, s.ta, s.tb, s.M, s.N, s.K, 2, 7);
    std::printf("%-34s 1 thread %6.1f GFLOP/s   2 threads %6.1f GFLOP/s\n", s.name, g1, g2);
  }
  return bad == 0 ? 0 : 1;
}
