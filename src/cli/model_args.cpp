#include "cli/model_args.h"

#include <charconv>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "cli/command.h"
#include "cli/compose_args.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {

void ModelArgs::add_model_option(CLI::App* cmd) {
  cmd->add_option("--model", model,
                  "Model: an HF directory (config.json, weights, tokenizer; T5 or Llama family) "
                  "or a .gguf file")
      ->required();
}

void ModelArgs::add_options(CLI::App* cmd) {
  add_model_option(cmd);
  add_compute_options(cmd);
  cmd->add_option("--lora", lora,
                  "PEFT adapter directory or llama.cpp GGUF LoRA (.gguf), e.g. the output of "
                  "lorahub learn: merged into the f32/bf16 weights, a side path beside --int8 "
                  "and --quantized ones; several are combined with --weights by --compose first");
  cmd->add_option("--weights", weights, "With several --lora: comma-separated module weights");
  compose.add_options(cmd);
  cmd->add_option("--compose-seed", seed, "Seed for DARE's random masks")->capture_default_str();
  cmd->add_option("--arrow", arrow,
                  "TOP_K[,TEMPERATURE]: route each token among the --lora modules (Arrow, as "
                  "PEFT's create_arrow_model: the top_k modules by |x . prototype|, softmax at the "
                  "temperature, default 1) instead of composing them");
  cmd->add_option("--gks-lora", gks_lora,
                  "With --arrow: general modules whose mean A and B are subtracted from each "
                  "--lora module first (GenKnowSub)");
  add_chat_option(cmd);
}

void ModelArgs::add_chat_option(CLI::App* cmd) {
  cmd->add_flag("--chat", chat,
                "Wrap each input in the model's chat template (user turn + generation prompt); "
                "off for modules trained on plain prompts, as library/smollm2's");
}

void ModelArgs::add_compute_options(CLI::App* cmd) {
  cmd->add_option("--threads", threads, "Compute threads (0 = all cores)")->capture_default_str();
  cmd->add_flag("--bf16", bf16,
                "bf16 weights and matrix products (oneDNN, f32 accumulation): about 2x faster, "
                "half the memory; losses within 1e-2 relative of the f32 path");
  cmd->add_flag(
      "--int8", int8,
      "int8 weights per output channel, quantized at load (T5's wo in two int8 levels); "
      "activations to int8 on the fly: per 32 values for up to 16 rows (decoding steps, "
      "AVX512-VNNI), per row in two int8 levels (about 15 bits, oneDNN's int8 matmul) for "
      "more; f32 accumulation; --lora stays an f32 side path");
  cmd->add_flag(
      "--quantized", quantized,
      "GGUF models: compute in the file's quantized blocks (Q4_0..Q8_0, Q4_K, Q5_K, "
      "Q6_K) instead of expanding them at load: against int8 activations per 32 values for up "
      "to 16 rows (decoding steps), as tiles dequantized on the fly for more (bf16 through "
      "oneDNN, within the int8 activations' bound); --lora stays an f32 side path");
}

namespace {
api::ModuleSet load_modules(const std::vector<std::string>& paths, const std::string& model) {
  return api::ModuleSet::load(paths, {.hub_ids = false, .base_model = model});
}

// "lorahub: warning: module DIR was made for BASE, not for MODEL".
void warn_about_base_model(const api::Adapter& module, const std::string& model_path) {
  if (!module.made_for(model_path))
    fmt::print(stderr, "lorahub: warning: module {} was made for {}, not for {}\n", module.name(),
               module.base_model(), model_path);
}
}  // namespace

std::shared_ptr<const api::Adapter> ModelArgs::adapter() const {
  const std::vector<double> w =
      weights.empty() ? std::vector<double>() : parse_weight_list(weights);
  return for_flag("--lora", [&] {
    const api::ComposeOptions options = compose.options(seed);
    check(!lora.empty(), "no adapter given");
    // One module with no weights, combined by LoraHub's method: that module as PEFT loads it.
    if (lora.size() == 1 && w.empty() && options.method == "lorahub") {
      auto module = api::Adapter::load(lora[0], model);
      warn_about_base_model(*module, model);
      return module;
    }
    check(!w.empty(), "{} modules need weights (one per module)", lora.size());
    check(w.size() == lora.size(), "{} weights for {} modules", w.size(), lora.size());
    const api::ModuleSet set = load_modules(lora, model);
    warn_about_base_model(*set.module(0), model);  // the set's modules share one base model
    return set.compose(w, options);
  });
}

void ModelArgs::set_threads() const {
  if (threads > 0) api::init_runtime({.threads = threads});
}

api::ModelOptions ModelArgs::compute_options() const {
  api::ModelOptions options;
  options.bf16 = bf16;
  options.int8 = int8;
  options.quantized = quantized;
  return options;
}

std::shared_ptr<const api::Model> ModelArgs::load() const {
  set_threads();
  api::ModelOptions options = compute_options();
  // Merged once, as merge_and_unload does: inference then costs what the base model costs.
  // A side path (lora_side_path) runs per call instead (session).
  if (!lora.empty() && !lora_side_path()) options.merge_adapters.push_back(adapter());
  return api::Model::load(model, options);
}

namespace {
// All of `text` as a number of type T.
template <class T>
std::optional<T> whole_number(std::string_view text) {
  T value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

api::ArrowOptions parse_arrow(const std::string& text) {
  const size_t comma = text.find(',');
  const auto k = whole_number<int64_t>(std::string_view(text).substr(0, comma));
  const auto t = comma == std::string::npos
                     ? std::optional<double>(1.0)
                     : whole_number<double>(std::string_view(text).substr(comma + 1));
  check(k && t, "--arrow: '{}' is not TOP_K[,TEMPERATURE] (e.g. 3 or 2,0.5)",
        truncate_utf8(text, 40));
  return api::ArrowOptions{.top_k = *k, .temperature = *t};
}
}  // namespace

api::Session ModelArgs::session(std::shared_ptr<const api::Model> loaded) const {
  check(arrow.empty() || !lora.empty(), "--arrow needs the task modules as --lora");
  check(!gks_lora.empty() <= !arrow.empty(), "--gks-lora needs --arrow");
  if (arrow.empty())
    return api::Session(std::move(loaded), lora.empty() || !lora_side_path() ? nullptr : adapter());
  check(weights.empty() && compose.method == "lorahub",
        "--arrow routes the --lora modules itself: drop --weights and --compose");
  const api::ArrowOptions options = parse_arrow(arrow);
  return for_flag("--arrow", [&] {
    const api::ModuleSet tasks = load_modules(lora, model);
    std::optional<api::ModuleSet> general;
    if (!gks_lora.empty()) general = load_modules(gks_lora, model);
    return api::Session(std::move(loaded), tasks.route(options, general ? &*general : nullptr));
  });
}

}  // namespace lorahub::cli
