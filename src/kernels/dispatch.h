// Which SIMD paths this build takes on this CPU (core/simd.h), for users and tests to see.
#pragma once
#include <string>

namespace lorahub {

// One line: the loop clones the loader chose ("x86-64-v4" ... or "native" for a -march=native
// build), and the run-time choices of the AVX512-VNNI (quantized) and AVX512-BF16 (bf16 small
// rows) kernels, e.g. "loops x86-64-v4 (clones); quant avx512vnni; bf16-small-rows off".
std::string simd_dispatch();

}  // namespace lorahub
