#include "models/batch.h"

#include <algorithm>

namespace lorahub {

PaddedBatch pad_batch(const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id, bool left) {
  PaddedBatch p;
  p.batch = static_cast<int64_t>(seqs.size());
  for (const auto& s : seqs) p.len = std::max<int64_t>(p.len, static_cast<int64_t>(s.size()));
  p.ids.assign(static_cast<size_t>(p.batch * p.len), pad_id);
  p.valid.assign(p.ids.size(), 0);
  p.offsets.assign(seqs.size(), 0);
  for (int64_t b = 0; b < p.batch; ++b) {
    const int64_t n = static_cast<int64_t>(seqs[b].size());
    p.offsets[b] = left ? p.len - n : 0;
    std::copy(seqs[b].begin(), seqs[b].end(), p.ids.begin() + b * p.len + p.offsets[b]);
    std::fill_n(p.valid.begin() + b * p.len + p.offsets[b], n, 1);
  }
  return p;
}

}  // namespace lorahub
