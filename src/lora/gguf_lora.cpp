#include "lora/gguf_lora.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>

#include "core/error.h"
#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "models/decoder_spec.h"
#include "models/gguf_weights.h"

namespace lorahub {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kSuffixA = ".lora_a", kSuffixB = ".lora_b";

// The decoder a base model path describes: GGUF metadata or config.json.
DecoderSpec base_spec(const std::string& base) {
  if (fs::is_directory(base)) return DecoderSpec::from_hf(HfConfig::load(base));
  return DecoderSpec::from_gguf(GgufFile::open(base));
}

// Whether llama.cpp's converter permuted the rows of this module's weight (and of a LoRA B on
// it): q/k projections, in the llama converter only (models/llama.cpp's gguf_weights).
bool rope_permuted(const std::string& module, const DecoderSpec& spec) {
  return gguf_architecture(spec) == "llama" &&
         (module.ends_with(".self_attn.q_proj") || module.ends_with(".self_attn.k_proj"));
}

int64_t rope_heads(const std::string& module, const DecoderSpec& spec) {
  return module.ends_with(".q_proj") ? spec.heads : spec.kv_heads;
}

std::string last_component(const std::string& module) {
  return module.substr(module.rfind('.') + 1);
}

struct TensorPair {
  const GgufTensorInfo* a = nullptr;
  const GgufTensorInfo* b = nullptr;
};

// The .lora_a/.lora_b pairs by base tensor name ("blk.0.attn_q.weight").
std::map<std::string, TensorPair> pair_tensors(const GgufFile& g) {
  std::map<std::string, TensorPair> pairs;
  for (const GgufTensorInfo& t : g.tensors()) {
    const bool is_a = t.name.ends_with(kSuffixA), is_b = t.name.ends_with(kSuffixB);
    check(is_a || is_b,
          "{}: tensor '{}' is not a LoRA tensor (.lora_a or .lora_b); norm or "
          "embedding tensors in adapters are not supported",
          g.path(), t.name);
    TensorPair& p = pairs[t.name.substr(0, t.name.size() - kSuffixA.size())];
    (is_a ? p.a : p.b) = &t;
  }
  check(!pairs.empty(), "{}: the adapter holds no LoRA tensors", g.path());
  for (const auto& [name, p] : pairs)
    check(p.a && p.b, "{}: tensor '{}{}' has no '{}{}'", g.path(), name, p.a ? kSuffixA : kSuffixB,
          name, p.a ? kSuffixB : kSuffixA);
  return pairs;
}

// "model.layers.0.self_attn.q_proj" as a PEFT pattern matching exactly that module.
std::string exact_pattern(const std::string& module) {
  std::string out;
  for (char c : module) {
    if (c == '.') out += '\\';
    out += c;
  }
  return out;
}

void check_adapter_metadata(const GgufFile& g) {
  const std::string type = g.get_string("general.type", nullptr).value_or("model");
  check(type == "adapter",
        "{}: general.type is '{}', not 'adapter': this GGUF is not a LoRA adapter", g.path(), type);
  const std::string adapter = g.get_string("adapter.type", nullptr).value_or("");
  check(adapter == "lora", "{}: adapter.type is '{}'; only 'lora' adapters are supported", g.path(),
        adapter);
}

}  // namespace

bool is_gguf_lora_path(const std::string& path) {
  return path.ends_with(".gguf") && !fs::is_directory(path);
}

LoraModule load_gguf_lora(const std::string& path, const std::string& base_model) {
  const GgufFile g = GgufFile::open(path);
  check_adapter_metadata(g);
  DecoderSpec spec;
  spec.architecture = architecture_from_gguf(g.get_string("general.architecture"), path);
  if (!base_model.empty()) {
    const DecoderSpec base = base_spec(base_model);
    check(gguf_architecture(base) == gguf_architecture(spec),
          "{}: the adapter is for a {} model, but {} is a {} model", path, gguf_architecture(spec),
          base_model, gguf_architecture(base));
    spec = base;
  }
  const double alpha = g.get_float("adapter.lora.alpha", 0.0);
  check(std::isfinite(alpha), "{}: adapter.lora.alpha is not finite", path);

  std::vector<LoraTarget> targets;
  std::set<std::string> kinds;
  std::map<int64_t, int> ranks;
  for (const auto& [name, p] : pair_tensors(g)) {
    check(p.a->ne.size() == 2 && p.b->ne.size() == 2 && p.a->ne[1] == p.b->ne[0],
          "{}: '{}{}' {} and '{}{}' {} are not a LoRA pair (ne [in, r] and [r, out])", path, name,
          kSuffixA, shape_str(p.a->ne), name, kSuffixB, shape_str(p.b->ne));
    check_dequantizable(g, *p.a);
    check_dequantizable(g, *p.b);
    const std::string hf = hf_name_for_gguf(name, spec, path);
    check(hf.ends_with(".weight") && name != "token_embd.weight",
          "{}: LoRA on '{}' is not supported (linear weights only)", path, name);
    LoraTarget t;
    t.module = hf.substr(0, hf.size() - std::string_view(".weight").size());
    const int64_t r = p.a->ne[1], out = p.b->ne[1];
    t.a = Tensor::from_f32(gguf_tensor_f32(g, *p.a), p.a->shape());
    std::vector<float> b = gguf_tensor_f32(g, *p.b);
    if (rope_permuted(t.module, spec)) {
      check(!base_model.empty(),
            "{}: undoing llama.cpp's row order of '{}{}' needs the base "
            "model's head counts: give the path of the base model it was made for",
            path, name, kSuffixB);
      b = rope_permute_rows(b.data(), out, r, rope_heads(t.module, spec), false);
    }
    t.b = Tensor::from_f32(std::move(b), p.b->shape());
    t.scaling = alpha == 0.0 ? 1.0 : alpha / static_cast<double>(r);  // as llama.cpp scales
    kinds.insert(last_component(t.module));
    ++ranks[r];
    targets.push_back(std::move(t));
  }

  AdapterConfig config;
  config.r = std::max_element(ranks.begin(), ranks.end(), [](auto& x, auto& y) {
               return x.second < y.second;
             })->first;
  check(alpha != 0.0 || ranks.size() == 1,
        "{}: adapter.lora.alpha is 0 (scale 1) with several ranks, which PEFT cannot express",
        path);
  config.lora_alpha = alpha == 0.0 ? static_cast<double>(config.r) : alpha;
  config.target_modules.assign(kinds.begin(), kinds.end());
  config.task_type = "CAUSAL_LM";
  for (const LoraTarget& t : targets)  // PEFT's way of saying "this module has another rank"
    if (t.a.shape[0] != config.r)
      config.rank_pattern.emplace_back(exact_pattern(t.module), t.a.shape[0]);
  return make_lora_module(path, std::move(config), targets);
}

void save_gguf_lora(const LoraModule& module, const std::string& path,
                    const std::string& base_model) {
  check(!module.tensors.empty(), "{}: the module holds no LoRA tensors", module.path);
  const DecoderSpec spec = base_spec(base_model);
  std::optional<GgufFile> base_gguf;
  if (!fs::is_directory(base_model)) base_gguf = GgufFile::open(base_model);

  // One alpha for the file: the first layer's scale × r; other scales are folded into B.
  const LoraTensor& first = module.tensors.front();
  const double alpha = static_cast<double>(first.scale) * static_cast<double>(first.shape[0]);
  check(alpha != 0.0 && std::isfinite(alpha), "{}: scaling {} cannot be written as a GGUF LoRA",
        module.path, first.scale);

  std::vector<std::vector<float>> storage;  // the values written, kept until write_gguf
  storage.reserve(module.tensors.size());
  std::vector<GgufTensorData> tensors;
  for (const LoraTensor& t : module.tensors) {
    check(t.shape.size() == 2, "{}: tensor '{}' is not a matrix", module.path, t.key);
    const std::string name = gguf_name_for_hf(t.layer + ".weight", spec, module.path);
    storage.push_back(t.f32());
    std::vector<float>& v = storage.back();
    const int64_t rows = t.shape[0], cols = t.shape[1];
    if (!t.is_a) {
      const double fold = static_cast<double>(t.scale) * static_cast<double>(cols) / alpha;
      if (fold != 1.0)
        for (float& x : v) x = static_cast<float>(x * fold);
      if (rope_permuted(t.layer, spec))
        v = rope_permute_rows(v.data(), rows, cols, rope_heads(t.layer, spec), true);
    }
    if (base_gguf) {  // llama.cpp refuses a pair that does not fit its base tensor
      const GgufTensorInfo* w = base_gguf->find_tensor(name);
      check(w != nullptr, "{}: the base {} has no tensor '{}' for '{}'", module.path, base_model,
            name, t.layer);
      check(w->ne.size() == 2 && w->ne[t.is_a ? 0 : 1] == (t.is_a ? cols : rows),
            "{}: '{}' has shape {}, which does not fit the base's '{}' (ne {})", module.path, t.key,
            shape_str(t.shape), name, shape_str(w->ne));
    }
    tensors.push_back({name + std::string(t.is_a ? kSuffixA : kSuffixB),
                       {cols, rows},
                       GgmlType::F32,
                       std::as_bytes(std::span<const float>(v))});
  }
  std::sort(tensors.begin(), tensors.end(),
            [](const GgufTensorData& a, const GgufTensorData& b) { return a.name < b.name; });
  const std::vector<GgufKV> kvs = {
      {"general.architecture", GgufValueType::String, GgufValueType::U8, gguf_architecture(spec)},
      {"general.type", GgufValueType::String, GgufValueType::U8, "adapter"},
      {"adapter.type", GgufValueType::String, GgufValueType::U8, "lora"},
      {"adapter.lora.alpha", GgufValueType::F32, GgufValueType::U8, alpha},
  };
  write_gguf(path, kvs, tensors);
}

}  // namespace lorahub
