// GGUF (llama.cpp's model file), versions 2 and 3:
//   magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv | n_kv × (string key, u32 type, value)
//   | n_tensors × (string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset)
//   | padding to general.alignment (default 32) | tensor data (offsets relative to here).
// Strings are u64 length + bytes; arrays are u32 element type + u64 count + elements. Everything
// is little-endian. The file is mmapped; tensor data is viewed in place, never copied.
#pragma once
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mapped_file.h"

namespace lorahub {

// ggml tensor element types (ids as in ggml.h / gguf-py's GGMLQuantizationType). A file may name
// an id we do not know (a newer ggml): it is still listed, and only reading its data fails.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
  NVFP4 = 40,
  Q1_0 = 41,
};

struct GgmlTypeInfo {
  std::string_view name;
  int64_t block_size;  // elements per block
  int64_t type_size;   // bytes per block
};
// nullptr for an id we do not know.
const GgmlTypeInfo* find_ggml_type(GgmlType type);
// Throws Error for an id we do not know ("unknown ggml type 77").
const GgmlTypeInfo& ggml_type_info(GgmlType type);
// "Q6_K (14)", or "unknown (77)": what messages call a type.
std::string ggml_type_label(GgmlType type);

// GGUF metadata value types (ids as in the spec).
enum class GgufValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType type);

struct GgufKV {
  std::string key;
  GgufValueType type;
  GgufValueType element_type = GgufValueType::U8;  // for arrays
  nlohmann::json value;                            // numbers, bool, string or array thereof
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the contiguous (fastest) dimension
  GgmlType type;
  uint64_t offset = 0;  // relative to the data section
  uint64_t nbytes = 0;  // 0 when the type is unknown (its size cannot be known either)

  // Row-major shape as PyTorch sees it: ne reversed ([out, in] for a linear weight).
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
  int64_t numel() const;
};

class GgufFile {
 public:
  // Parses and validates the header; throws Error naming the path and what is wrong.
  static GgufFile open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::vector<GgufKV>& metadata() const { return kvs_; }
  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }

  // Frees the key/values (a vocabulary parses to tens of MB) once a loader has read what it
  // needs; lookups then find nothing. Tensors stay readable.
  void forget_metadata();

  const GgufKV* find(std::string_view key) const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;
  // Typed lookups; throw Error naming the key when missing (without fallback) or mistyped.
  std::string get_string(std::string_view key) const;
  std::optional<std::string> get_string(std::string_view key, std::nullptr_t) const;
  int64_t get_int(std::string_view key) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key, bool fallback) const;
  std::vector<std::string> get_strings(std::string_view key) const;  // empty when missing
  std::vector<int64_t> get_ints(std::string_view key) const;         // empty when missing

  // The raw bytes of a tensor (bounds checked at open()); throws for a type we do not know.
  std::span<const std::byte> tensor_bytes(const GgufTensorInfo& t) const;
  const std::shared_ptr<const MappedFile>& file() const { return file_; }

 private:
  std::string path_;
  std::shared_ptr<const MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<GgufKV> kvs_;
  std::vector<GgufTensorInfo> tensors_;
};

// One tensor to write: ggml-order dims, and its bytes in that type's layout.
struct GgufTensorData {
  std::string name;
  std::vector<int64_t> ne;
  GgmlType type;
  std::span<const std::byte> bytes;
};

// Writes a GGUF v3 file (via a temporary file renamed into place): the key/values in order, with
// the types they carry, then the tensors, each aligned to `alignment` (which general.alignment,
// when among kvs, must equal). Throws Error naming the path or the tensor whose byte count does not
// match its type and dims.
void write_gguf(const std::string& path, const std::vector<GgufKV>& kvs,
                const std::vector<GgufTensorData>& tensors, uint64_t alignment = 32);

}  // namespace lorahub
