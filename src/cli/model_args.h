// The model options that `score` and `generate` share (--model, --threads), and the one place
// that turns them into a loaded Model. Options that change the model for every command (such
// as applying LoRA modules) belong here, so each command gets them by calling load().
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "cli/compose_args.h"
#include "models/model.h"

namespace lorahub::cli {

struct ModelArgs {
  std::string model;  // HF model directory (or .gguf)
  int threads = 0;    // 0 = all cores
  // PEFT adapter directories merged in (none = the base model): one as is (e.g. the output of
  // `lorahub learn`), several combined with --weights by --compose first.
  std::vector<std::string> lora;
  std::string weights;  // --weights w1,w2,... for several --lora
  ComposeArgs compose;
  uint64_t seed = 42;  // DARE's masks
  // --arrow TOP_K[,TEMPERATURE]: route per token among the --lora modules (lora/arrow.h)
  // instead of combining them; --gks-lora: the general modules of GenKnowSub.
  std::string arrow;
  std::vector<std::string> gks_lora;
  bool chat = false;       // wrap inputs in the model's chat template (instruct models)
  bool bf16 = false;       // bf16 weights and products (fast path) instead of f32 (reference path)
  bool int8 = false;       // int8 weights per output channel, VNNI products
  bool quantized = false;  // GGUF: products in the file's quantized blocks

  void add_options(CLI::App* cmd);
  // --threads and --bf16, for commands that define their own --model/--lora.
  void add_compute_options(CLI::App* cmd);
  // --chat alone (add_options has it), for commands that define their own --model/--lora.
  void add_chat_option(CLI::App* cmd);
  // The model, with the --lora adapter merged in where it is merged (see lora_side_path).
  std::unique_ptr<Model> load() const;
  // Where --lora stays an unmerged side path, passed per call: with --arrow (the mixture
  // depends on the token), and on the int8/quantized weight paths, where merging would quantize
  // the adapter again (int8) or expand the file's blocks to f32 (GGUF); there, generate and
  // score compute what learn's objective and `lorahub serve` compute.
  bool lora_side_path() const { return !arrow.empty() || int8 || quantized; }
  // With a side path, the adapter (the Arrow router, or the --lora module) bound to `model`, to
  // pass per call; nullptr otherwise.
  std::shared_ptr<const BoundLora> side_adapter(const Model& model) const;
  // The adapters of every sequence of a call: the side adapter, or none (merged or base).
  SequenceLora sequence_lora(const std::shared_ptr<const BoundLora>& side) const {
    return side ? SequenceLora{side.get()} : SequenceLora{};
  }
  // The adapter --lora names: one module, or the combination of several.
  LoraModule adapter() const;
  // The model input for a text: as is, or with --chat a user turn + generation prompt.
  std::string prompt(const Model& model, const std::string& input) const {
    return chat ? model.tokenizer().apply_chat_template(input) : input;
  }
};

}  // namespace lorahub::cli
