// The relu's backward pass for resflow's dense layers: what tfjs computes for the gradient of a relu
// output y, mul(dy, cast(step(y), 'float32')), as one pass without the two intermediate tensors.
#ifndef RESFLOW_RELU_H_
#define RESFLOW_RELU_H_

#include <cstddef>

namespace resflow {

// dz[i] = dy[i] * s(y[i]) with s = 1 where y > 0, NaN where y is NaN, 0 otherwise (tfjs-backend-wasm's
// Step with alpha 0), for n floats; dz may be dy itself.
void relu_backward(const float* dy, const float* y, float* dz, size_t n);

}  // namespace resflow

#endif  // RESFLOW_RELU_H_
