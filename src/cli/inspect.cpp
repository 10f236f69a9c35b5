// lorahub inspect PATH [--json] [--sha256]: what a weights file, model directory or PEFT adapter
// directory holds. One small function per kind of input; `inspect_path` picks by what is there.
//   --json     exactly one JSON object on stdout:
//              {"path", "kind", "tensors": [{"name", "dtype", "shape"[, "sha256"]}],
//               "metadata": {..} (safetensors header), "adapter": {...} | null,
//               "end_of_generation_ids": [...] (GGUF models: what generation stops at) | null}
//   --sha256   hash each tensor's raw bytes (as stored), to compare files bit for bit
//   GGUF files only (to compare our dequantization with gguf-py's, bit for bit):
//   --f32-sha256       hash each tensor's values as f32 (little-endian), dequantized
//   --dequantize OUT   write every tensor as f32 to the safetensors file OUT (GGUF names and
//                      PyTorch-order shapes)
#include <nlohmann/json.hpp>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "cli/command.h"
#include "core/error.h"
#include "core/mapped_file.h"
#include "formats/gguf.h"
#include "formats/peft_adapter.h"
#include "formats/safetensors.h"
#include "formats/state_dict.h"
#include "formats/torch_pickle.h"
#include "hub/hash.h"
#include "models/decoder_spec.h"
#include "models/gguf_weights.h"

namespace lorahub::cli {
namespace {
namespace fs = std::filesystem;

struct InspectOptions {
  std::string path;
  bool json = false;
  bool sha256 = false;
  bool f32_sha256 = false;
  std::string dequantize_to;
};

// One listed tensor. dtype is a string so that formats with block-quantized types (GGUF) can
// report theirs; bytes are the tensor as stored, for --sha256.
struct TensorRow {
  std::string name;
  std::string dtype;
  Shape shape;
  std::span<const std::byte> bytes;
  std::string f32_sha256;  // GGUF with --f32-sha256
};

// What every kind of input reports.
struct Inspection {
  std::string kind;  // "safetensors", "torch", "model", "adapter"
  std::vector<TensorRow> tensors;
  std::shared_ptr<const void> keep_alive;  // owns the bytes the rows view
  nlohmann::ordered_json metadata = nlohmann::ordered_json::object();
  std::optional<AdapterConfig> adapter{};
  size_t num_targets = 0;                                       // adapters: lora_A/lora_B pairs
  std::optional<std::vector<int32_t>> end_of_generation_ids{};  // GGUF models
};

Inspection from_state_dict(std::string kind, StateDict dict) {
  auto owned = std::make_shared<const StateDict>(std::move(dict));
  Inspection out{std::move(kind), {}, owned};
  for (const auto& name : owned->names()) {
    const Tensor& t = owned->get(name);
    out.tensors.push_back({name, std::string(dtype_name(t.dtype)), t.shape, {t.data, t.nbytes()}});
  }
  return out;
}

Inspection inspect_safetensors(const std::string& path) {
  const auto file = SafetensorsFile::open(path);
  StateDict dict(path);
  for (const auto& e : file.entries()) dict.add(e.name, file.get(e.name));
  Inspection out = from_state_dict("safetensors", std::move(dict));
  out.metadata = file.metadata();
  return out;
}

Inspection inspect_torch_bin(const std::string& path) {
  return from_state_dict("torch", load_torch_bin(path));
}

Inspection inspect_model_dir(const std::string& dir) {
  return from_state_dict("model", load_model_weights(dir));
}

Inspection inspect_adapter_dir(const std::string& dir) {
  PeftAdapter a = load_peft_adapter(dir);
  Inspection out = from_state_dict("adapter", std::move(a.weights));
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

Inspection inspect_gguf(const std::string& path, bool with_f32_sha256) {
  auto gguf = std::make_shared<const GgufFile>(GgufFile::open(path));
  Inspection out{"gguf", {}, gguf};
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

// A new kind of input (GGUF, say) is one inspect_<kind>() returning an Inspection and one line
// here that recognises it.
Inspection inspect_path(const std::string& path, bool f32_sha256) {
  check(fs::exists(path), "{}: no such file or directory", path);
  if (fs::is_directory(path)) {
    if (fs::exists(fs::path(path) / "adapter_config.json")) return inspect_adapter_dir(path);
    return inspect_model_dir(path);
  }
  if (starts_with_bytes(path, "PK\x03\x04")) return inspect_torch_bin(path);
  const bool gguf = starts_with_bytes(path, "GGUF");
  check(gguf || !f32_sha256, "{}: --f32-sha256 is for GGUF files", path);
  if (gguf) return inspect_gguf(path, f32_sha256);
  return inspect_safetensors(path);
}

std::string raw_sha256(const TensorRow& t) {
  return hub::sha256_hex(t.bytes);
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

void print_json(const std::string& path, const Inspection& in, bool sha256) {
  nlohmann::ordered_json out;
  out["path"] = path;
  out["kind"] = in.kind;
  out["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : in.tensors) {
    nlohmann::ordered_json row{{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}};
    if (sha256) row["sha256"] = raw_sha256(t);
    if (!t.f32_sha256.empty()) row["f32_sha256"] = t.f32_sha256;
    out["tensors"].push_back(std::move(row));
  }
  out["metadata"] = in.metadata;
  out["adapter"] = in.adapter ? nlohmann::ordered_json(adapter_json(*in.adapter, in.num_targets))
                              : nlohmann::ordered_json();
  out["end_of_generation_ids"] = in.end_of_generation_ids
                                     ? nlohmann::ordered_json(*in.end_of_generation_ids)
                                     : nlohmann::ordered_json();
  std::cout << out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

void print_adapter_text(const AdapterConfig& c, size_t num_targets) {
  const std::string targets = c.target_modules_regex.empty()
                                  ? fmt::format("{}", fmt::join(c.target_modules, ", "))
                                  : fmt::format("regex {}", c.target_modules_regex);
  fmt::print("PEFT {} adapter: r={} lora_alpha={} rslora={} targets: {} ({} modules adapted)\n",
             c.peft_type, c.r, c.lora_alpha, c.use_rslora, targets, num_targets);
  fmt::print("  base model: {}\n  task type: {}\n",
             c.base_model_name_or_path.empty() ? "(unset)" : c.base_model_name_or_path,
             c.task_type.empty() ? "(unset)" : c.task_type);
  if (!c.rank_pattern.empty() || !c.alpha_pattern.empty())
    fmt::print("  rank_pattern: {}  alpha_pattern: {}\n", nlohmann::json(c.rank_pattern).dump(),
               nlohmann::json(c.alpha_pattern).dump());
}

void print_text(const std::string& path, const Inspection& in, bool sha256) {
  fmt::print("{} ({}): {} tensors\n", path, in.kind, in.tensors.size());
  if (in.adapter) print_adapter_text(*in.adapter, in.num_targets);
  for (const auto& [key, value] : in.metadata.items())
    fmt::print("  metadata {} = {}\n", key,
               value.is_string() ? value.get<std::string>() : value.dump().substr(0, 200));
  int64_t params = 0;
  for (const auto& t : in.tensors) {
    params += shape_numel(t.shape);
    fmt::print("  {:<60} {:<5} {}{}\n", t.name, t.dtype, shape_str(t.shape),
               sha256 ? "  " + raw_sha256(t) : "");
  }
  fmt::print("{} parameters\n", params);
}

void run(const InspectOptions& o) {
  if (!o.dequantize_to.empty()) {
    check(fs::is_regular_file(o.path) && starts_with_bytes(o.path, "GGUF"),
          "{}: --dequantize is for GGUF files", o.path);
    write_dequantized(o.path, o.dequantize_to);
    fmt::print(stderr, "wrote {} (every tensor of {} as f32)\n", o.dequantize_to, o.path);
    return;
  }
  const Inspection in = inspect_path(o.path, o.f32_sha256);
  if (o.json)
    print_json(o.path, in, o.sha256);
  else
    print_text(o.path, in, o.sha256);
}

const Registrar reg("inspect", 10, [](CLI::App& app) {
  auto opts = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand(
      "inspect", "List the tensors of a safetensors / .bin file, model dir or PEFT adapter dir");
  cmd->add_option("path", opts->path, "File or directory")->required();
  cmd->add_flag("--json", opts->json, "Print one JSON object");
  cmd->add_flag("--sha256", opts->sha256, "Add the SHA-256 of each tensor's raw bytes");
  cmd->add_flag("--f32-sha256", opts->f32_sha256,
                "GGUF: add the SHA-256 of each tensor dequantized to f32 (as gguf-py does)");
  cmd->add_option("--dequantize", opts->dequantize_to,
                  "GGUF: write every tensor dequantized to f32 into this safetensors file");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace lorahub::cli
