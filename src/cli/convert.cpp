// lorahub convert SRC DST [--dtype keep|f32|f16|bf16]: rewrites weights as safetensors with our
// writer. SRC is a PEFT adapter directory (DST becomes one: adapter_config.json +
// adapter_model.safetensors, loadable by PEFT) or a weights file (.bin or .safetensors; DST is a
// .safetensors file). Typical use: the legacy adapter_model.bin of released LoraHub modules.
// GGUF LoRAs (llama.cpp's adapter files, lora/gguf_lora.h), both ways: a PEFT directory to
// DST.gguf needs --base MODEL (the GGUF or HF model it is for: tensor names, Llama's q/k row
// order); a GGUF LoRA SRC becomes a PEFT directory (--base needed for Llama q/k targets).
#include <filesystem>
#include <optional>
#include <string>

#include "cli/command.h"
#include "core/error.h"
#include "core/half.h"
#include "formats/peft_adapter.h"
#include "formats/state_dict.h"
#include "lora/gguf_lora.h"
#include "lora/module_set.h"

namespace lorahub::cli {
namespace {
namespace fs = std::filesystem;

struct ConvertOptions {
  std::string src, dst, base, dtype = "keep";
};

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
  fail("--dtype must be keep, f32, f16 or bf16, got '{}'", name);
}

void run(const ConvertOptions& o) {
  const auto to = parse_dtype(o.dtype);
  check(fs::exists(o.src), "{}: no such file or directory", o.src);
  if (o.dst.ends_with(".gguf")) {
    check(!o.base.empty(), "{}: writing a GGUF LoRA needs --base (the model it is for)", o.dst);
    check(!to || *to == DType::F32, "--dtype: GGUF LoRAs are written as f32");
    save_gguf_lora(load_lora_module(o.src, o.base), o.dst, o.base);
  } else if (is_gguf_lora_path(o.src)) {
    const LoraModule module = load_gguf_lora(o.src, o.base);
    save_peft_adapter(o.dst, module.config, cast_all(module_state_dict(module), to));
  } else if (fs::is_directory(o.src)) {
    check(fs::exists(fs::path(o.src) / "adapter_config.json"),
          "{}: convert takes a PEFT adapter directory or a weights file", o.src);
    const PeftAdapter adapter = load_peft_adapter(o.src);
    save_peft_adapter(o.dst, adapter.config, cast_all(adapter.weights, to));
  } else {
    save_safetensors(o.dst, cast_all(load_state_dict_file(o.src), to), {{"format", "pt"}});
  }
}

const Registrar reg("convert", 11, [](CLI::App& app) {
  auto opts = std::make_shared<ConvertOptions>();
  auto* cmd = app.add_subcommand(
      "convert",
      "Rewrite a PEFT adapter dir or weights file (.bin/.safetensors) as safetensors, or "
      "an adapter as a GGUF LoRA (DST.gguf) and back");
  cmd->add_option("src", opts->src, "PEFT adapter directory or weights file")->required();
  cmd->add_option("dst", opts->dst, "Output adapter directory or .safetensors file")->required();
  cmd->add_option("--dtype", opts->dtype, "keep, f32, f16 or bf16 (floating tensors only)");
  cmd->add_option("--base", opts->base,
                  "Base model (GGUF file or HF directory) for GGUF LoRA input or output");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace lorahub::cli
