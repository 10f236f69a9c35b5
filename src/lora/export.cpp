#include "lora/export.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <span>

#include "core/error.h"
#include "core/half.h"
#include "formats/gguf.h"
#include "formats/peft_adapter.h"
#include "formats/state_dict.h"
#include "lora/compose.h"
#include "models/gguf_weights.h"
#include "models/llama.h"

namespace lorahub {
namespace fs = std::filesystem;

void save_composed_adapter(const LoraModule& composed, const std::string& dir) {
  save_peft_adapter(dir, composed.config, module_state_dict(composed));
}

namespace {

// A merged matrix in 16 bits, as llama.cpp's converter writes models: f16 (11-bit significand),
// or bf16 for a tensor with values beyond f16's range. Vectors (norms, biases) stay f32.
GgmlType to_16_bits(std::span<const float> values, std::vector<uint16_t>& out) {
  constexpr float kF16Max = 65504.0f;
  const bool fits =
      std::all_of(values.begin(), values.end(), [&](float x) { return std::abs(x) <= kF16Max; });
  out.resize(values.size());
  if (fits)
    f32_to_f16(values.data(), out.data(), values.size());
  else
    f32_to_bf16(values.data(), out.data(), values.size());
  return fits ? GgmlType::F16 : GgmlType::BF16;
}

std::string save_merged_gguf(Model& model, const std::string& base, const std::string& out_dir) {
  const GgufFile g = GgufFile::open(base);
  const GgufWeightSource names = gguf_weights(g, DecoderSpec::from_gguf(g));
  std::map<std::string, std::pair<std::string, GgufWeightSource::Entry>> by_gguf_name;  // -> HF
  for (const auto& [hf, e] : names.entries()) by_gguf_name[e.tensor->name] = {hf, e};
  std::map<std::string, Tensor> merged;
  for (auto& [name, tensor] : model.state_dict()) merged.emplace(name, std::move(tensor));

  std::vector<float> converted;  // re-permuted q/k, re-shifted norms (the latest one)
  std::vector<std::vector<uint16_t>> halves;
  halves.reserve(g.tensors().size());
  std::vector<std::vector<float>> vectors;  // re-shifted norms kept for the writer
  vectors.reserve(g.tensors().size());
  bool any_bf16 = false;
  std::vector<GgufTensorData> tensors;
  for (const auto& t : g.tensors()) {
    const auto named = by_gguf_name.find(t.name);
    const auto values =
        named == by_gguf_name.end() ? merged.end() : merged.find(named->second.first);
    if (values == merged.end()) {  // not a weight the model holds (rope_freqs): as it is
      tensors.push_back({t.name, t.ne, t.type, g.tensor_bytes(t)});
      continue;
    }
    Tensor& v = values->second;
    check(v.dtype == DType::F32 && v.numel() == t.numel(),
          "{}: merged tensor '{}' does not match the base's '{}'", out_dir, values->first, t.name);
    std::span<const float> f32{v.f32(), static_cast<size_t>(v.numel())};
    const GgufWeightSource::Entry& e = named->second.second;
    if (e.rope_heads > 0 || e.shift != 0.0f) {
      converted = e.rope_heads > 0
                      ? rope_permute_rows(v.f32(), t.numel() / t.ne[0], t.ne[0], e.rope_heads, true)
                      : std::vector<float>(f32.begin(), f32.end());
      for (float& x : converted) x -= e.shift;  // back to the file's convention
      f32 = converted;
    }
    if (t.ne.size() < 2 || t.numel() == t.ne[0]) {
      if (f32.data() == converted.data()) f32 = vectors.emplace_back(f32.begin(), f32.end());
      tensors.push_back({t.name, t.ne, GgmlType::F32, std::as_bytes(f32)});
    } else {
      const GgmlType type = to_16_bits(f32, halves.emplace_back());
      any_bf16 |= type == GgmlType::BF16;
      tensors.push_back({t.name, t.ne, type, std::as_bytes(std::span(halves.back()))});
      v = Tensor();  // written in 16 bits: its f32 copy can go
    }
  }
  std::vector<GgufKV> kvs = g.metadata();
  for (GgufKV& kv : kvs)  // LLAMA_FTYPE_MOSTLY_BF16 or _F16
    if (kv.key == "general.file_type") kv.value = any_bf16 ? 32 : 1;
  const std::string path = (fs::path(out_dir) / "model.gguf").string();
  write_gguf(path, kvs, tensors, g.alignment());
  return path;
}

}  // namespace

std::string save_merged_model(Model& model, const LoraModule& composed, const std::string& base,
                              const std::string& out_dir) {
  model.merge_lora(to_lora_map(composed));
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  check(!ec, "{}: cannot create directory: {}", out_dir, ec.message());
  if (!fs::is_directory(base)) return save_merged_gguf(model, base, out_dir);
  const std::string base_dir = base;
  StateDict dict(out_dir);
  for (auto& [name, tensor] : model.state_dict()) dict.add(name, std::move(tensor));
  save_safetensors((fs::path(out_dir) / "model.safetensors").string(), dict, {{"format", "pt"}});
  // Everything transformers needs besides the weights: config and tokenizer, unchanged.
  for (const char* name : {"config.json", "generation_config.json", "spiece.model",
                           "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                           "added_tokens.json", "vocab.json", "merges.txt"}) {
    const fs::path src = fs::path(base_dir) / name;
    if (!fs::exists(src)) continue;
    fs::copy_file(src, fs::path(out_dir) / name, fs::copy_options::overwrite_existing, ec);
    check(!ec, "{}: cannot copy into {}: {}", src.string(), out_dir, ec.message());
  }
  return (fs::path(out_dir) / "model.safetensors").string();
}

}  // namespace lorahub
