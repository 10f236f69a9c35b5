// Batches of token sequences padded to the longest, with the mask of real tokens. Shared by the
// encoder-decoder and the decoder-only models.
#pragma once
#include <cstdint>
#include <vector>

namespace lorahub {

struct PaddedBatch {
  int64_t batch = 0, len = 0;
  std::vector<int32_t> ids;      // [batch, len]
  std::vector<uint8_t> valid;    // [batch, len]
  std::vector<int64_t> offsets;  // left padding of each sequence (0 when right-padded)
};

// Right-padded for scoring (positions start at 0 everywhere); left-padded for decoder-only
// generation (every prompt ends at the same slot).
PaddedBatch pad_batch(const std::vector<std::vector<int32_t>>& seqs, int32_t pad_id,
                      bool left = false);

}  // namespace lorahub
