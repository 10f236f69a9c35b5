#include "eval/generate.h"

#include <algorithm>

namespace lorahub {

std::vector<Decoded> generate_texts(const Model& model, const std::vector<std::string>& inputs,
                                    const GenerateOptions& options) {
  std::vector<Decoded> out;
  out.reserve(inputs.size());
  const size_t step = static_cast<size_t>(std::max(1, options.batch_size));
  const SequenceLora lora = options.lora ? SequenceLora{options.lora} : SequenceLora{};
  for (size_t first = 0; first < inputs.size(); first += step) {
    std::vector<std::vector<int32_t>> batch;
    for (size_t i = first; i < std::min(inputs.size(), first + step); ++i)
      batch.push_back(model.tokenizer().encode(inputs[i]));
    DecodeOptions decode = options.decode;
    if (options.decode.on_event)
      decode.on_event = [&](const StreamEvent& e) {
        StreamEvent global = e;
        global.sequence += first;
        return options.decode.on_event(global);
      };
    for (Decoded& d : lorahub::decode(model, batch, decode, lora)) out.push_back(std::move(d));
    if (options.on_progress) options.on_progress(out.size(), inputs.size());
  }
  return out;
}

}  // namespace lorahub
