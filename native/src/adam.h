// Dense Adam step for resflow's tfjs variables, in place: what tfjs's AdamOptimizer computes with
// eight separate float32 kernels per variable, in one pass (see adam.cc).
#ifndef RESFLOW_ADAM_H_
#define RESFLOW_ADAM_H_

#include <cstddef>

namespace resflow {

// The float32 constants of one step, each as tfjs makes it: scalars rounded to float32, and the
// bias corrections 1 - beta^t from its float32 running powers.
struct AdamConstants {
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float one_minus_acc_beta1, one_minus_acc_beta2;
  float epsilon, neg_lr;
};

// value, m, v updated in place from grad (n floats each).
void adam_step(float* value, float* m, float* v, const float* grad, size_t n, const AdamConstants& c);

}  // namespace resflow

#endif  // RESFLOW_ADAM_H_
