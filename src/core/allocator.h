// Process-wide memory allocator settings for the compute commands.
#pragma once

namespace lorahub {

// A forward pass allocates and frees activation buffers of a few MB many times per token. By
// default glibc serves such blocks with fresh mmaps (and gives freed heap back to the system), so
// every buffer costs page faults and zeroing by the kernel: 19% of a SmolLM2 generation's time
// in a profile. This keeps blocks under 32 MiB on the heap and up to 64 MiB of freed heap for
// reuse; larger blocks (weights) still come from and go back to the system directly.
void keep_freed_memory_for_reuse();

// Gives the pages of freed heap blocks back to the system now (malloc_trim). For a loader that has
// just dropped large parsed metadata: that memory would otherwise stay resident, in fragments
// too small for the weights that follow.
void release_freed_memory();

}  // namespace lorahub
