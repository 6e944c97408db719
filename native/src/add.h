// Element-wise sum of two float32 arrays of one shape: what tfjs's Add kernel computes when
// neither input is broadcast (residual connections, and the backward pass summing the gradients
// of a tensor used twice), as a vectorised pass that the thread pool can split.
#ifndef RESFLOW_ADD_H_
#define RESFLOW_ADD_H_

#include <cstddef>

namespace resflow {

// out[i] = a[i] + b[i] for n floats; out may be a or b itself.
void add_arrays(const float* a, const float* b, float* out, size_t n);

}  // namespace resflow

#endif  // RESFLOW_ADD_H_
