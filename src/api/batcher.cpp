// Continuous batching on today's engine, kept simple and correct: when no batch is decoding,
// step() starts one with every queued sequence that has the adapter of the oldest one (the model
// holds one LoRA side path at a time), then decodes one token per active sequence each step
// until all of them ended; sequences queued meanwhile wait for the next batch. The per-row
// adapter batch of the reworked engine replaces the insides of this file only.
#include <algorithm>
#include <deque>

#include "api/internal.h"
#include "core/error.h"

namespace lorahub::api {

namespace {

struct Request {
  uint64_t id = 0;
  std::vector<int32_t> prompt;
  std::shared_ptr<const Adapter> adapter;
  GenerationOptions options;
  DecodeOptions decode;
  bool cancelled = false;
};

struct Sequence {
  Request request;
  TextStream stream;
  std::mt19937_64 rng;
  bool running = true;
};

}  // namespace

struct Batcher::Impl {
  std::shared_ptr<const Model> model;
  std::deque<Request> queue;
  uint64_t next_id = 0;
  // The batch being decoded: one adapter, its sequences (finished ones stay as rows), the state.
  std::shared_ptr<const Adapter> adapter;
  std::vector<Sequence> batch;
  std::unique_ptr<DecodeState> state;
  size_t running = 0;

  void emit_and_end(Sequence& s, std::string text, const char* reason) {
    s.running = false;
    --running;
    if (s.request.options.on_text) s.request.options.on_text({s.request.id, text, true, reason});
  }
  // A piece of text; a false answer cancels the sequence.
  void emit(Sequence& s, const std::string& text) {
    if (s.request.options.on_text && !s.request.options.on_text({s.request.id, text, false, ""}))
      emit_and_end(s, {}, "cancelled");
  }

  void start_batch();
  void advance();
};

void Batcher::Impl::start_batch() {
  adapter = queue.front().adapter;
  batch.clear();
  const Tokenizer& tokenizer = engine(*model).tokenizer();
  for (auto it = queue.begin(); it != queue.end();) {
    if (it->adapter != adapter) {
      ++it;
      continue;
    }
    TextStream stream(tokenizer, it->options.stop);
    std::mt19937_64 rng = sequence_rng(it->options.seed, 0);  // as a call with this prompt alone
    batch.push_back({std::move(*it), std::move(stream), rng, true});
    it = queue.erase(it);
  }
  running = batch.size();
  int room = 0;
  std::vector<std::vector<int32_t>> prompts;
  for (const Sequence& s : batch) {
    room = std::max(room, s.request.options.max_new_tokens);
    prompts.push_back(s.request.prompt);
  }
  with_adapter(*model, adapter.get(), [&](lorahub::Model& m) { state = m.prefill(prompts, room); });
}

// Picks each running sequence's next token from the latest logits and ends the finished ones.
void Batcher::Impl::advance() {
  const lorahub::Model& m = engine(*model);
  const int64_t vocab = m.vocab_size();
  const std::vector<int32_t> eos = m.end_of_sequence_ids();
  for (size_t b = 0; b < batch.size(); ++b) {
    Sequence& s = batch[b];
    if (!s.running) continue;
    const GenerationOptions& o = s.request.options;
    if (s.request.cancelled) {
      emit_and_end(s, s.stream.finish(), "cancelled");
      continue;
    }
    if (o.max_new_tokens <= 0) {
      emit_and_end(s, {}, "length");
      continue;
    }
    const int32_t token =
        pick_token(state->logits.data() + b * vocab, vocab, s.request.decode.sampling, s.rng);
    if (std::find(eos.begin(), eos.end(), token) != eos.end()) {
      emit_and_end(s, s.stream.finish(), "stop");
      continue;
    }
    emit(s, s.stream.push(token));
    if (!s.running) continue;
    if (s.stream.stopped())
      emit_and_end(s, s.stream.finish(), "stop");
    else if (std::ssize(s.stream.ids()) >= o.max_new_tokens)
      emit_and_end(s, s.stream.finish(), "length");
  }
}

Batcher::Batcher(std::shared_ptr<const Model> model) : impl_(std::make_unique<Impl>()) {
  check(model != nullptr, "batcher: no model");
  impl_->model = std::move(model);
}

Batcher::~Batcher() = default;

uint64_t Batcher::add(const std::string& prompt, std::shared_ptr<const Adapter> adapter,
                      const GenerationOptions& options) {
  if (adapter) check_adapter_fits(*impl_->model, *adapter);
  Request r;
  r.id = impl_->next_id++;
  r.prompt = engine(*impl_->model).tokenizer().encode(prompt);
  r.adapter = std::move(adapter);
  r.decode = to_decode_options(options);
  r.options = options;
  impl_->queue.push_back(std::move(r));
  return impl_->queue.back().id;
}

void Batcher::cancel(uint64_t id) {
  for (Request& r : impl_->queue)
    if (r.id == id) r.cancelled = true;
  for (Sequence& s : impl_->batch)
    if (s.request.id == id) s.request.cancelled = true;
}

size_t Batcher::step() {
  Impl& b = *impl_;
  if (b.running == 0) {
    if (b.queue.empty()) return 0;
    b.start_batch();
  } else {
    // Each running row feeds the token it picked last; rows that ended feed a filler.
    const int32_t filler = std::max(engine(*b.model).tokenizer().pad_id(), 0);
    std::vector<int32_t> next(b.batch.size());
    for (size_t i = 0; i < b.batch.size(); ++i)
      next[i] = b.batch[i].running ? b.batch[i].stream.ids().back() : filler;
    with_adapter(*b.model, b.adapter.get(),
                 [&](lorahub::Model& m) { m.decode_step(*b.state, next); });
  }
  const size_t in_step = b.running;
  b.advance();
  if (b.running == 0) b.state.reset();
  return in_step;
}

size_t Batcher::active() const {
  return impl_->queue.size() + impl_->running;
}

}  // namespace lorahub::api
