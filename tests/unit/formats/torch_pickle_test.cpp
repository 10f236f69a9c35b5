#include "formats/torch_pickle.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test_util.h"

namespace lorahub {
namespace {
using testing::expect_error;
using namespace std::string_literals;  // pickles hold NUL bytes

// Builds protocol-2 pickles the way torch.save writes a state dict.
struct Pickle {
  std::string bytes = "\x80\x02";

  Pickle& op(const std::string& s) {
    bytes += s;
    return *this;
  }
  Pickle& str(const std::string& s) {
    bytes += 'X';
    const uint32_t n = static_cast<uint32_t>(s.size());
    bytes.append(reinterpret_cast<const char*>(&n), 4);
    bytes += s;
    return *this;
  }
  Pickle& integer(uint8_t v) { return op(std::string("K") + static_cast<char>(v)); }
  Pickle& global(const std::string& module, const std::string& name) {
    return op("c" + module + "\n" + name + "\n");
  }
  Pickle& tuple_of_ints(std::initializer_list<uint8_t> values) {
    op("(");
    for (uint8_t v : values) integer(v);
    return op("t");
  }
  // _rebuild_tensor_v2(storage(key, class, numel), offset, size, stride, False, OrderedDict())
  Pickle& tensor(const std::string& key, const std::string& storage_class, uint8_t numel,
                 uint8_t offset, std::initializer_list<uint8_t> size,
                 std::initializer_list<uint8_t> stride) {
    global("torch._utils", "_rebuild_tensor_v2").op("((").str("storage");
    global("torch", storage_class).str(key).str("cpu").integer(numel).op("tQ");
    integer(offset).tuple_of_ints(size).tuple_of_ints(stride).op("\x89");
    global("collections", "OrderedDict").op(")R").op("tR");
    return *this;
  }
  std::span<const std::byte> span() const {
    return {reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()};
  }
};

// Storage `key` holds floats key*100 + 0, 1, 2, ...
TorchStorage float_storage(const std::string& key, DType dtype, uint64_t numel) {
  EXPECT_EQ(dtype, DType::F32);
  auto bytes = std::make_shared<std::vector<std::byte>>(numel * 4);
  for (uint64_t i = 0; i < numel; ++i) {
    const float v = std::stof(key) * 100 + static_cast<float>(i);
    std::memcpy(bytes->data() + i * 4, &v, 4);
  }
  return {dtype, bytes};
}

StateDict parse(const Pickle& p) {
  return parse_torch_pickle(p.span(), "t.bin", float_storage);
}

TEST(TorchPickle, ContiguousViewWithOffset) {
  Pickle p;
  p.op("}").str("w").tensor("1", "FloatStorage", 10, 2, {2, 3}, {3, 1}).op("s.");
  const StateDict d = parse(p);
  ASSERT_EQ(d.names(), std::vector<std::string>{"w"});
  EXPECT_EQ(d.get("w").shape, (Shape{2, 3}));
  EXPECT_EQ(d.get("w").to_f32(), (std::vector<float>{102, 103, 104, 105, 106, 107}));
}

TEST(TorchPickle, TransposedViewIsCopiedInLogicalOrder) {
  Pickle p;  // a [3, 2] transpose of a [2, 3] storage
  p.op("}").str("t").tensor("0", "FloatStorage", 6, 0, {3, 2}, {1, 3}).op("s.");
  EXPECT_EQ(parse(p).get("t").to_f32(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(TorchPickle, OrderedDictWithMetadataAndSharedStorage) {
  Pickle p;
  p.global("collections", "OrderedDict").op(")R(");
  p.str("b").tensor("2", "FloatStorage", 4, 0, {2}, {1});
  p.str("a").tensor("2", "FloatStorage", 4, 2, {2}, {1});
  p.str("s").tensor("3", "FloatStorage", 1, 0, {}, {});
  p.op("u}").str("_metadata").op("}s").op("b.");  // BUILD with state, as state_dict() pickles
  const StateDict d = parse(p);
  EXPECT_EQ(d.names(), (std::vector<std::string>{"b", "a", "s"}));
  EXPECT_EQ(d.get("a").to_f32(), (std::vector<float>{202, 203}));
  EXPECT_EQ(d.get("b").owner, d.get("a").owner);  // one storage, two views
  EXPECT_EQ(d.get("s").shape, Shape{});
}

struct BadPickle {
  const char* what;
  std::string bytes;  // after the PROTO header
  const char* fragment;
};

class TorchPickleMalformed : public ::testing::TestWithParam<BadPickle> {};

TEST_P(TorchPickleMalformed, ClearError) {
  Pickle p;
  p.op(GetParam().bytes);
  expect_error([&] { parse(p); }, {"t.bin", GetParam().fragment});
}

std::string tensor_pickle(uint8_t numel, uint8_t offset, std::initializer_list<uint8_t> size,
                          std::initializer_list<uint8_t> stride) {
  Pickle p;
  p.bytes.clear();
  p.op("}").str("w").tensor("1", "FloatStorage", numel, offset, size, stride).op("s.");
  return p.bytes;
}

INSTANTIATE_TEST_SUITE_P(
    Pickles, TorchPickleMalformed,
    ::testing::Values(
        BadPickle{"os_system", "cos\nsystem\nX\x05\0\0\0touch\x85R."s,
                  "refusing global 'os.system'"},
        BadPickle{"posix_system", "cposix\nsystem\n.", "'posix.system'"},
        BadPickle{"eval", "cbuiltins\neval\n.", "'builtins.eval'"},
        BadPickle{"torch_load", "ctorch\nload\n.", "'torch.load'"},
        BadPickle{"fp8_storage", "ctorch\nFloat8_e4m3fnStorage\n.", "unsupported storage type"},
        BadPickle{"stack_global", "X\x02\0\0\0osX\x06\0\0\0system\x93."s, "'os.system'"},
        BadPickle{"truncated", "X\xff\0\0\0ab"s, "truncated"},
        BadPickle{"no_stop", "}", "truncated"},
        BadPickle{"unknown_opcode", "\xff", "unsupported pickle opcode 0xff"},
        BadPickle{"underflow", "s.", "underflow"},
        BadPickle{"mark_fence", "}(X\x01\0\0\0ks."s, "underflow"},
        BadPickle{"missing_memo", "h\x07.", "memo entry 7"},
        BadPickle{"not_a_dict", "].", "not a state dict"},
        BadPickle{"not_a_tensor", "}X\x01\0\0\0kK\x01s."s, "entry 'k' is a int"},
        BadPickle{"call_storage", "ctorch\nFloatStorage\n)R.", "cannot be called"},
        BadPickle{"past_storage", tensor_pickle(4, 2, {2, 2}, {2, 1}), "reads past its storage"},
        BadPickle{"huge_stride", tensor_pickle(4, 0, {2, 2}, {255, 1}), "reads past its storage"},
        BadPickle{"wide_long", "\x8a\x09" + std::string(9, '\x01') + ".", "wider than 64 bits"},
        BadPickle{"two_values", "}}.", "2 values on the stack"},
        BadPickle{"bad_utf8_str", "X\x02\0\0\0\xff\xfe."s, "not valid UTF-8"},
        BadPickle{"bad_utf8_global", "c\xffos\nsys\xfetem\n."s, "refusing global"}),
    [](const auto& info) { return std::string(info.param.what); });

TEST(TorchPickleMalformed, SelfContainingListDoesNotLeakOrLoop) {
  Pickle p;  // l = []; l.append(l); then a non-dict result
  p.op("]q\0h\0a."s);
  expect_error([&] { parse(p); }, {"not a state dict"});
}

TEST(TorchPickleMalformed, DeepNestingDoesNotRecurse) {
  Pickle p;
  p.op(")");
  p.op(std::string(80000, '\x85'));  // ((((),),),) 80k deep
  p.op(".");
  expect_error([&] { parse(p); }, {"not a state dict"});
}

// One-byte opcodes that each allocate a container or memo entry would amplify ~200x; the
// machine's memory is bounded by a multiple of the pickle's size.
TEST(TorchPickleMalformed, ContainerAndMemoBombsStopAtTheBudget) {
  for (const std::string& op : {"]"s, "}"s}) {
    Pickle p;
    p.op("N" + std::string(4 << 20, op[0]) + ".");
    expect_error([&] { parse(p); }, {"t.bin", "pickle bomb"});
  }
}

// A value per pickle byte is several times what a state dict makes: the count of values is
// bounded by the pickle's size too (memory alone would let a 64-byte Node per byte through).
TEST(TorchPickleMalformed, MoreValuesThanAStateDictMakesStopClearly) {
  Pickle p;
  p.op("(" + std::string(1 << 20, 'N') + "t.");
  expect_error([&] { parse(p); }, {"t.bin", "pickle bomb", "values"});
  // A real state dict, however many tensors, stays far below both bounds.
  Pickle dict;
  dict.op("}(");
  for (int i = 0; i < 5000; ++i) {
    dict.str(std::to_string(i) + ".w")
        .tensor(std::to_string(i % 3), "FloatStorage", 6, 0, {2, 3}, {3, 1});
  }
  dict.op("u.");
  EXPECT_EQ(parse(dict).size(), 5000u);
}

TEST(TorchPickleMalformed, ZipWithoutDataPkl) {
  expect_error([] { load_torch_zip({}, "empty.bin"); }, {"empty.bin", "zip"});
}

}  // namespace
}  // namespace lorahub
