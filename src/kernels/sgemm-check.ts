/** The addon's load-time check of its GEMM (src/kernels/addon.ts runs it before anything uses the addon). */
import type { SgemmFn } from './native-api.js';

/** A quick check that sgemm multiplies correctly and deterministically; null when it does. */
export function sgemmSelfCheck(sgemm: SgemmFn): string | null {
  // Small integers: every product and sum is exact in float32, so the answer must be exact.
  const M = 13, N = 37, K = 19;
  const A = new Float32Array(M * K).map((_, i) => ((i * 7919) % 13) - 6);
  const B = new Float32Array(K * N).map((_, i) => ((i * 104729) % 11) - 5);
  const C = new Float32Array(M * N);
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    C.fill(NaN);
    sgemm(ta, tb, M, N, K, A, B, C, 1);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += (ta ? A[k * M + i]! : A[i * K + k]!) * (tb ? B[j * K + k]! : B[k * N + j]!);
        if (C[i * N + j] !== s) return `wrong product (transA=${ta}, transB=${tb}) at [${i},${j}]: ${C[i * N + j]} != ${s}`;
      }
    }
  }
  // Large enough for the threaded path: 1 and 2 threads must agree bit for bit.
  const n = 160;
  const X = new Float32Array(n * n).map((_, i) => Math.sin(i) * 0.5);
  const Y = new Float32Array(n * n).map((_, i) => Math.cos(i * 0.7) * 0.5);
  const C1 = new Float32Array(n * n);
  const C2 = new Float32Array(n * n);
  sgemm(false, true, n, n, n, X, Y, C1, 1);
  sgemm(false, true, n, n, n, X, Y, C2, 2);
  for (let i = 0; i < C1.length; i++) {
    if (!Object.is(C1[i], C2[i])) return `1 and 2 threads disagree at ${i}`;
  }
  return null;
}
