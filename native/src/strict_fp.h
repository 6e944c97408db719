// Include first in a file whose float arithmetic must round exactly as JavaScript's or tfjs's does:
// no fused multiply-adds (binding.gyp builds the GEMM with -ffp-contract=fast, and a*b+c fused
// rounds once where JavaScript rounds twice). Applies to the functions defined after it.
#ifndef RESFLOW_STRICT_FP_H_
#define RESFLOW_STRICT_FP_H_

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#endif  // RESFLOW_STRICT_FP_H_
