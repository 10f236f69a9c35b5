#include "models/batch.h"

#include <algorithm>

#include "core/error.h"

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

RaggedBatch RaggedBatch::dense(int64_t batch, int64_t len) {
  RaggedBatch r;
  r.batch = batch;
  r.len = len;
  r.rows = batch * len;
  r.first.assign(static_cast<size_t>(batch), 0);
  r.count.assign(static_cast<size_t>(batch), len);
  r.left_pad.assign(static_cast<size_t>(batch), 0);
  for (int64_t b = 0; b < batch; ++b) r.row0.push_back(b * len);
  return r;
}

RaggedBatch RaggedBatch::of(const PaddedBatch& padded) {
  RaggedBatch r;
  r.batch = padded.batch;
  r.len = padded.len;
  r.left_pad = padded.offsets;
  for (int64_t b = 0; b < padded.batch; ++b) {
    const uint8_t* valid = padded.valid.data() + b * padded.len;
    const int64_t first = std::find(valid, valid + padded.len, 1) - valid;
    const int64_t count = std::count(valid, valid + padded.len, 1);
    check(std::all_of(valid + first, valid + first + count, [](uint8_t v) { return v == 1; }),
          "sequence {} of a batch has padding between its tokens", b);
    r.first.push_back(first);
    r.count.push_back(count);
    r.row0.push_back(r.rows);
    r.rows += count;
  }
  return r;
}

std::vector<int32_t> packed_ids(const PaddedBatch& padded) {
  std::vector<int32_t> ids;
  for (size_t i = 0; i < padded.ids.size(); ++i)
    if (padded.valid[i]) ids.push_back(padded.ids[i]);
  return ids;
}

std::vector<std::vector<float>> mean_rows(const std::vector<float>& packed, const RaggedBatch& rows,
                                          int64_t d) {
  std::vector<std::vector<float>> out;
  for (int64_t b = 0; b < rows.batch; ++b) {
    std::vector<double> sum(static_cast<size_t>(d), 0.0);
    for (int64_t t = 0; t < rows.count[b]; ++t)
      for (int64_t k = 0; k < d; ++k) sum[k] += packed[(rows.row0[b] + t) * d + k];
    std::vector<float> mean(static_cast<size_t>(d));
    for (int64_t k = 0; k < d; ++k)
      mean[k] = static_cast<float>(sum[k] / std::max<int64_t>(1, rows.count[b]));
    out.push_back(std::move(mean));
  }
  return out;
}

}  // namespace lorahub
