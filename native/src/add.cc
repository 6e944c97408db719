// See add.h. One float32 addition per element, as tfjs's kernel does it: the same bits.
#include "strict_fp.h"  // first: nothing here may be contracted or reassociated

#include "add.h"

namespace resflow {

void add_arrays(const float* a, const float* b, float* out, size_t n) {
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

}  // namespace resflow
