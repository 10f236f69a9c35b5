#include "kernels/dequant.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"

namespace lorahub {
namespace {

// Two blocks of each format: the bytes gguf.quants.quantize wrote for 64 random floats
// (numpy seed 7) and the f32 bit patterns gguf.quants.dequantize returned for them (gguf 0.19.0).
struct Reference {
  BlockFormat format;
  std::string bytes_hex;
  std::vector<uint32_t> expected_bits;
};

const std::vector<Reference>& references() {
  static const std::vector<Reference> refs = {
      {BlockFormat::Q4_0,
       "8d3b487927452775489c86760a698885386a00babc0b54db88649a5888582db873ae75d8",
       {0x00000000, 0x3f71a000, 0xbf71a000, 0xc0353800, 0xbf71a000, 0xc0353800, 0x00000000,
        0x4071a000, 0xbff1a000, 0xbff1a000, 0x3ff1a000, 0x3f71a000, 0x00000000, 0xc0353800,
        0x00000000, 0x3ff1a000, 0xc071a000, 0xbf71a000, 0xc0b53800, 0xc071a000, 0xc0b53800,
        0xbf71a000, 0xc071a000, 0x3f71a000, 0x00000000, 0xbf71a000, 0xc0f1a000, 0xbff1a000,
        0x00000000, 0x00000000, 0xc0970400, 0xbff1a000, 0xc0400000, 0xc0100000, 0x40400000,
        0xc0100000, 0x80000000, 0x40400000, 0xbfc00000, 0x80000000, 0x80000000, 0x80000000,
        0xc0700000, 0x80000000, 0x40700000, 0xc0900000, 0x40100000, 0x80000000, 0xc0100000,
        0x40c00000, 0x40100000, 0xc0700000, 0x80000000, 0x3fc00000, 0xbf400000, 0x40100000,
        0x80000000, 0x40100000, 0x40900000, 0xc0100000, 0x3f400000, 0xbfc00000, 0x3f400000,
        0xc0700000}},
      {BlockFormat::Q4_1,
       "a039fac57678ac8d83458b70d7b88ebb77d787bfff3a63c6437872408644b88f8455780937970aa9",
       {0xbfe10000, 0xbeb40000, 0x401d8000, 0x404a8000, 0xc0778000, 0xc01d8000, 0x3fe10000,
        0xc0bf4000, 0xbf870000, 0xbeb40000, 0x40778000, 0x3fe10000, 0xbf870000, 0xbf870000,
        0xbf870000, 0x40924000, 0xbf870000, 0xbf870000, 0x3f870000, 0xbeb40000, 0xbeb40000,
        0xc04a8000, 0xbeb40000, 0xbf870000, 0x404a8000, 0x3fe10000, 0xbeb40000, 0x3fe10000,
        0xbf870000, 0x404a8000, 0xbeb40000, 0x3fe10000, 0xc070d800, 0x3f1c0000, 0xc0946800,
        0xc0cc6000, 0xbf91e000, 0xc038e000, 0x3f1c0000, 0x40d76400, 0xc038e000, 0xc000e800,
        0x3f1c0000, 0x3fbdf000, 0xbe87c000, 0xbe87c000, 0x4016f000, 0x3fbdf000, 0xc038e000,
        0xbe87c000, 0xbe87c000, 0xc038e000, 0x3f1c0000, 0xc038e000, 0x404ee800, 0x3f1c0000,
        0x3f1c0000, 0xc000e800, 0xbe87c000, 0xc0cc6000, 0xc070d800, 0x3fbdf000, 0xc0cc6000,
        0x4016f000}},
      {BlockFormat::Q8_0,
       "48298137c3390a905b69fbecf4b950d9fcc6d2a35bf54601cde8d701e5ea9cc578cf5329b4186597f1d28135fe0"
       "5ca21d9f6b0a860db15fee0db2deaf50255311cd79c44",
       {0xc0a7ae00, 0x40113c00, 0xc0211400, 0x40168400, 0x3ed34000, 0xc093e000, 0x40704c00,
        0x408aa200, 0xbe534000, 0xbf534000, 0xbefd8000, 0xc03b7c00, 0x40534000, 0xbfcdf800,
        0xbe290000, 0xc0192800, 0xbff2f000, 0xc0759400, 0x40704c00, 0xbee86000, 0x4038d800,
        0x3d290000, 0xc006ac00, 0xbf7d8000, 0xbfd88800, 0x3d290000, 0xbf8e9800, 0xbf686000,
        0xc0840800, 0xc01bcc00, 0x409e7000, 0xc0016400, 0xc04a5200, 0x3f7f9000, 0x40866fc0,
        0xc08bc2c0, 0xbf1fba00, 0xbff4ea00, 0xc0a90b40, 0x400d1780, 0xbdaa6000, 0x3e54f800,
        0xc00fc100, 0x3fafb300, 0xbfcfa500, 0xbed4f800, 0xc054f800, 0xc06a4400, 0x407f9000,
        0xbfc4ff00, 0x3f5f9e00, 0xbdaa6000, 0xbfaa6000, 0xbfc4ff00, 0x3fef9700, 0xbf6a4400,
        0xbeea4400, 0x3daa6000, 0x40624780, 0x40027180, 0x3f951400, 0xbfda4b00, 0xc0851b00,
        0x40350600}},
  };
  return refs;
}

std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out;
  for (size_t i = 0; i < hex.size(); i += 2)
    out.push_back(static_cast<std::byte>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

TEST(Dequant, BitIdenticalToGgufPythonPackage) {
  for (const auto& ref : references()) {
    const auto bytes = from_hex(ref.bytes_hex);
    ASSERT_EQ(static_cast<int64_t>(bytes.size()), 2 * block_bytes(ref.format));
    std::vector<float> out(64);
    dequantize(ref.format, bytes.data(), out.data(), 64);
    for (size_t i = 0; i < out.size(); ++i) {
      uint32_t bits;
      std::memcpy(&bits, &out[i], 4);
      EXPECT_EQ(bits, ref.expected_bits[i])
          << "format " << static_cast<int>(ref.format) << " element " << i;
    }
  }
}

TEST(Dequant, NibbleOrderLowHalfThenHighHalf) {
  // Q4_0 with d = 1 (f16 0x3c00): byte j holds element j (low nibble) and j + 16 (high nibble).
  std::vector<std::byte> block(18, std::byte{0});
  block[0] = std::byte{0x00};
  block[1] = std::byte{0x3c};
  block[2] = std::byte{0xf9};  // element 0: 9 - 8 = 1; element 16: 15 - 8 = 7
  std::vector<float> out(32);
  dequantize(BlockFormat::Q4_0, block.data(), out.data(), 32);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[16], 7.0f);
  EXPECT_EQ(out[1], -8.0f);
}

TEST(DequantMalformed, RejectsPartialBlocks) {
  std::vector<std::byte> block(34);
  std::vector<float> out(40);
  EXPECT_THROW(dequantize(BlockFormat::Q8_0, block.data(), out.data(), 40), Error);
}

}  // namespace
}  // namespace lorahub
