#include "core/tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstring>

#include "core/error.h"
#include "core/half.h"
#include "core/mapped_file.h"

namespace lorahub {

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

std::string shape_str(const Shape& s) {
  return fmt::format("[{}]", fmt::join(s, ", "));
}

void Tensor::release_pages() const {
  if (file_backed) release_file_pages(data, nbytes());
}

std::vector<float> Tensor::to_f32() const {
  const size_t n = static_cast<size_t>(numel());
  std::vector<float> out(n);
  if (n == 0) return out;  // an empty tensor may have no storage at all (data == nullptr)
  const auto* u16 = reinterpret_cast<const uint16_t*>(data);
  switch (dtype) {
    case DType::F32:
      std::memcpy(out.data(), data, n * 4);
      break;
    case DType::F16:
      f16_to_f32(u16, out.data(), n);
      break;
    case DType::BF16:
      bf16_to_f32(u16, out.data(), n);
      break;
    case DType::F64:
      for (size_t i = 0; i < n; ++i)
        out[i] = static_cast<float>(reinterpret_cast<const double*>(data)[i]);
      break;
    default:
      fail("tensor of dtype {} cannot be converted to F32", dtype_name(dtype));
  }
  return out;
}

Tensor Tensor::from_f32(std::vector<float> values, Shape shape) {
  check(static_cast<int64_t>(values.size()) == shape_numel(shape),
        "from_f32: {} values for shape {}", values.size(), shape_str(shape));
  auto buf = std::make_shared<std::vector<float>>(std::move(values));
  Tensor t;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data = reinterpret_cast<const std::byte*>(buf->data());
  t.owner = buf;
  return t;
}

Tensor Tensor::owned(DType dtype, Shape shape) {
  const size_t n = static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype);
  auto buf = std::make_shared<std::vector<std::byte>>(n);
  Tensor t;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data = buf->data();
  t.owner = buf;
  return t;
}

}  // namespace lorahub
