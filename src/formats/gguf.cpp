#include "formats/gguf.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <unordered_set>

#include "core/error.h"

namespace lorahub {
namespace {

// Block sizes as gguf-py's GGML_QUANT_SIZES (QK_K = 256).
constexpr std::pair<GgmlType, GgmlTypeInfo> kGgmlTypes[] = {
    {GgmlType::F32, {"F32", 1, 4}},          {GgmlType::F16, {"F16", 1, 2}},
    {GgmlType::Q4_0, {"Q4_0", 32, 18}},      {GgmlType::Q4_1, {"Q4_1", 32, 20}},
    {GgmlType::Q5_0, {"Q5_0", 32, 22}},      {GgmlType::Q5_1, {"Q5_1", 32, 24}},
    {GgmlType::Q8_0, {"Q8_0", 32, 34}},      {GgmlType::Q8_1, {"Q8_1", 32, 40}},
    {GgmlType::Q2_K, {"Q2_K", 256, 84}},     {GgmlType::Q3_K, {"Q3_K", 256, 110}},
    {GgmlType::Q4_K, {"Q4_K", 256, 144}},    {GgmlType::Q5_K, {"Q5_K", 256, 176}},
    {GgmlType::Q6_K, {"Q6_K", 256, 210}},    {GgmlType::Q8_K, {"Q8_K", 256, 292}},
    {GgmlType::IQ2_XXS, {"IQ2_XXS", 256, 66}}, {GgmlType::IQ2_XS, {"IQ2_XS", 256, 74}},
    {GgmlType::IQ3_XXS, {"IQ3_XXS", 256, 98}}, {GgmlType::IQ1_S, {"IQ1_S", 256, 50}},
    {GgmlType::IQ4_NL, {"IQ4_NL", 32, 18}},  {GgmlType::IQ3_S, {"IQ3_S", 256, 110}},
    {GgmlType::IQ2_S, {"IQ2_S", 256, 82}},   {GgmlType::IQ4_XS, {"IQ4_XS", 256, 136}},
    {GgmlType::I8, {"I8", 1, 1}},            {GgmlType::I16, {"I16", 1, 2}},
    {GgmlType::I32, {"I32", 1, 4}},          {GgmlType::I64, {"I64", 1, 8}},
    {GgmlType::F64, {"F64", 1, 8}},          {GgmlType::IQ1_M, {"IQ1_M", 256, 56}},
    {GgmlType::BF16, {"BF16", 1, 2}},        {GgmlType::TQ1_0, {"TQ1_0", 256, 54}},
    {GgmlType::TQ2_0, {"TQ2_0", 256, 66}},   {GgmlType::MXFP4, {"MXFP4", 32, 17}},
    {GgmlType::NVFP4, {"NVFP4", 64, 36}},    {GgmlType::Q1_0, {"Q1_0", 128, 18}},
};

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
  t.type = static_cast<GgmlType>(c.read<uint32_t>(t.name + " type"));
  t.offset = c.read<uint64_t>(t.name + " offset");
  int64_t n = 1;
  for (int64_t d : t.ne) {
    check(n <= (int64_t{1} << 50) / d, "{} is implausibly large", what);
    n *= d;
  }
  const GgmlTypeInfo* info = find_ggml_type(t.type);
  if (info == nullptr) return t;  // listed, but its data cannot be located or read
  check(t.ne[0] % info->block_size == 0,
        "{}: row length {} is not a multiple of the {} block size {}", what, t.ne[0],
        ggml_type_label(t.type), info->block_size);
  t.nbytes = static_cast<uint64_t>(n / info->block_size * info->type_size);
  return t;
}

}  // namespace

const GgmlTypeInfo* find_ggml_type(GgmlType type) {
  for (const auto& [t, info] : kGgmlTypes)
    if (t == type) return &info;
  return nullptr;
}

const GgmlTypeInfo& ggml_type_info(GgmlType type) {
  const GgmlTypeInfo* info = find_ggml_type(type);
  check(info != nullptr, "unknown ggml type {}", static_cast<uint32_t>(type));
  return *info;
}

std::string ggml_type_label(GgmlType type) {
  const GgmlTypeInfo* info = find_ggml_type(type);
  return fmt::format("{} ({})", info ? info->name : "unknown", static_cast<uint32_t>(type));
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
    if (find_ggml_type(t.type) == nullptr) continue;  // size unknown: checked when read
    check(t.offset % g.alignment_ == 0, "{}: tensor '{}' offset {} is not aligned to {}", path,
          t.name, t.offset, g.alignment_);
    check(g.data_offset_ <= file_size && t.offset <= file_size - g.data_offset_ &&
              t.nbytes <= file_size - g.data_offset_ - t.offset,
          "{}: tensor '{}' data ({} bytes at offset {}) runs past the end of the file (truncated?)",
          path, t.name, t.nbytes, g.data_offset_ + t.offset);
  }
  // Everything before the tensor data has been copied out.
  release_file_pages(g.file_->data(), std::min<uint64_t>(g.data_offset_, file_size));
  return g;
}

void GgufFile::forget_metadata() { std::vector<GgufKV>().swap(kvs_); }

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

// ------------------------------------------------------------------------------ writing

namespace {

class Writer {
 public:
  explicit Writer(std::ostream& out) : out_(out) {}
  template <typename T>
  void put(T v) {
    out_.write(reinterpret_cast<const char*>(&v), sizeof(T));
    pos_ += sizeof(T);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out_.write(s.data(), static_cast<std::streamsize>(s.size()));
    pos_ += s.size();
  }
  void put_bytes(std::span<const std::byte> b) {
    out_.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    pos_ += b.size();
  }
  void pad_to(uint64_t alignment) {
    while (pos_ % alignment != 0) put<uint8_t>(0);
  }

  void put_value(GgufValueType t, const nlohmann::json& v) {
    switch (t) {
      case GgufValueType::U8: return put(v.get<uint8_t>());
      case GgufValueType::I8: return put(v.get<int8_t>());
      case GgufValueType::U16: return put(v.get<uint16_t>());
      case GgufValueType::I16: return put(v.get<int16_t>());
      case GgufValueType::U32: return put(v.get<uint32_t>());
      case GgufValueType::I32: return put(v.get<int32_t>());
      case GgufValueType::F32: return put(v.get<float>());
      case GgufValueType::Bool: return put<uint8_t>(v.get<bool>() ? 1 : 0);
      case GgufValueType::String: return put_string(v.get<std::string>());
      case GgufValueType::U64: return put(v.get<uint64_t>());
      case GgufValueType::I64: return put(v.get<int64_t>());
      case GgufValueType::F64: return put(v.get<double>());
      case GgufValueType::Array: break;
    }
    fail("GGUF writer: nested arrays are not supported");
  }

  void put_kv(const GgufKV& kv) {
    put_string(kv.key);
    put(static_cast<uint32_t>(kv.type));
    if (kv.type != GgufValueType::Array) return put_value(kv.type, kv.value);
    put(static_cast<uint32_t>(kv.element_type));
    put<uint64_t>(kv.value.size());
    for (const auto& v : kv.value) put_value(kv.element_type, v);
  }

 private:
  std::ostream& out_;
  uint64_t pos_ = 0;
};

uint64_t expected_bytes(const GgufTensorData& t) {
  const GgmlTypeInfo& info = ggml_type_info(t.type);
  int64_t n = 1;
  for (int64_t d : t.ne) n *= d;
  check(!t.ne.empty() && t.ne[0] % info.block_size == 0,
        "GGUF writer: tensor '{}': row length is not a multiple of the {} block", t.name,
        info.name);
  return static_cast<uint64_t>(n / info.block_size * info.type_size);
}

}  // namespace

void write_gguf(const std::string& path, const std::vector<GgufKV>& kvs,
                const std::vector<GgufTensorData>& tensors, uint64_t alignment) {
  for (const auto& kv : kvs)
    if (kv.key == "general.alignment")
      check(kv.value == nlohmann::json(alignment), "{}: general.alignment {} != {}", path,
            kv.value.dump(), alignment);
  std::vector<uint64_t> offsets;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    check(t.bytes.size() == expected_bytes(t), "{}: tensor '{}' has {} bytes, its {} dims need {}",
          path, t.name, t.bytes.size(), ggml_type_label(t.type), expected_bytes(t));
    offsets.push_back(offset);
    offset = (offset + t.bytes.size() + alignment - 1) / alignment * alignment;
  }
  const std::string tmp = path + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    check(file.good(), "{}: cannot write", tmp);
    Writer w(file);
    w.put<uint32_t>(0x46554747u);  // "GGUF"
    w.put<uint32_t>(3);
    w.put<uint64_t>(tensors.size());
    w.put<uint64_t>(kvs.size());
    for (const auto& kv : kvs) w.put_kv(kv);
    for (size_t i = 0; i < tensors.size(); ++i) {
      w.put_string(tensors[i].name);
      w.put<uint32_t>(static_cast<uint32_t>(tensors[i].ne.size()));
      for (int64_t d : tensors[i].ne) w.put<uint64_t>(static_cast<uint64_t>(d));
      w.put(static_cast<uint32_t>(tensors[i].type));
      w.put<uint64_t>(offsets[i]);
    }
    for (const auto& t : tensors) {
      w.pad_to(alignment);
      w.put_bytes(t.bytes);
    }
    file.flush();
    check(file.good(), "{}: write failed (disk full?)", tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  check(!ec, "{}: cannot rename into place: {}", path, ec.message());
}

std::span<const std::byte> GgufFile::tensor_bytes(const GgufTensorInfo& t) const {
  check(find_ggml_type(t.type) != nullptr,
        "{}: tensor '{}' has ggml type {}, which lorahub does not know (a newer ggml?)", path_,
        t.name, ggml_type_label(t.type));
  return file_->bytes().subspan(data_offset_ + t.offset, t.nbytes);
}

}  // namespace lorahub
