// Sessions on today's engine: the model keeps one LoRA side path (Model::set_lora), so every call
// holds the model's mutex, sets the session's adapter, runs, and takes it off again. Every engine
// call of a session is in this file (and batcher.cpp), so that per-call adapters replace this
// without touching the rest of the API.
#include <algorithm>

#include "api/internal.h"
#include "core/error.h"
#include "eval/generate.h"

namespace lorahub::api {

void check_adapter_fits(const api::Model& model, const Adapter& adapter) {
  const lorahub::Model& m = engine(model);
  const std::vector<LinearInfo> layers = m.linear_layers();
  check_lora_targets(adapter.impl().map, layers, m.architecture());
  for (const LinearInfo& layer : layers) {
    const auto it = adapter.impl().map.find(layer.name);
    if (it == adapter.impl().map.end()) continue;
    for (const LoraDelta& d : it->second)
      check(d.in == layer.in && d.out == layer.out,
            "adapter {}: target '{}' is {}x{} (out x in) but the model's layer is {}x{}",
            adapter.name(), layer.name, d.out, d.in, layer.out, layer.in);
  }
}

void with_adapter(const api::Model& model, const Adapter* adapter,
                  const std::function<void(lorahub::Model&)>& f) {
  std::lock_guard<std::mutex> lock(model.impl().lora_mutex);
  lorahub::Model& m = engine(model);
  m.set_lora(adapter != nullptr ? &adapter->impl().map : nullptr);
  try {
    f(m);
  } catch (...) {
    m.set_lora(nullptr);  // never leave the model pointing at an adapter it does not own
    throw;
  }
  m.set_lora(nullptr);
}

DecodeOptions to_decode_options(const GenerationOptions& options) {
  check(options.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0, got {}",
        options.max_new_tokens);
  check(options.top_k >= 0, "generate: top_k must be >= 0, got {}", options.top_k);
  check(options.top_p > 0.0f && options.top_p <= 1.0f, "generate: top_p must be in (0, 1], got {}",
        options.top_p);
  DecodeOptions decode;
  decode.max_new_tokens = options.max_new_tokens;
  decode.sampling = {options.temperature, options.top_k, options.top_p, options.seed};
  decode.stop = options.stop;
  return decode;
}

struct Session::Impl {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Adapter> adapter;
};

Session::Session(std::shared_ptr<const Model> model, std::shared_ptr<const Adapter> adapter)
    : impl_(std::make_unique<Impl>()) {
  check(model != nullptr, "session: no model");
  impl_->model = std::move(model);
  set_adapter(std::move(adapter));
}

Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

void Session::set_adapter(std::shared_ptr<const Adapter> adapter) {
  if (adapter) check_adapter_fits(*impl_->model, *adapter);
  impl_->adapter = std::move(adapter);
}

const std::shared_ptr<const Adapter>& Session::adapter() const {
  return impl_->adapter;
}
const Model& Session::model() const {
  return *impl_->model;
}

std::vector<ExampleScore> Session::score(const std::vector<std::string>& inputs,
                                         const std::vector<std::string>& outputs, int batch_size) {
  check(inputs.size() == outputs.size(), "score: {} inputs but {} outputs", inputs.size(),
        outputs.size());
  check(batch_size >= 0, "score: batch_size must be >= 0, got {}", batch_size);
  std::vector<ExampleScore> scores;
  if (inputs.empty()) return scores;
  with_adapter(*impl_->model, impl_->adapter.get(), [&](lorahub::Model& m) {
    std::vector<Example> examples;
    for (size_t i = 0; i < inputs.size(); ++i)
      examples.push_back(m.make_example(inputs[i], outputs[i]));
    const size_t step = batch_size > 0 ? static_cast<size_t>(batch_size) : examples.size();
    for (size_t first = 0; first < examples.size(); first += step) {
      const std::vector<Example> batch(examples.begin() + first,
                                       examples.begin() + std::min(examples.size(), first + step));
      for (const ExampleLoss& l : m.score(batch)) scores.push_back({l.ce_sum, l.tokens});
    }
  });
  return scores;
}

std::vector<Generation> Session::generate(const std::vector<std::string>& prompts,
                                          const GenerationOptions& options) {
  GenerateOptions generate;
  generate.decode = to_decode_options(options);
  generate.batch_size = std::max(1, options.batch_size);
  // A sequence whose stream callback said false is cancelled: it gets no more events, and its
  // result is what it had streamed (its batch still runs to the end on today's engine).
  std::vector<bool> cancelled(prompts.size(), false);
  std::vector<std::string> streamed(prompts.size());
  std::vector<std::vector<int32_t>> tokens(prompts.size());
  if (options.on_text)
    generate.decode.on_event = [&](const StreamEvent& e) {
      if (cancelled[e.sequence]) return;
      if (!e.done) {
        streamed[e.sequence] += e.text;
        tokens[e.sequence].push_back(e.token);
      }
      // The loop ends a sequence at its token limit, or else at EOS or a stop string.
      const bool full = std::ssize(tokens[e.sequence]) >= options.max_new_tokens;
      const TextEvent event{e.sequence, e.text, e.done, e.done ? (full ? "length" : "stop") : ""};
      if (!options.on_text(event) && !e.done) {
        cancelled[e.sequence] = true;
        options.on_text(TextEvent{e.sequence, {}, true, "cancelled"});
      }
    };
  if (options.on_progress)
    generate.on_progress = [&](size_t done, size_t total) {
      if (!options.on_progress("generate", done, total)) throw Cancelled();
    };
  std::vector<Decoded> decoded;
  std::vector<size_t> prompt_tokens;
  with_adapter(*impl_->model, impl_->adapter.get(), [&](lorahub::Model& m) {
    for (const std::string& p : prompts)
      prompt_tokens.push_back(std::min(m.tokenizer().encode(p).size(), kMaxInputTokens));
    decoded = generate_texts(m, prompts, generate);
  });
  std::vector<Generation> out;
  for (size_t i = 0; i < decoded.size(); ++i) {
    Generation g;
    g.prompt_tokens = prompt_tokens[i];
    if (cancelled[i]) {
      g.text = streamed[i];
      g.ids = tokens[i];
      g.finish_reason = "cancelled";
    } else {
      g.text = std::move(decoded[i].text);
      g.ids = std::move(decoded[i].ids);
      g.finish_reason = decoded[i].finish == FinishReason::kLength ? "length" : "stop";
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace lorahub::api
