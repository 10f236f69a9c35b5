#include "formats/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"

namespace lorahub {
namespace {

// Writes GGUF files byte by byte, so that tests can build valid files and break them precisely.
class GgufBuilder {
 public:
  explicit GgufBuilder(uint32_t version = 3) {
    put<uint32_t>(0x46554747u);
    put<uint32_t>(version);
  }
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const char*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void counts(uint64_t tensors, uint64_t kvs) {
    put<uint64_t>(tensors);
    put<uint64_t>(kvs);
  }
  void tensor_info(const std::string& name, std::vector<uint64_t> ne, uint32_t type,
                   uint64_t offset) {
    str(name);
    put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) put<uint64_t>(d);
    put<uint32_t>(type);
    put<uint64_t>(offset);
  }
  void align(size_t a = 32) {
    while (bytes.size() % a) bytes.push_back(0);
  }
  std::string write(const std::string& name) const {
    const auto path = (std::filesystem::temp_directory_path() /
                       (std::to_string(::getpid()) + "_" + name + ".gguf"))
                          .string();
    std::ofstream(path, std::ios::binary).write(bytes.data(), bytes.size());
    return path;
  }
  std::vector<char> bytes;
};

// A file with one KV of every scalar type, a string array, and two tensors (F32 [2, 4], Q8_0 [32]).
GgufBuilder valid_file(uint32_t version = 3) {
  GgufBuilder b(version);
  b.counts(2, 8);
  b.str("general.architecture"), b.put<uint32_t>(8), b.str("llama");
  b.str("a.u8"), b.put<uint32_t>(0), b.put<uint8_t>(200);
  b.str("a.i16"), b.put<uint32_t>(3), b.put<int16_t>(-300);
  b.str("a.u32"), b.put<uint32_t>(4), b.put<uint32_t>(70000);
  b.str("a.f32"), b.put<uint32_t>(6), b.put<float>(0.5f);
  b.str("a.bool"), b.put<uint32_t>(7), b.put<uint8_t>(1);
  b.str("a.f64"), b.put<uint32_t>(12), b.put<double>(-2.25);
  b.str("a.strings"), b.put<uint32_t>(9), b.put<uint32_t>(8), b.put<uint64_t>(2), b.str("x"),
      b.str("yz");
  b.tensor_info("w", {4, 2}, 0, 0);
  b.tensor_info("q", {32}, 8, 32);
  b.align();
  for (int i = 0; i < 8; ++i) b.put<float>(static_cast<float>(i));  // 32 bytes
  b.put<uint16_t>(0x3c00);                                          // Q8_0: d = 1
  for (int i = 0; i < 32; ++i) b.put<int8_t>(static_cast<int8_t>(i - 16));
  return b;
}

TEST(Gguf, ReadsMetadataOfEveryTypeAndTensorInfos) {
  for (uint32_t version : {2u, 3u}) {
    const GgufFile g = GgufFile::open(valid_file(version).write("valid"));
    EXPECT_EQ(g.version(), version);
    EXPECT_EQ(g.get_string("general.architecture"), "llama");
    EXPECT_EQ(g.get_int("a.u8"), 200);
    EXPECT_EQ(g.get_int("a.i16"), -300);
    EXPECT_EQ(g.get_int("a.u32"), 70000);
    EXPECT_EQ(g.get_float("a.f32", 0), 0.5);
    EXPECT_TRUE(g.get_bool("a.bool", false));
    EXPECT_EQ(g.get_float("a.f64", 0), -2.25);
    EXPECT_EQ(g.get_strings("a.strings"), (std::vector<std::string>{"x", "yz"}));
    EXPECT_EQ(g.get_int("missing", 7), 7);
    ASSERT_EQ(g.tensors().size(), 2u);
    const auto* w = g.find_tensor("w");
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->shape(), (std::vector<int64_t>{2, 4}));  // ne reversed
    EXPECT_EQ(w->nbytes, 32u);
    float third;
    std::memcpy(&third, g.tensor_bytes(*w).data() + 8, 4);
    EXPECT_EQ(third, 2.0f);
    EXPECT_EQ(g.find_tensor("q")->nbytes, 34u);
  }
}

TEST(GgufMalformed, WrongTypedLookupsNameTheKey) {
  const GgufFile g = GgufFile::open(valid_file().write("typed"));
  EXPECT_THROW(g.get_string("a.u8"), Error);
  EXPECT_THROW(g.get_int("general.architecture"), Error);
  EXPECT_THROW(g.get_strings("a.u32"), Error);
  try {
    g.get_int("llama.block_count");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("llama.block_count"), std::string::npos);
  }
}

void expect_error(const GgufBuilder& b, const std::string& name, const std::string& fragment) {
  try {
    GgufFile::open(b.write(name));
    FAIL() << "no error for " << name;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(GgufMalformed, BadMagicAndUnknownVersion) {
  GgufBuilder bad_magic = valid_file();
  bad_magic.bytes[0] = 'X';
  expect_error(bad_magic, "magic", "not a GGUF file");
  expect_error(valid_file(1), "v1", "unsupported GGUF version 1");
  expect_error(valid_file(4), "v4", "unsupported GGUF version 4");
}

TEST(GgufMalformed, TruncatedAnywhere) {
  const GgufBuilder full = valid_file();
  for (size_t cut = 0; cut < full.bytes.size(); ++cut) {
    GgufBuilder b = full;
    b.bytes.resize(cut);
    EXPECT_THROW(GgufFile::open(b.write("cut")), Error) << "cut at " << cut;
  }
}

TEST(GgufMalformed, UnknownGgmlTypeNamesTheTensor) {
  GgufBuilder b;
  b.counts(1, 0);
  b.tensor_info("blk.0.attn_q.weight", {32}, 77, 0);
  b.align();
  b.bytes.resize(b.bytes.size() + 64);
  // Listed (inspect shows any file), but its bytes cannot be located.
  const std::string path = b.write("type");
  const GgufFile g = GgufFile::open(path);
  ASSERT_EQ(g.tensors().size(), 1u);
  EXPECT_EQ(ggml_type_label(g.tensors()[0].type), "unknown (77)");
  try {
    (void)g.tensor_bytes(g.tensors()[0]);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'blk.0.attn_q.weight' has ggml type unknown (77)"),
              std::string::npos)
        << e.what();
  }
}

TEST(GgufMalformed, TensorBoundsAlignmentAndCounts) {
  GgufBuilder past_end;
  past_end.counts(1, 0);
  past_end.tensor_info("t", {8}, 0, 32);  // 32 bytes at offset 32 of a 32-byte data section
  past_end.align();
  past_end.bytes.resize(past_end.bytes.size() + 32);
  expect_error(past_end, "past", "runs past the end of the file");

  GgufBuilder misaligned;
  misaligned.counts(1, 0);
  misaligned.tensor_info("t", {1}, 0, 4);
  misaligned.align();
  misaligned.bytes.resize(misaligned.bytes.size() + 64);
  expect_error(misaligned, "align", "not aligned");

  GgufBuilder row;
  row.counts(1, 0);
  row.tensor_info("t", {33}, 8, 0);  // Q8_0 rows must be whole blocks of 32
  row.align();
  row.bytes.resize(row.bytes.size() + 128);
  expect_error(row, "row", "not a multiple");

  GgufBuilder huge_count;
  huge_count.counts(0, 1);
  huge_count.str("k"), huge_count.put<uint32_t>(9), huge_count.put<uint32_t>(4);
  huge_count.put<uint64_t>(1ull << 60);
  expect_error(huge_count, "count", "more than the file holds");

  GgufBuilder bad_type;
  bad_type.counts(0, 1);
  bad_type.str("k"), bad_type.put<uint32_t>(99);
  expect_error(bad_type, "kvtype", "unknown value type 99");

  GgufBuilder dup;
  dup.counts(0, 2);
  for (int i = 0; i < 2; ++i) dup.str("k"), dup.put<uint32_t>(4), dup.put<uint32_t>(1);
  expect_error(dup, "dup", "duplicate metadata key 'k'");
}

}  // namespace
}  // namespace lorahub
