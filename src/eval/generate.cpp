#include "eval/generate.h"

#include <algorithm>
#include <memory>

#include "models/batcher.h"

namespace lorahub {

std::vector<Decoded> generate_texts(const Model& model, const std::vector<std::string>& inputs,
                                    const GenerateOptions& options) {
  std::vector<Decoded> out(inputs.size());
  if (inputs.empty()) return out;
  const size_t live = static_cast<size_t>(std::max(1, options.batch_size));
  // The caller keeps the adapter alive for the call: a non-owning handle.
  const std::shared_ptr<const BoundLora> lora(std::shared_ptr<void>(), options.lora);
  ContinuousBatcher batcher(model);
  size_t next = 0, finished = 0, reported = 0;
  const auto add = [&] {
    const size_t i = next++;
    DecodeOptions decode = options.decode;
    decode.on_event = [&, i](const StreamEvent& e) {
      bool wanted = true;
      if (options.decode.on_event) {
        StreamEvent global = e;
        global.sequence = i;
        wanted = options.decode.on_event(global);
      }
      if (e.done) {
        out[i] = *e.result;
        ++finished;
      }
      return wanted;
    };
    // Sampling draws from the stream of the input's place in its batch of `live`, as decoding
    // in fixed batches did.
    batcher.add(model.tokenizer().encode(inputs[i]), lora, std::move(decode), i % live);
  };
  // Refill: `live` sequences decode together, and each one that ends (EOS, a stop string, its
  // budget) is replaced by the next input at the next step, so one long answer no longer holds
  // a whole batch of finished ones (they leave the step: Model::decode_step).
  while (next < std::min(live, inputs.size())) add();
  while (batcher.active() > 0 || next < inputs.size()) {
    batcher.step();
    while (next < inputs.size() && next - finished < live) add();
    if (options.on_progress && finished > reported) {
      reported = finished;
      options.on_progress(finished, inputs.size());
    }
  }
  if (options.timings) *options.timings = batcher.timings();
  return out;
}

}  // namespace lorahub
