// lorahub convert SRC DST [--dtype keep|f32|f16|bf16]: rewrites weights as safetensors with our
// writer. SRC is a PEFT adapter directory (DST becomes one: adapter_config.json +
// adapter_model.safetensors, loadable by PEFT) or a weights file (.bin or .safetensors; DST is a
// .safetensors file). Typical use: the legacy adapter_model.bin of released LoraHub modules.
// GGUF LoRAs (llama.cpp's adapter files, lora/gguf_lora.h), both ways: a PEFT directory to
// DST.gguf needs --base MODEL (the GGUF or HF model it is for: tensor names, Llama's q/k row
// order); a GGUF LoRA SRC becomes a PEFT directory (--base needed for Llama q/k targets).
#include <filesystem>
#include <string>

#include "cli/command.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
namespace {

// The flags, checked as the command has always named them, then api::convert.
void run(const std::string& src, const std::string& dst, const api::ConvertOptions& o) {
  const bool known = o.dtype == "keep" || o.dtype == "f32" || o.dtype == "f16" || o.dtype == "bf16";
  check(known, "--dtype must be keep, f32, f16 or bf16, got '{}'", o.dtype);
  check(std::filesystem::exists(src), "{}: no such file or directory", src);
  if (dst.ends_with(".gguf")) {
    check(!o.base_model.empty(), "{}: writing a GGUF LoRA needs --base (the model it is for)", dst);
    check(o.dtype == "keep" || o.dtype == "f32", "--dtype: GGUF LoRAs are written as f32");
  }
  api::convert(src, dst, o);
}

const Registrar reg("convert", 11, [](CLI::App& app) {
  struct Args {
    std::string src, dst;
    api::ConvertOptions convert;
  };
  auto opts = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "convert",
      "Rewrite a PEFT adapter dir or weights file (.bin/.safetensors) as safetensors, or "
      "an adapter as a GGUF LoRA (DST.gguf) and back");
  cmd->add_option("src", opts->src,
                  "PEFT adapter directory, weights file (.bin/.safetensors) or GGUF LoRA (.gguf)")
      ->required();
  cmd->add_option("dst", opts->dst,
                  "Output adapter directory, .safetensors file or GGUF LoRA (.gguf, needs --base)")
      ->required();
  cmd->add_option("--dtype", opts->convert.dtype, "keep, f32, f16 or bf16 (floating tensors only)");
  cmd->add_option("--base", opts->convert.base_model,
                  "Base model (GGUF file or HF directory) for GGUF LoRA input or output");
  cmd->callback([opts] { run(opts->src, opts->dst, opts->convert); });
});

}  // namespace
}  // namespace lorahub::cli
