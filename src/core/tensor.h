// A tensor as read from a file: dtype, shape and a pointer into storage that the tensor keeps
// alive (an mmap'd file or an owned buffer). Row-major, contiguous. Compute code converts to
// f32 with to_f32() (the fp32 reference path) or reads bf16 directly (the fast path).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace lorahub {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& s);
std::string shape_str(const Shape& s);  // "[4, 16]"

struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  const std::byte* data = nullptr;
  std::shared_ptr<const void> owner;  // keeps `data` alive
  bool file_backed = false;           // `data` points into a read-only file mapping

  int64_t numel() const { return shape_numel(shape); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }

  // New owned f32 tensor holding a copy; throws for non-float dtypes.
  std::vector<float> to_f32() const;
  // For a file-backed tensor whose values were copied out: lets the kernel drop its pages from
  // memory (they are read again from the file if touched), so that loading a model does not hold
  // the file and the converted weights at once. No effect on other tensors.
  void release_pages() const;
  const float* f32() const { return reinterpret_cast<const float*>(data); }

  // An owned tensor from values.
  static Tensor from_f32(std::vector<float> values, Shape shape);
  static Tensor owned(DType dtype, Shape shape);  // zero-initialised
  std::byte* mutable_data() const { return const_cast<std::byte*>(data); }
};

}  // namespace lorahub
