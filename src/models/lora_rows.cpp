#include "core/error.h"
#include "models/lora_delta.h"

namespace lorahub {

LoraRows lora_rows(const SequenceLora& lora, const std::vector<int64_t>& rows_per_sequence) {
  LoraRows spans;
  if (lora.empty()) return spans;
  check(lora.size() == 1 || lora.size() == rows_per_sequence.size(),
        "{} adapters for a batch of {} sequences", lora.size(), rows_per_sequence.size());
  int64_t row = 0;
  for (size_t b = 0; b < rows_per_sequence.size(); ++b) {
    const BoundLora* l = lora.size() == 1 ? lora[0] : lora[b];
    const int64_t end = row + rows_per_sequence[b];
    if (l != nullptr && end > row) {
      if (!spans.empty() && spans.back().lora == l && spans.back().end == row)
        spans.back().end = end;
      else
        spans.push_back({row, end, l});
    }
    row = end;
  }
  return spans;
}

}  // namespace lorahub
