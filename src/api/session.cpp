// Sessions: a session binds its adapter to the model once (Model::bind_lora checks targets and
// shapes) and passes it with every call; the model is immutable, so sessions on one model run in
// parallel threads. Every engine call of a session is in this file (and batcher.cpp).
#include <algorithm>

#include "api/internal.h"
#include "core/error.h"
#include "eval/generate.h"
#include "eval/score.h"

namespace lorahub::api {

std::shared_ptr<const BoundLora> bind(const api::Model& model, const Adapter* adapter) {
  if (adapter == nullptr) return nullptr;
  try {
    if (adapter->impl().router) return engine(model).bind_router(adapter->impl().router);
    return engine(model).bind_lora(adapter->impl().map);
  } catch (const Error& e) {
    fail("adapter {}: {}", adapter->name(), e.what());
  }
}

const char* finish_reason(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
    default:
      return "stop";  // EOS or a stop string, as OpenAI's API names both
  }
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

namespace {
std::vector<Example> make_examples(const lorahub::Model& m, const std::vector<std::string>& inputs,
                                   const std::vector<std::string>& outputs) {
  check(inputs.size() == outputs.size(), "{} inputs but {} outputs", inputs.size(), outputs.size());
  std::vector<Example> examples;
  for (size_t i = 0; i < inputs.size(); ++i)
    examples.push_back(m.make_example(inputs[i], outputs[i]));
  return examples;
}
}  // namespace

struct Session::Impl {
  std::shared_ptr<const Model> model;
  std::shared_ptr<const Adapter> adapter;
  std::shared_ptr<const BoundLora> bound;  // adapter bound to model

  SequenceLora lora() const { return bound ? SequenceLora{bound.get()} : SequenceLora{}; }
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
  impl_->bound = bind(*impl_->model, adapter.get());
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
  const lorahub::Model& m = engine(*impl_->model);
  for_each_batch(make_examples(m, inputs, outputs), batch_size,
                 [&](size_t, const std::vector<Example>& batch) {
                   for (const ExampleLoss& l : m.score(batch, impl_->lora()))
                     scores.push_back({l.ce_sum, l.tokens});
                 });
  return scores;
}

std::vector<Matrix> Session::label_logits(const std::vector<std::string>& inputs,
                                          const std::vector<std::string>& outputs, int batch_size) {
  check(batch_size >= 0, "label_logits: batch_size must be >= 0, got {}", batch_size);
  std::vector<Matrix> out;
  const lorahub::Model& m = engine(*impl_->model);
  for_each_batch(make_examples(m, inputs, outputs), batch_size,
                 [&](size_t, const std::vector<Example>& batch) {
                   for (const Tensor& t : m.label_logits(batch, impl_->lora())) {
                     check(t.shape.size() == 2, "label_logits: expected a matrix");
                     out.push_back({t.shape[0], t.shape[1], t.to_f32()});
                   }
                 });
  return out;
}

std::vector<Generation> Session::generate(const std::vector<std::string>& prompts,
                                          const GenerationOptions& options,
                                          GenerationTimings* timings) {
  GenerateOptions generate;
  generate.decode = to_decode_options(options);
  generate.batch_size = std::max(1, options.batch_size);
  // A sequence whose stream callback says false is cancelled: it decodes no further and gets
  // one last event; its result is what it had streamed. A batch whose rows all ended stops.
  std::vector<bool> cancelled(prompts.size(), false);
  std::vector<std::string> streamed(prompts.size());
  std::vector<std::vector<int32_t>> tokens(prompts.size());
  if (options.on_text)
    generate.decode.on_event = [&](const StreamEvent& e) {
      if (cancelled[e.sequence]) return false;  // the engine's own last event of it
      if (!e.done) {
        streamed[e.sequence] += e.text;
        tokens[e.sequence].push_back(e.token);
      }
      const char* reason = e.done && e.result ? finish_reason(e.result->finish) : "";
      if (options.on_text(TextEvent{e.sequence, e.text, e.done, reason}) || e.done) return true;
      cancelled[e.sequence] = true;
      options.on_text(TextEvent{e.sequence, {}, true, "cancelled"});
      return false;
    };
  if (options.on_progress)
    generate.on_progress = [&](size_t done, size_t total) {
      if (!options.on_progress("generate", done, total)) throw Cancelled();
    };
  const lorahub::Model& m = engine(*impl_->model);
  generate.lora = impl_->bound.get();
  std::vector<size_t> prompt_tokens;
  for (const std::string& p : prompts)
    prompt_tokens.push_back(std::min(m.tokenizer().encode(p).size(), kMaxInputTokens));
  DecodeTimings measured;
  generate.timings = &measured;
  std::vector<Decoded> decoded = generate_texts(m, prompts, generate);
  if (timings)
    *timings = {.prefill_seconds = measured.prefill_seconds,
                .prefill_tokens = measured.prefill_tokens,
                .decode_seconds = measured.decode_seconds,
                .decode_steps = measured.decode_steps,
                .decode_rows = measured.decode_rows};
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
      g.finish_reason = finish_reason(decoded[i].finish);
      g.eos = decoded[i].finish == FinishReason::kEos;
    }
    out.push_back(std::move(g));
  }
  return out;
}

}  // namespace lorahub::api
