// safetensors (https://github.com/huggingface/safetensors): 8-byte little-endian header length N,
// N bytes of JSON {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {..}},
// then the raw tensor bytes. Files are mmap'd and every field is validated before any tensor
// is viewed, so that a hostile file gives an Error and never an out-of-bounds read.
#pragma once
#include <cstddef>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/mapped_file.h"
#include "core/tensor.h"

namespace lorahub {

// Where one tensor lies: [begin, end) relative to the start of the data section.
struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  size_t begin = 0;
  size_t end = 0;
};

// The validated header of a safetensors file.
struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // in file order (by data offset)
  std::map<std::string, std::string> metadata;
  size_t data_start = 0;  // byte offset of the data section in the file
};

// Validates header and spans against the whole file's bytes; `source` names the file in errors.
// Exposed for the unit tests and the fuzzer; SafetensorsFile::open is the normal entry point.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file,
                                           const std::string& source);

class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::vector<SafetensorsEntry>& entries() const { return header_.entries; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  std::vector<std::string> names() const;  // file order
  bool contains(const std::string& name) const { return index_.count(name) != 0; }

  // A view into the mapped file (kept alive by the tensor). Data that is not aligned for its
  // element type (possible in files not written by the safetensors library) is copied instead.
  Tensor get(const std::string& name) const;

 private:
  std::shared_ptr<const MappedFile> file_;
  SafetensorsHeader header_;
  std::unordered_map<std::string, size_t> index_;  // name -> position in header_.entries
};

struct NamedTensor {
  std::string name;
  Tensor tensor;
};

// Writes tensors in the given order (any dtype; names unique and non-empty) with optional
// string metadata, atomically. The header is padded to 8 bytes, as the safetensors library does.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace lorahub
