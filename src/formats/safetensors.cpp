#include "formats/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstring>
#include <unordered_set>

#include "core/error.h"
#include "formats/json.h"

namespace lorahub {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors is little-endian");

// The safetensors library refuses headers above 100 MB; so do we, before allocating anything.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr size_t kHeaderAlignment = 8;

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// A JSON value that must be a non-negative integer that fits in uint64 (huge literals parse as
// floating point and are refused here).
uint64_t json_to_u64(const nlohmann::json& v, const std::string& what) {
  if (!v.is_number_unsigned())
    fail("{} must be a non-negative integer, got {} {}", what, json_type_name(v), v.dump());
  return v.get<uint64_t>();
}

Shape parse_shape(const nlohmann::json& v, const std::string& where) {
  check(v.is_array(), "{}: 'shape' must be an array, got {}", where, json_type_name(v));
  Shape shape;
  for (const auto& d : v) {
    const uint64_t dim = json_to_u64(d, where + ": shape dimension");
    check(dim <= static_cast<uint64_t>(INT64_MAX), "{}: shape dimension {} too large", where, dim);
    shape.push_back(static_cast<int64_t>(dim));
  }
  return shape;
}

// Bytes the tensor needs, refusing products that overflow.
uint64_t byte_size(const Shape& shape, DType dtype, const std::string& where) {
  uint64_t n = dtype_size(dtype);
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n))
      fail("{}: shape {} is too large", where, shape_str(shape));
  return n;
}

SafetensorsEntry parse_entry(const std::string& name, const nlohmann::json& v,
                             const std::string& source) {
  const std::string where = fmt::format("{}: tensor '{}'", source, name);
  check(v.is_object(), "{} must be a JSON object, got {}", where, json_type_name(v));
  for (const char* field : {"dtype", "shape", "data_offsets"})
    check(v.contains(field), "{}: missing '{}'", where, field);

  SafetensorsEntry e;
  e.name = name;
  const auto& dtype = v["dtype"];
  check(dtype.is_string(), "{}: 'dtype' must be a string, got {}", where, json_type_name(dtype));
  const auto parsed = dtype_from_name(dtype.get<std::string>());
  check(parsed.has_value(), "{}: unknown dtype '{}'", where, dtype.get<std::string>());
  e.dtype = *parsed;
  e.shape = parse_shape(v["shape"], where);

  const auto& offsets = v["data_offsets"];
  check(offsets.is_array() && offsets.size() == 2, "{}: 'data_offsets' must be [begin, end]",
        where);
  e.begin = json_to_u64(offsets[0], where + ": data_offsets begin");
  e.end = json_to_u64(offsets[1], where + ": data_offsets end");
  check(e.begin <= e.end, "{}: data_offsets [{}, {}] end before they begin", where, e.begin, e.end);
  const uint64_t need = byte_size(e.shape, e.dtype, where);
  check(e.end - e.begin == need,
        "{}: shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {} (shape/byte-size "
        "mismatch)",
        where, shape_str(e.shape), dtype_name(e.dtype), need, e.begin, e.end, e.end - e.begin);
  return e;
}

std::map<std::string, std::string> parse_metadata(const nlohmann::json& v,
                                                  const std::string& source) {
  check(v.is_object(), "{}: '__metadata__' must be an object of strings, got {}", source,
        json_type_name(v));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : v.items()) {
    check(value.is_string(), "{}: '__metadata__' value '{}' must be a string, got {}", source, key,
          json_type_name(value));
    out[key] = value.get<std::string>();
  }
  return out;
}

// Sorts entries by offset and checks that each lies inside the data section and that no two
// overlap (a view of one tensor must never alias another).
void check_spans(std::vector<SafetensorsEntry>& entries, size_t data_size,
                 const std::string& source) {
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    check(e.end <= data_size,
          "{}: tensor '{}': data_offsets [{}, {}] run past the end of the data ({} bytes; file "
          "truncated?)",
          source, e.name, e.begin, e.end, data_size);
    if (i > 0 && e.begin < entries[i - 1].end)
      fail("{}: tensors '{}' and '{}' have overlapping data spans [{}, {}) and [{}, {})", source,
           entries[i - 1].name, e.name, entries[i - 1].begin, entries[i - 1].end, e.begin, e.end);
  }
}

}  // namespace

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> file,
                                           const std::string& source) {
  check(file.size() >= 8, "{}: truncated safetensors file: {} bytes, too short for the header",
        source, file.size());
  const uint64_t n = read_u64_le(file.data());
  check(n <= file.size() - 8,
        "{}: header length {} runs past the end of the file ({} bytes; truncated or not "
        "safetensors)",
        source, n, file.size());
  check(n <= kMaxHeaderBytes, "{}: header length {} exceeds the {} byte limit", source, n,
        kMaxHeaderBytes);

  const std::string_view text(reinterpret_cast<const char*>(file.data()) + 8, n);
  const nlohmann::json json = parse_json(text, source + ": header");
  check(json.is_object(), "{}: header must be a JSON object, got {}", source, json_type_name(json));

  SafetensorsHeader header;
  header.data_start = 8 + n;
  for (const auto& [key, value] : json.items()) {
    if (key == "__metadata__")
      header.metadata = parse_metadata(value, source);
    else
      header.entries.push_back(parse_entry(key, value, source));
  }
  check_spans(header.entries, file.size() - header.data_start, source);
  return header;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile f;
  f.file_ = MappedFile::open(path);
  f.header_ = parse_safetensors_header(f.file_->bytes(), path);
  for (size_t i = 0; i < f.header_.entries.size(); ++i)
    f.index_.emplace(f.header_.entries[i].name, i);
  return f;
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_.entries.size());
  for (const auto& e : header_.entries) out.push_back(e.name);
  return out;
}

Tensor SafetensorsFile::get(const std::string& name) const {
  const auto it = index_.find(name);
  check(it != index_.end(), "{}: no tensor named '{}'", path(), name);
  const SafetensorsEntry& e = header_.entries[it->second];
  const std::byte* src = file_->data() + header_.data_start + e.begin;
  if (reinterpret_cast<uintptr_t>(src) % dtype_size(e.dtype) == 0) {
    Tensor t;
    t.dtype = e.dtype;
    t.shape = e.shape;
    t.data = src;
    t.owner = file_;
    t.file_backed = true;
    return t;
  }
  Tensor copy = Tensor::owned(e.dtype, e.shape);
  std::memcpy(copy.mutable_data(), src, e.end - e.begin);
  return copy;
}

void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::unordered_set<std::string> seen;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    check(!name.empty() && name != "__metadata__", "{}: invalid tensor name '{}'", path, name);
    check(seen.insert(name).second, "{}: tensor '{}' given twice", path, name);
    for (int64_t d : t.shape)
      check(d >= 0, "{}: tensor '{}' has negative dimension in {}", path, name, shape_str(t.shape));
    check(t.data != nullptr || t.nbytes() == 0, "{}: tensor '{}' has no data", path, name);
    header[name] = {{"dtype", std::string(dtype_name(t.dtype))},
                    {"shape", t.shape},
                    {"data_offsets", {offset, offset + t.nbytes()}}};
    offset += t.nbytes();
  }
  std::string text = header.dump();
  text.resize((text.size() + kHeaderAlignment - 1) / kHeaderAlignment * kHeaderAlignment, ' ');

  std::vector<std::byte> out(8 + text.size() + offset);
  const uint64_t n = text.size();
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, text.data(), text.size());
  std::byte* data = out.data() + 8 + text.size();
  for (const auto& [name, t] : tensors) {
    if (t.nbytes()) std::memcpy(data, t.data, t.nbytes());
    data += t.nbytes();
  }
  write_file_atomic(path, out);
}

}  // namespace lorahub
