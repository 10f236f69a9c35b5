#include "formats/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>

#include "core/mapped_file.h"
#include "test_util.h"

namespace lorahub {
namespace {
using testing::expect_error;
using testing::ScratchDir;
using testing::write_bytes;

// A safetensors file from a header text and `data_bytes` zero bytes of data.
std::string raw_file(const std::string& header, size_t data_bytes) {
  std::string out(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(out.data(), &n, 8);
  return out + header + std::string(data_bytes, '\0');
}

TEST(Safetensors, RoundTripKeepsOrderValuesAndMetadata) {
  ScratchDir dir;
  const auto path = dir.file("t.safetensors");
  Tensor a = Tensor::from_f32({1.5f, -2.0f, 3.25f, 0.0f, 5.0f, 6.0f}, {2, 3});
  Tensor b = Tensor::owned(DType::BF16, {3});
  Tensor scalar = Tensor::from_f32({7.0f}, {});
  Tensor empty = Tensor::owned(DType::F16, {0, 4});
  auto* bits = reinterpret_cast<uint16_t*>(b.mutable_data());
  bits[0] = 0x3f80;  // 1.0
  bits[1] = 0xc000;  // -2.0
  bits[2] = 0x7f80;  // inf
  write_safetensors(path, {{"z.a", a}, {"b", b}, {"s", scalar}, {"e", empty}}, {{"format", "pt"}});

  const auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f.names(), (std::vector<std::string>{"z.a", "b", "s", "e"}));
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const Tensor ra = f.get("z.a");
  EXPECT_EQ(ra.dtype, DType::F32);
  EXPECT_EQ(ra.shape, (Shape{2, 3}));
  EXPECT_EQ(ra.to_f32(), a.to_f32());
  const Tensor rb = f.get("b");
  EXPECT_EQ(std::memcmp(rb.data, b.data, 6), 0);
  EXPECT_EQ(f.get("s").shape, Shape{});
  EXPECT_EQ(f.get("s").to_f32(), std::vector<float>{7.0f});
  EXPECT_EQ(f.get("e").numel(), 0);
  // The data section starts 8-byte aligned, so views are zero-copy into the map.
  EXPECT_EQ((MappedFile::open(path)->size() - 8 - 3 * 4 * 2 - 6 - 4) % 8, 0u);
}

TEST(Safetensors, TensorOutlivesTheFileObject) {
  ScratchDir dir;
  const auto path = dir.file("t.safetensors");
  write_safetensors(path, {{"w", Tensor::from_f32({1, 2, 3, 4}, {4})}});
  Tensor t = SafetensorsFile::open(path).get("w");
  EXPECT_EQ(t.to_f32(), (std::vector<float>{1, 2, 3, 4}));
}

TEST(Safetensors, UnalignedDataIsCopied) {
  ScratchDir dir;
  const auto path = dir.file("u.safetensors");
  // A 1-byte U8 tensor first puts the F32 tensor at an odd offset.
  const std::string header = R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                             R"("b":{"dtype":"F32","shape":[1],"data_offsets":[1,5]}})";
  std::string bytes = raw_file(header, 5);
  const float one = 1.0f;
  std::memcpy(bytes.data() + 8 + header.size() + 1, &one, 4);
  write_bytes(path, bytes);
  const Tensor b = SafetensorsFile::open(path).get("b");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data) % 4, 0u);
  EXPECT_EQ(b.to_f32(), std::vector<float>{1.0f});
}

TEST(SafetensorsWriterMalformed, RefusesDuplicateAndEmptyNames) {
  ScratchDir dir;
  const auto t = Tensor::from_f32({1}, {1});
  expect_error([&] { write_safetensors(dir.file("d"), {{"x", t}, {"x", t}}); }, {"'x'", "twice"});
  expect_error([&] { write_safetensors(dir.file("e"), {{"", t}}); }, {"invalid tensor name"});
}

// Each malformed header, and a fragment the error must contain.
struct BadHeader {
  const char* what;
  std::string header;
  size_t data_bytes;
  const char* fragment;
};

class SafetensorsMalformed : public ::testing::TestWithParam<BadHeader> {};

TEST_P(SafetensorsMalformed, ClearErrorNamingTheFile) {
  ScratchDir dir;
  const auto path = dir.file("bad.safetensors");
  write_bytes(path, raw_file(GetParam().header, GetParam().data_bytes));
  expect_error([&] { SafetensorsFile::open(path); }, {path, GetParam().fragment});
}

const std::string kOk = R"("dtype":"F32","shape":[2])";
INSTANTIATE_TEST_SUITE_P(
    Headers, SafetensorsMalformed,
    ::testing::Values(
        BadHeader{"not json", "{nope", 0, "invalid JSON"},
        BadHeader{"array header", "[1,2]", 0, "must be a JSON object"},
        BadHeader{"deep nesting", std::string(10000, '[') + std::string(10000, ']'), 0,
                  "nested deeper"},
        BadHeader{"unknown dtype", R"({"a":{"dtype":"F7","shape":[1],"data_offsets":[0,4]}})", 4,
                  "unknown dtype 'F7'"},
        BadHeader{"size mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8,
                  "shape/byte-size mismatch"},
        BadHeader{"past end", "{\"a\":{" + kOk + ",\"data_offsets\":[0,8]}}", 4,
                  "past the end of the data"},
        BadHeader{"overlap",
                  "{\"a\":{" + kOk + ",\"data_offsets\":[0,8]},\"b\":{" + kOk +
                      ",\"data_offsets\":[4,12]}}",
                  12, "overlapping"},
        BadHeader{"huge number", R"({"a":{"dtype":"F32","shape":[1e400],"data_offsets":[0,4]}})", 4,
                  "invalid JSON"},
        BadHeader{"float dim", R"({"a":{"dtype":"F32","shape":[1e30],"data_offsets":[0,4]}})", 4,
                  "non-negative integer"},
        BadHeader{"negative dim", R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4,
                  "non-negative integer"},
        BadHeader{"overflowing shape",
                  R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})",
                  4, "too large"},
        BadHeader{"reversed offsets", "{\"a\":{" + kOk + ",\"data_offsets\":[8,0]}}", 8,
                  "end before they begin"},
        BadHeader{"missing field", R"({"a":{"dtype":"F32","shape":[1]}})", 4,
                  "missing 'data_offsets'"},
        BadHeader{"wrong type", R"({"a":{"dtype":5,"shape":[1],"data_offsets":[0,4]}})", 4,
                  "'dtype' must be a string"},
        BadHeader{"metadata not strings", R"({"__metadata__":{"k":1}})", 0, "must be a string"}),
    [](const auto& info) {
      std::string name = info.param.what;
      for (char& c : name)
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      return name;
    });

TEST(SafetensorsMalformed, TruncatedFiles) {
  ScratchDir dir;
  const auto path = dir.file("short.safetensors");
  write_bytes(path, "abc");
  expect_error([&] { SafetensorsFile::open(path); }, {path, "truncated"});
  std::string len(8, '\0');
  len[0] = 100;  // header of 100 bytes, none present
  write_bytes(path, len + "{}");
  expect_error([&] { SafetensorsFile::open(path); }, {path, "past the end of the file"});
  write_bytes(path, std::string(8, '\xff'));
  expect_error([&] { SafetensorsFile::open(path); }, {path, "past the end of the file"});
}

TEST(SafetensorsMalformed, MissingFile) {
  expect_error([] { SafetensorsFile::open("/nonexistent/x.safetensors"); },
               {"/nonexistent/x.safetensors", "cannot open"});
}

}  // namespace
}  // namespace lorahub
