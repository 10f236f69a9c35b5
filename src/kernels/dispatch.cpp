#include "kernels/dispatch.h"

#include <string>

#include "core/simd.h"
#include "kernels/quant_matmul.h"
#include "kernels/small_rows_bf16.h"

namespace lorahub {

namespace {

#if defined(LORAHUB_SIMD_CLONES)
// Versioned like the LORAHUB_SIMD loops (the same resolver logic picks one per CPU), so what it
// returns is the clone the loader chose, not a guess from the CPU flags.
__attribute__((target("default"))) const char* loop_level() {
  return "x86-64-v2 (clones)";
}
__attribute__((target("arch=x86-64-v3"))) const char* loop_level() {
  return "x86-64-v3 (clones)";
}
__attribute__((target("arch=x86-64-v4"))) const char* loop_level() {
  return "x86-64-v4 (clones)";
}
#else
const char* loop_level() {
  return "native (this build's -march)";
}
#endif

}  // namespace

std::string simd_dispatch() {
  std::string line = "loops ";
  line += loop_level();
  line += quant_vnni_available() ? "; quant avx512vnni" : "; quant scalar";
  line += small_rows_bf16_available() ? "; bf16-small-rows avx512bf16" : "; bf16-small-rows off";
  return line;
}

}  // namespace lorahub
