// See relu.h. One float32 multiply per element, as tfjs's Multiply kernel does it, so dz has the same
// bits as tfjs's three kernels (checked in test/dense-grad.test.ts).
#include "strict_fp.h"  // first: nothing here may be contracted or reassociated

#include "relu.h"

namespace resflow {

void relu_backward(const float* dy, const float* y, float* dz, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    const float v = y[i];
    const float s = v > 0.f ? 1.f : (v != v ? v : 0.f);  // tfjs Step(alpha 0): NaN stays NaN
    dz[i] = dy[i] * s;
  }
}

}  // namespace resflow
