#include "core/allocator.h"

#include <malloc.h>

namespace lorahub {

void keep_freed_memory_for_reuse() {
  // Activations of a step stay under this; the f32 copies of large weights made while loading
  // (131 MB for T5-large's embedding) are above it, so freeing them returns the memory at once.
  constexpr int kHeapBlockLimit = 32 << 20;
  ::mallopt(M_MMAP_THRESHOLD, kHeapBlockLimit);
  ::mallopt(M_TRIM_THRESHOLD, 2 * kHeapBlockLimit);
}

void release_freed_memory() { ::malloc_trim(0); }

}  // namespace lorahub
