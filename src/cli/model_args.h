// The model options that `score` and `generate` share (--model, --threads, --lora, ...; learn,
// objective, bbh and serve take --model and the compute flags from here too), and the one place
// that turns them into a loaded Model. Options that change the model for every command (such
// as applying LoRA modules) belong here, so each command gets them by calling load().
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "cli/compose_args.h"
#include "lorahub/lorahub.h"

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
  bool int8 = false;       // int8 weights per output channel, int8 products (--int8's help)
  bool quantized = false;  // GGUF: products in the file's quantized blocks

  void add_options(CLI::App* cmd);
  // --model alone (add_options has it), for commands that define their own --lora.
  void add_model_option(CLI::App* cmd);
  // --threads, --bf16, --int8 and --quantized, for commands that define their own --lora.
  void add_compute_options(CLI::App* cmd);
  // --chat alone (add_options has it), for commands that define their own --model/--lora.
  void add_chat_option(CLI::App* cmd);
  // --threads, where given (> 0), as the runtime's compute threads (main set all cores).
  void set_threads() const;
  // --bf16, --int8 and --quantized as the options of a model load (nothing merged).
  api::ModelOptions compute_options() const;
  // The model, with the --lora adapter merged in where it is merged (see lora_side_path).
  std::shared_ptr<const api::Model> load() const;
  // Where --lora stays an unmerged side path, passed per call: with --arrow (the mixture
  // depends on the token), and on the int8/quantized weight paths, where merging would quantize
  // the adapter again (int8) or expand the file's blocks to f32 (GGUF); there, generate and
  // score compute what learn's objective and `lorahub serve` compute.
  bool lora_side_path() const { return !arrow.empty() || int8 || quantized; }
  // A session on `model` with what runs per call: with --arrow the Arrow router over the --lora
  // modules, on a side path the --lora adapter, else nothing (merged, or there is none).
  api::Session session(std::shared_ptr<const api::Model> model) const;
  // The adapter --lora names: one module, or the combination of several.
  std::shared_ptr<const api::Adapter> adapter() const;
  // The model input for a text: as is, or with --chat a user turn + generation prompt.
  std::string prompt(const api::Model& model, const std::string& input) const {
    return chat ? model.chat_prompt(input) : input;
  }
};

}  // namespace lorahub::cli
