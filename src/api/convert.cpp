// api::convert: adapters and weights files rewritten by our writers (formats/, lora/gguf_lora.h).
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "core/half.h"
#include "formats/peft_adapter.h"
#include "formats/state_dict.h"
#include "lora/gguf_lora.h"
#include "lora/module_set.h"
#include "lorahub/lorahub.h"

namespace lorahub::api {
namespace {
namespace fs = std::filesystem;

bool is_float(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16;
}

// Floating-point tensors to `to` (round to nearest even, as torch's .to()); others unchanged.
Tensor cast_float(const Tensor& t, DType to) {
  if (!is_float(t.dtype) || t.dtype == to) return t;
  if (t.numel() == 0) return Tensor::owned(to, t.shape);
  const std::vector<float> values = t.to_f32();
  if (to == DType::F32) return Tensor::from_f32(values, t.shape);
  Tensor out = Tensor::owned(to, t.shape);
  auto* bits = reinterpret_cast<uint16_t*>(out.mutable_data());
  if (to == DType::F16)
    f32_to_f16(values.data(), bits, values.size());
  else
    f32_to_bf16(values.data(), bits, values.size());
  return out;
}

StateDict cast_all(const StateDict& in, const std::optional<DType>& to) {
  if (!to) return in;
  StateDict out(in.source());
  for (const auto& name : in.names()) out.add(name, cast_float(in.get(name), *to));
  return out;
}

std::optional<DType> parse_dtype(const std::string& name) {
  if (name == "keep") return std::nullopt;
  if (name == "f32") return DType::F32;
  if (name == "f16") return DType::F16;
  if (name == "bf16") return DType::BF16;
  throw OptionError("dtype", fmt::format("dtype must be keep, f32, f16 or bf16, got '{}'", name));
}

}  // namespace

void convert(const std::string& src, const std::string& dst, const ConvertOptions& options) {
  const auto to = parse_dtype(options.dtype);
  check(fs::exists(src), "{}: no such file or directory", src);
  const std::string& base = options.base_model;
  if (dst.ends_with(".gguf")) {
    if (base.empty())
      throw OptionError("base_model",
                        fmt::format("{}: writing a GGUF LoRA needs the base model", dst));
    if (to && *to != DType::F32) throw OptionError("dtype", "GGUF LoRAs are written as f32");
    save_gguf_lora(load_lora_module(src, base), dst, base);
  } else if (is_gguf_lora_path(src)) {
    const LoraModule module = load_gguf_lora(src, base);
    save_peft_adapter(dst, module.config, cast_all(module_state_dict(module), to));
  } else if (fs::is_directory(src)) {
    check(fs::exists(fs::path(src) / "adapter_config.json"),
          "{}: convert takes a PEFT adapter directory or a weights file", src);
    const PeftAdapter adapter = load_peft_adapter(src);
    save_peft_adapter(dst, adapter.config, cast_all(adapter.weights, to));
  } else {
    save_safetensors(dst, cast_all(load_state_dict_file(src), to), {{"format", "pt"}});
  }
}

}  // namespace lorahub::api
