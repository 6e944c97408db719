// See huge_pages.h.
#include "huge_pages.h"

#include <cstdint>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace resflow {

size_t huge_page_offset(const void* p) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  return static_cast<size_t>((kHugePageBytes - a % kHugePageBytes) % kHugePageBytes);
}

size_t advise_huge_pages(void* p, size_t len) {
  const size_t skip = huge_page_offset(p);
  if (len <= skip) return 0;
  const size_t bytes = (len - skip) / kHugePageBytes * kHugePageBytes;
  if (bytes == 0) return 0;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // EINVAL: a kernel without transparent huge pages; the memory stays as it was.
  return madvise(static_cast<char*>(p) + skip, bytes, MADV_HUGEPAGE) == 0 ? bytes : 0;
#else
  return 0;
#endif
}

}  // namespace resflow
