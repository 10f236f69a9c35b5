// Batches of token sequences padded to the longest, with the mask of real tokens, and the packed
// ("ragged") view of the same batch that the blocks compute on. Shared by the encoder-decoder and
// the decoder-only models.
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

// The real tokens of one step over `batch` sequences of `len` slots: sequence b owns the slots
// [first[b], first[b] + count[b]). Activations hold only those rows, sequence after sequence
// (row0[b] is the first row of sequence b), so no linear layer spends work on padding; only
// attention and the KV cache see slots. Padding lengths in a batch of BBH prompts differ by up to
// 3x, so this is the largest single saving of the engine.
struct RaggedBatch {
  int64_t batch = 0, len = 0, rows = 0;
  std::vector<int64_t> first, count, row0;
  // Left padding of each sequence in its cache (decoder-only generation): the position of slot s
  // is s - left_pad[b]. Travels with the rows so that no model keeps per-call state.
  std::vector<int64_t> left_pad;

  // Every slot is real (decoding steps: one new token per sequence).
  static RaggedBatch dense(int64_t batch, int64_t len);
  // The valid slots of a padded batch (each sequence's valid slots must be contiguous).
  static RaggedBatch of(const PaddedBatch& padded);
};

// The ids of the valid slots of `padded`, in the row order of RaggedBatch::of(padded).
std::vector<int32_t> packed_ids(const PaddedBatch& padded);

// The mean of each sequence's packed rows of x[rows.rows, d]: one [d] vector per sequence.
std::vector<std::vector<float>> mean_rows(const std::vector<float>& x, const RaggedBatch& rows,
                                          int64_t d);

}  // namespace lorahub
