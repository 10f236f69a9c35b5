#include "models/batcher.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "core/clock.h"
#include "core/error.h"

namespace lorahub {

uint64_t ContinuousBatcher::add(std::vector<int32_t> prompt, std::shared_ptr<const BoundLora> lora,
                                DecodeOptions options, uint64_t rng_stream) {
  check(!prompt.empty(), "batcher: empty prompt");
  Sequence s;
  s.id = next_id_++;
  s.prompt = std::move(prompt);
  s.lora = std::move(lora);
  s.options = std::make_unique<DecodeOptions>(std::move(options));
  s.decoder = std::make_unique<SequenceDecoder>(model_, *s.options, s.id, rng_stream);
  sequences_.push_back(std::move(s));
  return sequences_.back().id;
}

void ContinuousBatcher::cancel(uint64_t id) {
  for (Sequence& s : sequences_)
    if (s.id == id) s.cancelled = true;
}

void ContinuousBatcher::prefill(const std::vector<Sequence*>& joining) {
  if (joining.empty()) return;
  const auto start = std::chrono::steady_clock::now();
  std::map<int, std::vector<Sequence*>> by_budget;
  for (Sequence* s : joining) by_budget[s->options->max_new_tokens].push_back(s);
  for (const auto& [max_new_tokens, group] : by_budget) {
    std::vector<std::vector<int32_t>> prompts;
    SequenceLora lora;
    for (const Sequence* s : group) {
      prompts.push_back(s->prompt);
      lora.push_back(s->lora.get());
      timings_.prefill_tokens += s->prompt.size();
    }
    std::shared_ptr<DecodeState> state = model_.prefill(prompts, max_new_tokens, lora);
    for (size_t i = 0; i < group.size(); ++i) {
      Sequence& s = *group[i];
      s.state = state;
      s.row = static_cast<int64_t>(i);
      s.next = s.decoder->advance(row_logits(s));
    }
  }
  timings_.prefill_seconds += seconds_since(start);
}

const float* ContinuousBatcher::row_logits(const Sequence& s) const {
  return s.state->logits.data() + s.row * model_.vocab_size();
}

void ContinuousBatcher::leave_finished() {
  std::erase_if(sequences_, [](Sequence& s) {
    if (!s.decoder->done()) return false;
    // Its row may go on being stepped with the rest of its batch: without the adapter, which
    // is released with the sequence (the batch holds adapters by plain pointer).
    if (s.state != nullptr && s.state->lora.size() > 1)
      s.state->lora[static_cast<size_t>(s.row)] = nullptr;
    return true;
  });
}

size_t ContinuousBatcher::step() {
  std::vector<Sequence*> joining;
  for (Sequence& s : sequences_) {
    if (s.cancelled) s.decoder->cancel();
    if (!s.decoder->done() && s.state == nullptr) joining.push_back(&s);
  }
  prefill(joining);
  leave_finished();
  const size_t stepped = sequences_.size();
  if (stepped == 0) return 0;
  // Every row of every batch still in use, in the batches' order; rows whose sequence has
  // finished get -1, which leaves them out of the step (Model::decode_step).
  std::vector<DecodeState*> states;
  std::vector<std::vector<int32_t>> rows;
  for (const Sequence& s : sequences_) {
    auto it = std::find(states.begin(), states.end(), s.state.get());
    if (it == states.end()) {
      states.push_back(s.state.get());
      rows.emplace_back(static_cast<size_t>(s.state->batch), -1);  // -1: finished, skipped
      it = states.end() - 1;
    }
    rows[static_cast<size_t>(it - states.begin())][static_cast<size_t>(s.row)] = s.next;
  }
  std::vector<int32_t> tokens;
  for (const auto& r : rows) tokens.insert(tokens.end(), r.begin(), r.end());
  const auto start = std::chrono::steady_clock::now();
  model_.decode_steps(states, tokens);
  for (Sequence& s : sequences_) s.next = s.decoder->advance(row_logits(s));
  timings_.decode_seconds += seconds_since(start);
  timings_.decode_steps += 1;
  timings_.decode_rows += stepped;
  leave_finished();
  return stepped;
}

}  // namespace lorahub
