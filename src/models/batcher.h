// Continuous batching over one loaded model: sequences, each with its own adapter and decoding
// options, decode in shared steps. The sequences that join at one step are prefilled together
// (one forward over all their prompt rows, each row with its own adapter; those with the same
// max_new_tokens share one batch, so that no cache is sized for another's budget) and then
// decode in the same step as all the others (Model::decode_steps: every linear layer once over
// all rows, the LoRA side path per group of rows, attention per sequence over its own cache);
// finished or cancelled sequences leave between steps. This is what lets a server answer many
// requests with different LoRA compositions at once, where peers batch only equal adapters.
//
// Not thread-safe: one thread calls add/cancel/step (a server's scheduler); results and text
// arrive through each sequence's DecodeOptions::on_event, from inside step().
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "models/decode.h"

namespace lorahub {

class ContinuousBatcher {
 public:
  explicit ContinuousBatcher(const Model& model) : model_(model) {}

  // Queues a prompt; it joins at the next step. Its events carry `sequence` = the returned id.
  // `lora` (nullptr = the base model) must be bound to this model.
  // `rng_stream` picks its sampling stream (SequenceDecoder), 0 unless a caller needs others.
  uint64_t add(std::vector<int32_t> prompt, std::shared_ptr<const BoundLora> lora,
               DecodeOptions options, uint64_t rng_stream = 0);
  // Ends the sequence at the next step (its done event reports kCancelled). Unknown ids
  // (finished already) are ignored.
  void cancel(uint64_t id);
  // Prefills the queued sequences, then decodes one token for every running one. Returns how many
  // sequences took part.
  size_t step();
  size_t active() const { return sequences_.size(); }
  // Summed over all steps so far.
  const DecodeTimings& timings() const { return timings_; }

 private:
  struct Sequence {
    uint64_t id = 0;
    std::vector<int32_t> prompt;
    std::shared_ptr<const BoundLora> lora;
    std::unique_ptr<DecodeOptions> options;  // stable address: the decoder refers to it
    std::unique_ptr<SequenceDecoder> decoder;
    // Null until prefilled; shared by the sequences prefilled together (its row `row` is this
    // one's). A finished sequence's row is fed -1 while others of its batch decode: the decoder
    // family leaves it out of the step, others compute it on a filler (Model::decode_step).
    std::shared_ptr<DecodeState> state;
    int64_t row = 0;
    int32_t next = -1;  // token to feed at the next step
    bool cancelled = false;
  };

  // Prefills sequences that join together, in one forward per max_new_tokens.
  void prefill(const std::vector<Sequence*>& joining);
  const float* row_logits(const Sequence& s) const;  // its row of its batch's logits
  void leave_finished();

  const Model& model_;
  std::vector<Sequence> sequences_;
  uint64_t next_id_ = 1;
  DecodeTimings timings_;
};

}  // namespace lorahub
