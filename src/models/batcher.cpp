#include "models/batcher.h"

#include <algorithm>

#include "core/error.h"

namespace lorahub {

uint64_t ContinuousBatcher::add(std::vector<int32_t> prompt, std::shared_ptr<const BoundLora> lora,
                                DecodeOptions options) {
  check(!prompt.empty(), "batcher: empty prompt");
  Sequence s;
  s.id = next_id_++;
  s.prompt = std::move(prompt);
  s.lora = std::move(lora);
  s.options = std::make_unique<DecodeOptions>(std::move(options));
  s.decoder = std::make_unique<SequenceDecoder>(model_, *s.options, s.id, 0);
  sequences_.push_back(std::move(s));
  return sequences_.back().id;
}

void ContinuousBatcher::cancel(uint64_t id) {
  for (Sequence& s : sequences_)
    if (s.id == id) s.cancelled = true;
}

void ContinuousBatcher::prefill(Sequence& s) const {
  const SequenceLora lora = s.lora ? SequenceLora{s.lora.get()} : SequenceLora{};
  s.state = model_.prefill({s.prompt}, s.options->max_new_tokens, lora);
  s.next = s.decoder->advance(s.state->logits.data());
}

size_t ContinuousBatcher::step() {
  for (Sequence& s : sequences_) {
    if (s.cancelled) s.decoder->cancel();
    if (!s.decoder->done() && s.state == nullptr) prefill(s);
  }
  std::erase_if(sequences_, [](const Sequence& s) { return s.decoder->done(); });
  const size_t stepped = sequences_.size();
  if (stepped == 0) return 0;
  std::vector<DecodeState*> states;
  std::vector<int32_t> tokens;
  for (Sequence& s : sequences_) {
    states.push_back(s.state.get());
    tokens.push_back(s.next);
  }
  model_.decode_steps(states, tokens);
  for (Sequence& s : sequences_) s.next = s.decoder->advance(s.state->logits.data());
  std::erase_if(sequences_, [](const Sequence& s) { return s.decoder->done(); });
  return stepped;
}

}  // namespace lorahub
