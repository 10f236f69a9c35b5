#include "formats/gguf.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <unordered_set>

#include "core/error.h"

namespace lorahub {
namespace {

constexpr std::array<std::pair<GgmlType, GgmlTypeInfo>, 6> kGgmlTypes = {{
    {GgmlType::F32, {"F32", 1, 4}},
    {GgmlType::F16, {"F16", 1, 2}},
    {GgmlType::Q4_0, {"Q4_0", 32, 2 + 16}},
    {GgmlType::Q4_1, {"Q4_1", 32, 2 + 2 + 16}},
    {GgmlType::Q8_0, {"Q8_0", 32, 2 + 32}},
    {GgmlType::BF16, {"BF16", 1, 2}},
}};

// Limits that no real model reaches; they keep a corrupt header from asking for absurd memory.
constexpr uint64_t kMaxDims = 4;
constexpr uint64_t kMaxStringBytes = 1ull << 30;

// A bounds-checked little-endian cursor over the mapped file.
class Cursor {
 public:
  Cursor(const std::string& path, std::span<const std::byte> bytes) : path_(path), bytes_(bytes) {}

  template <typename T>
  T read(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view what) {
    const auto n = read<uint64_t>(what);
    check(n <= kMaxStringBytes, "{}: {} has an implausible string length {}", path_, what, n);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return s;
  }

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

 private:
  void need(uint64_t n, std::string_view what) {
    if (n > remaining())
      fail("{}: truncated GGUF header while reading {} (needs {} bytes at offset {}, file has {})",
           path_, what, n, pos_, bytes_.size());
  }
  const std::string& path_;
  std::span<const std::byte> bytes_;
  size_t pos_ = 0;
};

GgufValueType read_value_type(Cursor& c, const std::string& path, const std::string& key) {
  const auto id = c.read<uint32_t>(key + " type");
  check(id <= static_cast<uint32_t>(GgufValueType::F64),
        "{}: metadata '{}' has unknown value type {}", path, key, id);
  return static_cast<GgufValueType>(id);
}

nlohmann::json read_scalar(Cursor& c, GgufValueType t, const std::string& what) {
  switch (t) {
    case GgufValueType::U8:
      return c.read<uint8_t>(what);
    case GgufValueType::I8:
      return c.read<int8_t>(what);
    case GgufValueType::U16:
      return c.read<uint16_t>(what);
    case GgufValueType::I16:
      return c.read<int16_t>(what);
    case GgufValueType::U32:
      return c.read<uint32_t>(what);
    case GgufValueType::I32:
      return c.read<int32_t>(what);
    case GgufValueType::F32:
      return c.read<float>(what);
    case GgufValueType::Bool:
      return c.read<uint8_t>(what) != 0;
    case GgufValueType::String:
      return c.read_string(what);
    case GgufValueType::U64:
      return c.read<uint64_t>(what);
    case GgufValueType::I64:
      return c.read<int64_t>(what);
    case GgufValueType::F64:
      return c.read<double>(what);
    case GgufValueType::Array:
      break;
  }
  fail("{}: nested arrays are not supported", what);
}

size_t min_value_bytes(GgufValueType t) {
  switch (t) {
    case GgufValueType::U8:
    case GgufValueType::I8:
    case GgufValueType::Bool:
      return 1;
    case GgufValueType::U16:
    case GgufValueType::I16:
      return 2;
    case GgufValueType::U32:
    case GgufValueType::I32:
    case GgufValueType::F32:
      return 4;
    default:
      return 8;  // u64, i64, f64, string length
  }
}

GgufKV read_kv(Cursor& c, const std::string& path) {
  GgufKV kv;
  kv.key = c.read_string("metadata key");
  kv.type = read_value_type(c, path, kv.key);
  const std::string what = fmt::format("{}: metadata '{}'", path, kv.key);
  if (kv.type != GgufValueType::Array) {
    kv.value = read_scalar(c, kv.type, what);
    return kv;
  }
  kv.element_type = read_value_type(c, path, kv.key);
  check(kv.element_type != GgufValueType::Array, "{} is an array of arrays (unsupported)", what);
  const auto n = c.read<uint64_t>(kv.key + " array length");
  // Each element takes at least min_value_bytes: a count beyond that cannot be real.
  check(n <= c.remaining() / min_value_bytes(kv.element_type),
        "{} claims {} elements, more than the file holds", what, n);
  kv.value = nlohmann::json::array();
  auto& arr = kv.value.get_ref<nlohmann::json::array_t&>();
  arr.reserve(n);
  for (uint64_t i = 0; i < n; ++i) arr.push_back(read_scalar(c, kv.element_type, what));
  return kv;
}

GgufTensorInfo read_tensor_info(Cursor& c, const std::string& path) {
  GgufTensorInfo t;
  t.name = c.read_string("tensor name");
  const std::string what = fmt::format("{}: tensor '{}'", path, t.name);
  const auto n_dims = c.read<uint32_t>(t.name + " n_dims");
  check(n_dims >= 1 && n_dims <= kMaxDims, "{} has {} dimensions (1 to {} allowed)", what, n_dims,
        kMaxDims);
  for (uint32_t i = 0; i < n_dims; ++i) {
    const auto d = c.read<uint64_t>(t.name + " dims");
    check(d >= 1 && d <= (1ull << 40), "{} has invalid dimension {}", what, d);
    t.ne.push_back(static_cast<int64_t>(d));
  }
  const auto type_id = c.read<uint32_t>(t.name + " type");
  const auto type = ggml_type_from_id(type_id);
  check(type.has_value(), "{} has unknown or unsupported ggml type {}", what, type_id);
  t.type = *type;
  t.offset = c.read<uint64_t>(t.name + " offset");
  const auto& info = ggml_type_info(t.type);
  check(t.ne[0] % info.block_size == 0,
        "{}: row length {} is not a multiple of the {} block size {}", what, t.ne[0], info.name,
        info.block_size);
  int64_t n = 1;
  for (int64_t d : t.ne) {
    check(n <= (int64_t{1} << 50) / d, "{} is implausibly large", what);
    n *= d;
  }
  t.nbytes = static_cast<uint64_t>(n / info.block_size * info.type_size);
  return t;
}

}  // namespace

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
  for (const auto& [t, info] : kGgmlTypes)
    if (t == type) return info;
  fail("unknown ggml type {}", static_cast<uint32_t>(type));
}

std::optional<GgmlType> ggml_type_from_id(uint32_t id) {
  for (const auto& [t, info] : kGgmlTypes)
    if (static_cast<uint32_t>(t) == id) return t;
  return std::nullopt;
}

std::string_view gguf_value_type_name(GgufValueType type) {
  static constexpr std::array<std::string_view, 13> names = {
      "u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
      "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(type);
  return i < names.size() ? names[i] : "?";
}

int64_t GgufTensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : ne) n *= d;
  return n;
}

GgufFile GgufFile::open(const std::string& path) {
  GgufFile g;
  g.path_ = path;
  g.file_ = MappedFile::open(path);
  Cursor c(path, g.file_->bytes());
  const auto magic = c.read<uint32_t>("magic");
  check(magic == 0x46554747u, "{}: not a GGUF file (bad magic)", path);  // "GGUF" little-endian
  g.version_ = c.read<uint32_t>("version");
  check(g.version_ == 2 || g.version_ == 3,
        "{}: unsupported GGUF version {} (versions 2 and 3 are supported)", path, g.version_);
  const auto n_tensors = c.read<uint64_t>("tensor count");
  const auto n_kv = c.read<uint64_t>("metadata count");
  // Every KV and tensor info takes well over 8 bytes, which bounds the counts by the file size.
  check(n_kv <= c.remaining() / 8 && n_tensors <= c.remaining() / 8,
        "{}: header claims {} metadata entries and {} tensors, more than the file holds", path,
        n_kv, n_tensors);
  std::unordered_set<std::string> keys;
  for (uint64_t i = 0; i < n_kv; ++i) {
    g.kvs_.push_back(read_kv(c, path));
    check(keys.insert(g.kvs_.back().key).second, "{}: duplicate metadata key '{}'", path,
          g.kvs_.back().key);
  }
  if (const auto* a = g.find("general.alignment")) {
    check(a->value.is_number_unsigned() && a->value.get<uint64_t>() > 0 &&
              (a->value.get<uint64_t>() & (a->value.get<uint64_t>() - 1)) == 0,
          "{}: general.alignment must be a power of two, got {}", path, a->value.dump());
    g.alignment_ = a->value.get<uint64_t>();
  }
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < n_tensors; ++i) {
    g.tensors_.push_back(read_tensor_info(c, path));
    check(names.insert(g.tensors_.back().name).second, "{}: duplicate tensor '{}'", path,
          g.tensors_.back().name);
  }
  g.data_offset_ = (c.pos() + g.alignment_ - 1) / g.alignment_ * g.alignment_;
  const uint64_t file_size = g.file_->size();
  for (const auto& t : g.tensors_) {
    check(t.offset % g.alignment_ == 0, "{}: tensor '{}' offset {} is not aligned to {}", path,
          t.name, t.offset, g.alignment_);
    check(g.data_offset_ <= file_size && t.offset <= file_size - g.data_offset_ &&
              t.nbytes <= file_size - g.data_offset_ - t.offset,
          "{}: tensor '{}' data ({} bytes at offset {}) runs past the end of the file (truncated?)",
          path, t.name, t.nbytes, g.data_offset_ + t.offset);
  }
  return g;
}

const GgufKV* GgufFile::find(std::string_view key) const {
  for (const auto& kv : kvs_)
    if (kv.key == key) return &kv;
  return nullptr;
}

const GgufTensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::string GgufFile::get_string(std::string_view key) const {
  auto v = get_string(key, nullptr);
  check(v.has_value(), "{}: metadata '{}' is missing", path_, key);
  return *v;
}

std::optional<std::string> GgufFile::get_string(std::string_view key, std::nullptr_t) const {
  const auto* kv = find(key);
  if (!kv) return std::nullopt;
  check(kv->value.is_string(), "{}: metadata '{}' should be a string", path_, key);
  return kv->value.get<std::string>();
}

int64_t GgufFile::get_int(std::string_view key) const {
  check(find(key) != nullptr, "{}: metadata '{}' is missing", path_, key);
  return get_int(key, 0);
}

int64_t GgufFile::get_int(std::string_view key, int64_t fallback) const {
  const auto* kv = find(key);
  if (!kv) return fallback;
  check(kv->value.is_number_integer(), "{}: metadata '{}' should be an integer", path_, key);
  return kv->value.get<int64_t>();
}

double GgufFile::get_float(std::string_view key, double fallback) const {
  const auto* kv = find(key);
  if (!kv) return fallback;
  check(kv->value.is_number(), "{}: metadata '{}' should be a number", path_, key);
  return kv->value.get<double>();
}

bool GgufFile::get_bool(std::string_view key, bool fallback) const {
  const auto* kv = find(key);
  if (!kv) return fallback;
  check(kv->value.is_boolean(), "{}: metadata '{}' should be a bool", path_, key);
  return kv->value.get<bool>();
}

std::vector<std::string> GgufFile::get_strings(std::string_view key) const {
  const auto* kv = find(key);
  if (!kv) return {};
  check(kv->type == GgufValueType::Array && kv->element_type == GgufValueType::String,
        "{}: metadata '{}' should be an array of strings", path_, key);
  return kv->value.get<std::vector<std::string>>();
}

std::vector<int64_t> GgufFile::get_ints(std::string_view key) const {
  const auto* kv = find(key);
  if (!kv) return {};
  check(kv->type == GgufValueType::Array && kv->element_type != GgufValueType::String &&
            kv->element_type != GgufValueType::F32 && kv->element_type != GgufValueType::F64,
        "{}: metadata '{}' should be an array of integers", path_, key);
  std::vector<int64_t> out;
  for (const auto& v : kv->value) out.push_back(v.is_boolean() ? v.get<bool>() : v.get<int64_t>());
  return out;
}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& t) const {
  return file_->bytes().subspan(data_offset_ + t.offset, t.nbytes);
}

}  // namespace lorahub
