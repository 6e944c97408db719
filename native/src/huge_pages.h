// Transparent huge pages for large arrays read at random (the embedding tables' weights;
// native/README.md, adviseHugePages).
#ifndef RESFLOW_HUGE_PAGES_H_
#define RESFLOW_HUGE_PAGES_H_

#include <cstddef>

namespace resflow {

// The page size the advice is for: x86-64's and most arm64 kernels' PMD size.
constexpr size_t kHugePageBytes = size_t{2} << 20;

// Bytes from p to the first multiple of kHugePageBytes at or after it.
size_t huge_page_offset(const void* p);

// Asks the kernel to back the whole 2 MiB pages inside [p, p + len) with huge pages (madvise
// MADV_HUGEPAGE): pages touched afterwards are then faulted in 2 MiB at a time where the system
// has them to spare. Returns the bytes advised: 0 where that interior is empty or the system takes
// no such advice (not Linux, a kernel without transparent huge pages). A kernel set to "never"
// accepts it and ignores it; "always" needs none. Contents are unchanged either way: only how the
// memory is mapped.
size_t advise_huge_pages(void* p, size_t len);

}  // namespace resflow

#endif  // RESFLOW_HUGE_PAGES_H_
