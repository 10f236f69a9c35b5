// SIMD paths that a portable build chooses at run time.
//
// The CLI build is tuned to its machine (-march=native, CMake LORAHUB_NATIVE=ON): the compiler
// vectorizes every loop for that CPU. The Python wheel must run on other CPUs too, so it is built
// for a baseline (LORAHUB_NATIVE=OFF: x86-64-v2, SSE4.2) and CMake defines LORAHUB_SIMD_CLONES:
// the hot loops marked LORAHUB_SIMD are then compiled three times (baseline, x86-64-v3 = AVX2 +
// FMA, x86-64-v4 = AVX-512) and the dynamic loader picks the best one the CPU runs (GCC's
// target_clones, an ifunc per function). Mark whole loops, not tiny helpers (each call goes
// through the ifunc), and not functions holding an `omp parallel` region: its body is outlined
// into a function of its own that the clones do not cover (call a marked function from it).
#pragma once

#if defined(LORAHUB_SIMD_CLONES)
#define LORAHUB_SIMD __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define LORAHUB_SIMD
#endif
