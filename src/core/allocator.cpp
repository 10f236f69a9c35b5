#include "core/allocator.h"

#include <malloc.h>

namespace lorahub {

void keep_freed_memory_for_reuse() {
  constexpr int kHeapBlockLimit = 256 << 20;  // model weights above this still get their own mmap
  ::mallopt(M_MMAP_THRESHOLD, kHeapBlockLimit);
  ::mallopt(M_TRIM_THRESHOLD, 2 * kHeapBlockLimit);
}

}  // namespace lorahub
