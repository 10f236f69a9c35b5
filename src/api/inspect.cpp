// api::inspect: what a weights file, model directory or adapter holds (formats/, models/).
// One small function per kind of input; `inspect_path` picks by what is there.
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "formats/peft_adapter.h"
#include "formats/safetensors.h"
#include "formats/state_dict.h"
#include "formats/torch_pickle.h"
#include "hub/hash.h"
#include "lorahub/lorahub.h"
#include "models/decoder_spec.h"
#include "models/gguf_weights.h"

namespace lorahub::api {
namespace {
namespace fs = std::filesystem;

// One listed tensor. dtype is a string so that formats with block-quantized types (GGUF) can
// report theirs; bytes are the tensor as stored, for --sha256.
struct TensorRow {
  std::string name;
  std::string dtype;
  Shape shape;
  std::span<const std::byte> bytes;
  std::string f32_sha256;  // GGUF with --f32-sha256
};

// What every kind of input reports (the rows view bytes that keep_alive owns).
struct Found {
  std::string kind;  // "safetensors", "torch", "model", "adapter"
  std::vector<TensorRow> tensors;
  std::shared_ptr<const void> keep_alive;  // owns the bytes the rows view
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  std::optional<AdapterConfig> adapter{};
  size_t num_targets = 0;                                       // adapters: lora_A/lora_B pairs
  std::optional<std::vector<int32_t>> end_of_generation_ids{};  // GGUF models
};

Found from_state_dict(std::string kind, StateDict dict) {
  auto owned = std::make_shared<const StateDict>(std::move(dict));
  Found out{std::move(kind), {}, owned};
  for (const auto& name : owned->names()) {
    const Tensor& t = owned->get(name);
    out.tensors.push_back({name, std::string(dtype_name(t.dtype)), t.shape, {t.data, t.nbytes()}});
  }
  return out;
}

Found inspect_safetensors(const std::string& path) {
  const auto file = SafetensorsFile::open(path);
  StateDict dict(path);
  for (const auto& e : file.entries()) dict.add(e.name, file.get(e.name));
  Found out = from_state_dict("safetensors", std::move(dict));
  out.metadata = file.metadata();
  return out;
}

Found inspect_torch_bin(const std::string& path) {
  return from_state_dict("torch", load_torch_bin(path));
}

Found inspect_model_dir(const std::string& dir) {
  return from_state_dict("model", load_model_weights(dir));
}

Found inspect_adapter_dir(const std::string& dir) {
  PeftAdapter a = load_peft_adapter(dir);
  Found out = from_state_dict("adapter", std::move(a.weights));
  out.adapter = std::move(a.config);
  out.num_targets = a.targets.size();
  return out;
}

// GGUF: metadata key/values (long arrays such as the vocabulary shortened to their first
// entries and length) and the tensors with their ggml types, shapes in PyTorch order.
std::string f32_sha256(const GgufFile& g, const GgufTensorInfo& t) {
  const std::vector<float> values = gguf_tensor_f32(g, t);
  return hub::sha256_hex(std::as_bytes(std::span<const float>(values)));
}

void write_dequantized(const std::string& path, const std::string& out) {
  const GgufFile g = GgufFile::open(path);
  StateDict dict(path);
  for (const auto& t : g.tensors())
    dict.add(t.name, Tensor::from_f32(gguf_tensor_f32(g, t), t.shape()));
  save_safetensors(out, dict);
}

Found inspect_gguf(const std::string& path, bool with_f32_sha256) {
  auto gguf = std::make_shared<const GgufFile>(GgufFile::open(path));
  Found out{"gguf", {}, gguf};
  out.metadata["gguf.version"] = gguf->version();
  if (gguf->get_string("general.type", nullptr).value_or("model") == "model")
    out.end_of_generation_ids = end_of_generation_ids(*gguf);
  for (const auto& kv : gguf->metadata()) {
    constexpr size_t kShown = 8;
    if (kv.type == GgufValueType::Array && kv.value.size() > kShown) {
      const nlohmann::json head(kv.value.begin(), kv.value.begin() + kShown);
      out.metadata[kv.key] = {
          {"type", fmt::format("array[{}]", gguf_value_type_name(kv.element_type))},
          {"length", kv.value.size()},
          {"first", head}};
    } else {
      out.metadata[kv.key] = kv.value;
    }
  }
  for (const auto& t : gguf->tensors()) {
    // A type we do not know is listed by its id; its bytes cannot be located.
    const GgmlTypeInfo* info = find_ggml_type(t.type);
    out.tensors.push_back({t.name, info ? std::string(info->name) : ggml_type_label(t.type),
                           t.shape(), info ? gguf->tensor_bytes(t) : std::span<const std::byte>(),
                           with_f32_sha256 ? f32_sha256(*gguf, t) : ""});
  }
  return out;
}

bool starts_with_bytes(const std::string& path, std::string_view magic) {
  const auto file = MappedFile::open(path);
  return file->size() >= magic.size() && std::memcmp(file->data(), magic.data(), magic.size()) == 0;
}

// A new kind of input (GGUF, say) is one inspect_<kind>() returning a Found and one line
// here that recognises it.
Found inspect_path(const std::string& path, bool f32_sha256) {
  check(fs::exists(path), "{}: no such file or directory", path);
  if (fs::is_directory(path)) {
    if (fs::exists(fs::path(path) / "adapter_config.json")) return inspect_adapter_dir(path);
    return inspect_model_dir(path);
  }
  if (starts_with_bytes(path, "PK\x03\x04")) return inspect_torch_bin(path);
  const bool gguf = starts_with_bytes(path, "GGUF");
  if (!gguf && f32_sha256)
    throw OptionError("f32_sha256", fmt::format("{}: f32_sha256 is for GGUF files", path));
  if (gguf) return inspect_gguf(path, f32_sha256);
  return inspect_safetensors(path);
}

nlohmann::json adapter_json(const AdapterConfig& c, size_t num_targets) {
  nlohmann::json targets = nlohmann::json(c.target_modules);
  if (!c.target_modules_regex.empty()) targets = c.target_modules_regex;
  return {{"r", c.r},
          {"lora_alpha", c.lora_alpha},
          {"target_modules", targets},
          {"base_model_name_or_path", c.base_model_name_or_path},
          {"use_rslora", c.use_rslora},
          {"fan_in_fan_out", c.fan_in_fan_out},
          {"task_type", c.task_type},
          {"peft_type", c.peft_type},
          {"bias", c.bias},
          {"modules_to_save", c.modules_to_save},
          {"rank_pattern", c.rank_pattern},
          {"alpha_pattern", c.alpha_pattern},
          {"num_targets", num_targets}};
}

}  // namespace

bool is_gguf_file(const std::string& path) {
  return fs::is_regular_file(path) && starts_with_bytes(path, "GGUF");
}

void dequantize_gguf(const std::string& path, const std::string& out) {
  write_dequantized(path, out);
}

Inspection inspect(const std::string& path, const InspectOptions& options) {
  const auto in = inspect_path(path, options.f32_sha256);
  api::Inspection out;
  out.kind = in.kind;
  for (const TensorRow& t : in.tensors)
    out.tensors.push_back(
        {t.name, t.dtype, t.shape, options.sha256 ? hub::sha256_hex(t.bytes) : "", t.f32_sha256});
  constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
  out.metadata_json = in.metadata.dump(-1, ' ', false, kReplace);
  if (in.adapter)
    out.adapter_json = adapter_json(*in.adapter, in.num_targets).dump(-1, ' ', false, kReplace);
  out.end_of_generation_ids = in.end_of_generation_ids;
  return out;
}

}  // namespace lorahub::api
