#include "formats/state_dict.h"

#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/json.h"
#include "formats/safetensors.h"
#include "formats/torch_pickle.h"

namespace lorahub {
namespace fs = std::filesystem;

void StateDict::add(std::string name, Tensor tensor) {
  check(!contains(name), "{}: tensor '{}' appears twice", source_, name);
  tensors_.emplace(name, std::move(tensor));
  names_.push_back(std::move(name));
}

const Tensor* StateDict::find(const std::string& name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const Tensor& StateDict::get(const std::string& name) const {
  const Tensor* t = find(name);
  check(t != nullptr, "{}: no tensor named '{}'", source_, name);
  return *t;
}

namespace {

StateDict load_safetensors(const std::string& path) {
  const auto file = SafetensorsFile::open(path);
  StateDict dict(path);
  for (const auto& e : file.entries()) dict.add(e.name, file.get(e.name));
  return dict;
}

// A shard file name from an index must name a file beside the index, nothing else.
void check_shard_name(const std::string& name, const std::string& index_path) {
  check(!name.empty() && name.find('/') == std::string::npos &&
            name.find('\\') == std::string::npos && name != "." && name != "..",
        "{}: shard file name '{}' must be a plain file name in the same directory", index_path,
        name);
}

// {"metadata": {...}, "weight_map": {"tensor name": "shard file", ...}}
StateDict load_sharded(const std::string& index_path) {
  const auto index = parse_json(read_text_file(index_path), index_path);
  check(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
        "{}: must hold an object with a 'weight_map' object", index_path);
  std::map<std::string, std::set<std::string>> by_shard;  // shard file -> tensor names
  for (const auto& [name, shard] : index["weight_map"].items()) {
    check(shard.is_string(), "{}: weight_map entry '{}' must be a file name, got {}", index_path,
          name, json_type_name(shard));
    check_shard_name(shard.get<std::string>(), index_path);
    by_shard[shard.get<std::string>()].insert(name);
  }
  check(!by_shard.empty(), "{}: weight_map is empty", index_path);

  const fs::path dir = fs::path(index_path).parent_path();
  StateDict dict(dir.string());
  for (const auto& [shard, wanted] : by_shard) {
    const StateDict part = load_state_dict_file((dir / shard).string());
    for (const auto& name : part.names())
      if (wanted.count(name)) dict.add(name, part.get(name));
    for (const auto& name : wanted)
      check(part.contains(name), "{}: tensor '{}' is mapped to {}, which does not contain it",
            index_path, name, shard);
  }
  return dict;
}

bool starts_with(const MappedFile& file, std::string_view magic) {
  return file.size() >= magic.size() && std::memcmp(file.data(), magic.data(), magic.size()) == 0;
}

}  // namespace

StateDict load_state_dict_file(const std::string& path) {
  const auto file = MappedFile::open(path);
  if (starts_with(*file, "PK\x03\x04")) return load_torch_zip(file->bytes(), path);
  // torch.save before PyTorch 1.6 (or with _use_new_zipfile_serialization=False) writes a bare
  // pickle that starts with torch's magic number 0x1950a86a20f9469cfc6c.
  check(!starts_with(*file, "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"),
        "{}: legacy (pre-1.6) PyTorch serialization is not supported; re-save it with "
        "torch.save in a recent PyTorch",
        path);
  return load_safetensors(path);
}

StateDict load_model_weights(const std::string& dir) {
  check(fs::is_directory(dir), "{}: not a directory", dir);
  const fs::path d(dir);
  for (const char* single : {"model.safetensors", "pytorch_model.bin"}) {
    const fs::path index = d / (std::string(single) + ".index.json");
    if (fs::exists(d / single)) return load_state_dict_file((d / single).string());
    if (fs::exists(index)) return load_sharded(index.string());
  }
  fail("{}: no model weights (model.safetensors, pytorch_model.bin, or a sharded *.index.json)",
       dir);
}

void save_safetensors(const std::string& path, const StateDict& dict,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<NamedTensor> tensors;
  tensors.reserve(dict.size());
  for (const auto& name : dict.names()) tensors.push_back({name, dict.get(name)});
  write_safetensors(path, tensors, metadata);
}

}  // namespace lorahub
