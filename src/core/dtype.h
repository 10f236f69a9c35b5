// Element types of tensors as they appear in files. Quantized GGUF block types live in
// formats/gguf; here are only the plain element types that a state dict can hold.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace lorahub {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I16, I8, U8, Bool };

size_t dtype_size(DType t);
// Safetensors spelling: "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL".
std::string_view dtype_name(DType t);
std::optional<DType> dtype_from_name(std::string_view name);
// F32, F16, BF16 or F64.
bool is_float_dtype(DType t);

}  // namespace lorahub
