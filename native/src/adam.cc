// Dense Adam, one pass per variable. Each line is one of the kernels tfjs's AdamOptimizer runs
// (tfjs-core optimizers/adam_optimizer), in its order and in float32 without fused multiply-adds,
// so the result has the same bits as tfjs on the wasm backend (checked at load time and in tests).
#include "strict_fp.h"  // first: tfjs's kernels never fuse a*b+c

#include "adam.h"

#include <cmath>

namespace resflow {

void adam_step(float* value, float* m, float* v, const float* grad, size_t n, const AdamConstants& c) {
  for (size_t i = 0; i < n; ++i) {
    const float g = grad[i];
    const float m1 = m[i] * c.beta1 + g * c.one_minus_beta1;        // add(mul(m, b1), mul(g, 1 - b1))
    const float v1 = v[i] * c.beta2 + (g * g) * c.one_minus_beta2;  // add(mul(v, b2), mul(square(g), 1 - b2))
    const float m_hat = m1 / c.one_minus_acc_beta1;                 // div(m', 1 - accBeta1)
    const float v_hat = v1 / c.one_minus_acc_beta2;                 // div(v', 1 - accBeta2)
    m[i] = m1;
    v[i] = v1;
    value[i] = (m_hat / (std::sqrt(v_hat) + c.epsilon)) * c.neg_lr + value[i];  // add(mul(div(..), -lr), value)
  }
}

}  // namespace resflow
