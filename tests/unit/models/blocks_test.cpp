// The shared blocks: LoRA merged == unmerged, KV-cached decoding == full causal attention,
// grouped-query heads == duplicated heads, relative position buckets == transformers.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/error.h"
#include "core/half.h"
#include "models/batch.h"
#include "models/blocks.h"
#include "models/linear.h"
#include "support/random_values.h"

namespace lorahub {
namespace {
using test_support::random_values;

Linear random_linear(const std::string& name, int64_t in, int64_t out, unsigned seed) {
  return Linear{name, in, out, random_values(in * out, seed, 0.5f), {}, -1, {}};
}

LoraDelta random_delta(int64_t in, int64_t out, int64_t r, float scale, unsigned seed) {
  return LoraDelta{
      random_values(r * in, seed, 0.5f), random_values(out * r, seed + 1, 0.5f), r, in, out, scale};
}

void expect_near(const std::vector<float>& a, const std::vector<float>& b, float tol) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], tol) << "at " << i;
}

TEST(Linear, LoraUnmergedEqualsMerged) {
  const int64_t in = 12, out = 9, rows = 5;
  Linear layer = random_linear("encoder.block.0.layer.0.SelfAttention.q", in, out, 1);
  LoraMap lora;
  lora[layer.name] = {random_delta(in, out, 4, 0.5f, 10), random_delta(in, out, 2, 2.0f, 20)};
  const auto x = random_values(rows * in, 3, 0.5f);

  std::vector<float> plain(rows * out), unmerged(rows * out), merged(rows * out);
  linear_forward(layer, x.data(), rows, plain.data());
  const BoundLora bound = bind_to_layer(layer, lora);
  linear_forward(layer, x.data(), rows, unmerged.data(), {{0, rows, &bound}});
  merge_lora_into(layer, lora);
  linear_forward(layer, x.data(), rows, merged.data());

  expect_near(unmerged, merged, 1e-4f);
  float changed = 0.0f;
  for (size_t i = 0; i < plain.size(); ++i)
    changed = std::max(changed, std::abs(plain[i] - merged[i]));
  EXPECT_GT(changed, 0.1f);  // the deltas did something
}

// One product over rows whose spans carry different adapters (and rows without any) equals
// running each span alone with its adapter: the per-row side path of heterogeneous batches.
TEST(Linear, RowSpansWithDifferentAdaptersEqualSeparateRuns) {
  const int64_t in = 10, out = 7, rows = 9;
  Linear layer = random_linear("model.layers.0.mlp.down_proj", in, out, 31);
  LoraMap a, b;
  a[layer.name] = {random_delta(in, out, 3, 0.5f, 32)};
  b[layer.name] = {random_delta(in, out, 2, 1.5f, 33), random_delta(in, out, 1, 1.0f, 34)};
  const BoundLora bound_a = bind_to_layer(layer, a), bound_b = bind_to_layer(layer, b);
  const auto x = random_values(rows * in, 35, 0.5f);
  // rows 0-2: a, rows 3-4: base, rows 5-8: b
  std::vector<float> mixed(rows * out);
  linear_forward(layer, x.data(), rows, mixed.data(), {{0, 3, &bound_a}, {5, 9, &bound_b}});
  std::vector<float> expected;
  auto run = [&](int64_t first, int64_t n, const BoundLora* lora) {
    std::vector<float> y(n * out);
    LoraRows spans;
    if (lora) spans.push_back({0, n, lora});
    linear_forward(layer, &x[first * in], n, y.data(), spans);
    expected.insert(expected.end(), y.begin(), y.end());
  };
  run(0, 3, &bound_a);
  run(3, 2, nullptr);
  run(5, 4, &bound_b);
  expect_near(mixed, expected, 1e-5f);
  std::vector<float> all_a(rows * out);
  linear_forward(layer, x.data(), rows, all_a.data(), {{0, rows, &bound_a}});
  EXPECT_GT(std::abs(all_a[8 * out] - mixed[8 * out]), 1e-3f);  // b's rows differ from a's
}

TEST(LoraRows, ConsecutiveSequencesWithOneAdapterShareASpan) {
  BoundLora a, b;
  const LoraRows spans = lora_rows({&a, &a, nullptr, &b, &a}, {2, 3, 4, 1, 2});
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[0].begin, 0);
  EXPECT_EQ(spans[0].end, 5);
  EXPECT_EQ(spans[0].lora, &a);
  EXPECT_EQ(spans[1].begin, 9);
  EXPECT_EQ(spans[1].lora, &b);
  EXPECT_EQ(spans[2].begin, 10);
  EXPECT_EQ(spans[2].end, 12);
  EXPECT_TRUE(lora_rows({}, {3, 4}).empty());
  EXPECT_EQ(lora_rows({&b}, {3, 4}).size(), 1u);  // one adapter for every sequence
  EXPECT_THROW(lora_rows({&a, &b}, {1, 2, 3}), Error);
}

TEST(Linear, Bf16WeightsStayWithinRoundingOfF32) {
  // bf16 keeps 8 bits of mantissa: each product is off by at most ~2^-8 relative, and the sum of
  // `in` such products by ~2^-8 · sqrt(in) · |x||w| typical. LoRA (side path and merged) works the
  // same way on bf16 layers.
  const int64_t in = 64, out = 16, rows = 4;
  Linear f32 = random_linear("model.layers.0.self_attn.q_proj", in, out, 61);
  Linear bf16 = f32;
  convert_to_bf16(bf16);
  EXPECT_TRUE(bf16.weight.empty());
  EXPECT_TRUE(bf16.has_weight());
  const auto x = random_values(rows * in, 62, 0.5f);
  LoraMap lora;
  lora[f32.name] = {random_delta(in, out, 4, 0.5f, 63)};
  std::vector<float> y32(rows * out), y16(rows * out), merged(rows * out);
  const BoundLora bound = bind_to_layer(f32, lora);
  bind_to_layer(bf16, lora);
  linear_forward(f32, x.data(), rows, y32.data(), {{0, rows, &bound}});
  linear_forward(bf16, x.data(), rows, y16.data(), {{0, rows, &bound}});
  expect_near(y16, y32, 0.05f);  // |y| ~ 0.5·0.5·sqrt(64) = 2; 2^-8·2·sqrt(64)/sqrt(3) ≈ 0.04
  merge_lora_into(bf16, lora);
  EXPECT_TRUE(bf16.weight.empty());  // still bf16 after merging
  linear_forward(bf16, x.data(), rows, merged.data());
  expect_near(merged, y32, 0.05f);
  EXPECT_EQ(weight_f32(bf16).size(), static_cast<size_t>(in * out));
}

TEST(Linear, LayersWithoutDeltasAreUntouched) {
  Linear layer = random_linear("decoder.block.0.layer.2.DenseReluDense.wo", 4, 3, 5);
  const auto before = layer.weight;
  LoraMap lora;
  lora["some.other.layer"] = {random_delta(4, 3, 1, 1.0f, 7)};
  merge_lora_into(layer, lora);
  EXPECT_EQ(layer.weight, before);
  EXPECT_EQ(bind_to_layer(layer, lora).deltas(0), nullptr);
}

TEST(LinearMalformed, DeltaShapeMismatchNamesTheLayer) {
  Linear layer = random_linear("encoder.block.1.layer.1.DenseReluDense.wi", 8, 6, 2);
  LoraMap lora;
  lora[layer.name] = {random_delta(7, 6, 2, 1.0f, 3)};
  try {
    bind_to_layer(layer, lora);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(layer.name), std::string::npos) << e.what();
  }
  EXPECT_THROW(merge_lora_into(layer, lora), Error);
}

AttentionLayer random_attention(int64_t d, int64_t heads, int64_t kv_heads, int64_t dh,
                                unsigned seed) {
  AttentionLayer a;
  a.q = random_linear("q", d, heads * dh, seed);
  a.k = random_linear("k", d, kv_heads * dh, seed + 1);
  a.v = random_linear("v", d, kv_heads * dh, seed + 2);
  a.o = random_linear("o", heads * dh, d, seed + 3);
  a.n_heads = heads;
  a.n_kv_heads = kv_heads;
  a.head_dim = dh;
  a.score_scale = 0.7f;
  return a;
}

TEST(Attention, CachedDecodingEqualsFullCausalPass) {
  const int64_t d = 16, batch = 2, len = 6;
  const AttentionLayer layer = random_attention(d, 4, 4, 4, 11);
  RelativePositionBias rel{random_values(8 * 4, 12, 0.5f), 8, 20, 4, false};
  const auto x = random_values(batch * len * d, 13, 0.5f);

  KvCache full;
  full.reset(batch, len, layer.kv_dim());
  append_kv(layer, x.data(), batch, len, full);
  const auto bias = relative_position_bias(rel, len, len, 0);
  std::vector<float> expected(batch * len * d);
  attention_forward(layer, x.data(), batch, len, full,
                    AttentionMask{.causal = true, .bias = bias.data()}, expected.data());

  KvCache cache;
  cache.reset(batch, len, layer.kv_dim());
  std::vector<float> step_x(batch * d), step_y(batch * d);
  for (int64_t t = 0; t < len; ++t) {
    for (int64_t b = 0; b < batch; ++b) std::copy_n(&x[(b * len + t) * d], d, &step_x[b * d]);
    append_kv(layer, step_x.data(), batch, 1, cache);
    const auto step_bias = relative_position_bias(rel, 1, t + 1, t);
    attention_forward(layer, step_x.data(), batch, 1, cache,
                      AttentionMask{.causal = true, .q_pos0 = t, .bias = step_bias.data()},
                      step_y.data());
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < d; ++i)
        EXPECT_NEAR(step_y[b * d + i], expected[(b * len + t) * d + i], 1e-5f);
  }
}

// A packed batch of sequences of different lengths (padding left or right, as generation and
// scoring pad) gives each sequence what it gets alone. The large case takes the BLAS path of
// attention, the small one the loop path; decoding below compares the two paths directly.
void expect_packed_equals_alone(int64_t dh, std::vector<int64_t> lengths, bool left) {
  const int64_t heads = 2, d = heads * dh;
  const AttentionLayer layer = random_attention(d, heads, 1, dh, 41);
  RelativePositionBias rel{random_values(8 * heads, 42, 0.5f), 8, 20, heads, false};
  std::vector<std::vector<int32_t>> seqs;
  for (int64_t n : lengths) seqs.emplace_back(static_cast<size_t>(n), 1);
  const PaddedBatch padded = pad_batch(seqs, 0, left);
  const RaggedBatch rows = RaggedBatch::of(padded);
  const auto x = random_values(rows.rows * d, 43, 0.5f);
  KvCache cache;
  cache.reset(padded.batch, padded.len, layer.kv_dim());
  append_kv(layer, x.data(), rows, cache);
  const auto bias = relative_position_bias(rel, padded.len, padded.len, 0);
  std::vector<float> y(rows.rows * d);
  attention_forward(
      layer, x.data(), rows, cache,
      AttentionMask{.key_valid = padded.valid.data(), .causal = true, .bias = bias.data()},
      y.data());
  for (int64_t b = 0; b < padded.batch; ++b) {
    const int64_t n = lengths[b];
    const float* xb = &x[rows.row0[b] * d];
    KvCache alone;
    alone.reset(1, n, layer.kv_dim());
    append_kv(layer, xb, 1, n, alone);
    const auto bias_alone = relative_position_bias(rel, n, n, 0);
    std::vector<float> y_alone(n * d);
    attention_forward(layer, xb, 1, n, alone,
                      AttentionMask{.causal = true, .bias = bias_alone.data()}, y_alone.data());
    const std::vector<float> y_packed(y.begin() + rows.row0[b] * d,
                                      y.begin() + (rows.row0[b] + n) * d);
    expect_near(y_packed, y_alone, 1e-4f);
  }
}

TEST(Attention, PackedBatchEqualsEachSequenceAlone) {
  for (bool left : {false, true}) {
    expect_packed_equals_alone(4, {3, 6, 1}, left);     // loop path
    expect_packed_equals_alone(16, {90, 41, 7}, left);  // BLAS path (90·90·16 > 2^16)
  }
}

TEST(Attention, Bf16CacheStaysWithinRoundingOfF32Cache) {
  // Keys and values rounded to bf16 (2^-9 relative) move the scores by ~2^-8 of their size; these
  // random layers give scores of ±10 (sharp softmax), so outputs move by up to ~3 % of the
  // largest output. Both attention paths (loops for short queries, BLAS for long) read the cache.
  const int64_t heads = 2, dh = 16, d = heads * dh;
  const AttentionLayer layer = random_attention(d, heads, 1, dh, 71);
  for (int64_t len : {4, 90}) {
    const auto x = random_values(len * d, 72, 0.5f);
    std::vector<float> y32(len * d), y16(len * d);
    for (bool bf16 : {false, true}) {
      KvCache cache;
      cache.reset(1, len, layer.kv_dim(), bf16);
      EXPECT_EQ(cache.bf16(), bf16);
      append_kv(layer, x.data(), 1, len, cache);
      attention_forward(layer, x.data(), 1, len, cache, AttentionMask{.causal = true},
                        (bf16 ? y16 : y32).data());
    }
    float largest = 0.0f;
    for (float v : y32) largest = std::max(largest, std::abs(v));
    expect_near(y16, y32, 0.03f * largest);
  }
}

TEST(Attention, LoopPathEqualsBlasPath) {
  // A long causal pass (BLAS per head) against decoding it token by token (loops over heads).
  const int64_t heads = 2, dh = 16, d = heads * dh, len = 90;
  const AttentionLayer layer = random_attention(d, heads, 2, dh, 51);
  const auto x = random_values(len * d, 52, 0.5f);
  KvCache full, cache;
  full.reset(1, len, layer.kv_dim());
  append_kv(layer, x.data(), 1, len, full);
  std::vector<float> expected(len * d), step_y(d);
  attention_forward(layer, x.data(), 1, len, full, AttentionMask{.causal = true}, expected.data());
  cache.reset(1, len, layer.kv_dim());
  for (int64_t t = 0; t < len; ++t) {
    append_kv(layer, &x[t * d], 1, 1, cache);
    attention_forward(layer, &x[t * d], 1, 1, cache, AttentionMask{.causal = true, .q_pos0 = t},
                      step_y.data());
    for (int64_t i = 0; i < d; ++i) EXPECT_NEAR(step_y[i], expected[t * d + i], 1e-4f);
  }
}

// With a sliding window w (Gemma 3's local layers, Mistral), the query at position t sees what it
// would see if the sequence began at t - w + 1: in a long pass (BLAS path) and decoding token by
// token (loop path).
TEST(Attention, SlidingWindowEqualsTheLastWindowAlone) {
  const int64_t heads = 2, dh = 16, d = heads * dh, len = 90, window = 7;
  const AttentionLayer layer = random_attention(d, heads, 1, dh, 81);
  const auto x = random_values(len * d, 82, 0.5f);
  KvCache full, cache;
  full.reset(1, len, layer.kv_dim());
  append_kv(layer, x.data(), 1, len, full);
  std::vector<float> windowed(len * d), step_y(d), unwindowed(len * d);
  attention_forward(layer, x.data(), 1, len, full, AttentionMask{.causal = true, .window = window},
                    windowed.data());
  attention_forward(layer, x.data(), 1, len, full, AttentionMask{.causal = true},
                    unwindowed.data());
  cache.reset(1, len, layer.kv_dim());
  float changed = 0.0f;
  for (int64_t t = 0; t < len; ++t) {
    const int64_t first = std::max<int64_t>(0, t - window + 1), n = t - first + 1;
    KvCache alone;
    alone.reset(1, n, layer.kv_dim());
    append_kv(layer, &x[first * d], 1, n, alone);
    std::vector<float> y(n * d);
    attention_forward(layer, &x[first * d], 1, n, alone, AttentionMask{.causal = true}, y.data());
    append_kv(layer, &x[t * d], 1, 1, cache);
    attention_forward(layer, &x[t * d], 1, 1, cache,
                      AttentionMask{.causal = true, .q_pos0 = t, .window = window}, step_y.data());
    for (int64_t i = 0; i < d; ++i) {
      EXPECT_NEAR(windowed[t * d + i], y[(n - 1) * d + i], 1e-4f) << "t=" << t;
      EXPECT_NEAR(step_y[i], y[(n - 1) * d + i], 1e-4f) << "t=" << t;
      changed = std::max(changed, std::abs(windowed[t * d + i] - unwindowed[t * d + i]));
    }
  }
  EXPECT_GT(changed, 1e-2f);  // the window mattered
}

TEST(FeedForward, FusedGateUpEqualsSeparateProjections) {
  const int64_t d = 8, hidden = 12, rows = 3;
  FeedForward separate{.gated = true,
                       .act = Activation::Silu,
                       .gate = random_linear("gate", d, hidden, 91),
                       .up = random_linear("up", d, hidden, 92),
                       .down = random_linear("down", hidden, d, 93)};
  FeedForward fused = separate;  // Phi-3's gate_up_proj: gate rows, then up rows
  fused.fused_gate_up = true;
  fused.gate.out = 2 * hidden;
  fused.gate.weight.insert(fused.gate.weight.end(), separate.up.weight.begin(),
                           separate.up.weight.end());
  fused.up = Linear{};
  const auto x = random_values(rows * d, 94, 0.5f);
  std::vector<float> expected(rows * d), got(rows * d);
  feed_forward(separate, x.data(), rows, expected.data());
  feed_forward(fused, x.data(), rows, got.data());
  expect_near(got, expected, 1e-5f);
}

TEST(Attention, PaddedKeysAreIgnored) {
  const int64_t d = 8, len = 5;
  const AttentionLayer layer = random_attention(d, 2, 2, 4, 21);
  const auto x = random_values(len * d, 22, 0.5f);
  // Sequence of 3 real tokens + 2 padding vs the same 3 tokens alone.
  KvCache padded, alone;
  padded.reset(1, len, layer.kv_dim());
  append_kv(layer, x.data(), 1, len, padded);
  alone.reset(1, 3, layer.kv_dim());
  append_kv(layer, x.data(), 1, 3, alone);
  const std::vector<uint8_t> valid = {1, 1, 1, 0, 0};
  std::vector<float> y_padded(len * d), y_alone(3 * d);
  attention_forward(layer, x.data(), 1, len, padded, AttentionMask{.key_valid = valid.data()},
                    y_padded.data());
  attention_forward(layer, x.data(), 1, 3, alone, AttentionMask{}, y_alone.data());
  y_padded.resize(3 * d);
  expect_near(y_padded, y_alone, 1e-5f);
}

TEST(Attention, ReusedCacheZeroesTheStepsPaddingSlots) {
  // reset() keeps the storage of a cache of the same shape (no refill); write_kv must zero the
  // padding slots of a ragged step itself, or the previous contents (here NaN) reach attention
  // (p = 0 times NaN in the sum over V).
  const int64_t d = 8, len = 4;
  const AttentionLayer layer = random_attention(d, 2, 2, 4, 31);
  for (bool bf16 : {false, true}) {
    KvCache cache;
    cache.reset(2, len, layer.kv_dim(), bf16);
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> junk(static_cast<size_t>(2 * len * layer.kv_dim()), nan);
    write_kv(junk.data(), junk.data(), RaggedBatch::dense(2, len), cache);
    // Sequence 0: 2 real tokens then padding; sequence 1: padding then 3 tokens (left-padded).
    const PaddedBatch padded{
        .batch = 2, .len = len, .ids = {}, .valid = {1, 1, 0, 0, 0, 1, 1, 1}, .offsets = {0, 1}};
    const RaggedBatch rows = RaggedBatch::of(padded);
    cache.reset(2, len, layer.kv_dim(), bf16);
    const auto x = random_values(rows.rows * d, 32, 0.5f);
    append_kv(layer, x.data(), rows, cache);
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t s = 0; s < len; ++s) {
        const size_t at = static_cast<size_t>((b * len + s) * layer.kv_dim());
        const float k = bf16 ? bf16_to_f32(cache.k16[at]) : cache.k[at];
        const float v = bf16 ? bf16_to_f32(cache.v16[at]) : cache.v[at];
        if (padded.valid[b * len + s]) {
          EXPECT_FALSE(std::isnan(k) || std::isnan(v)) << "slot " << s << " of " << b;
        } else {
          EXPECT_EQ(k, 0.0f) << "padding slot " << s << " of sequence " << b << " bf16 " << bf16;
          EXPECT_EQ(v, 0.0f) << "padding slot " << s << " of sequence " << b << " bf16 " << bf16;
        }
      }
    std::vector<float> y(rows.rows * d);
    attention_forward(layer, x.data(), rows, cache, AttentionMask{.key_valid = padded.valid.data()},
                      y.data());
    for (float value : y) ASSERT_FALSE(std::isnan(value)) << "bf16 " << bf16;
  }
}

// Attention of a grouped-query layer and of the same layer with every key/value head repeated
// for its query heads; the two must agree.
void expect_grouped_equals_duplicated(int64_t heads, int64_t kv_heads, int64_t dh, int64_t len,
                                      bool bf16_cache) {
  const int64_t d = 12, group = heads / kv_heads;
  const AttentionLayer gqa = random_attention(d, heads, kv_heads, dh, 31);
  AttentionLayer full = gqa;
  full.n_kv_heads = heads;
  for (Linear* l : {&full.k, &full.v}) {
    const Linear& src = l == &full.k ? gqa.k : gqa.v;
    l->out = heads * dh;
    l->weight.clear();
    for (int64_t h = 0; h < heads; ++h) {
      const auto first = src.weight.begin() + (h / group) * dh * d;
      l->weight.insert(l->weight.end(), first, first + dh * d);
    }
  }
  const auto x = random_values(len * d, 32, 0.5f);
  std::vector<float> y_gqa(len * d), y_full(len * d);
  for (auto [layer, y] :
       {std::pair<const AttentionLayer*, std::vector<float>*>{&gqa, &y_gqa}, {&full, &y_full}}) {
    KvCache cache;
    cache.reset(1, len, layer->kv_dim(), bf16_cache);
    append_kv(*layer, x.data(), 1, len, cache);
    attention_forward(*layer, x.data(), 1, len, cache, AttentionMask{.causal = true}, y->data());
  }
  expect_near(y_gqa, y_full, 1e-5f);
}

TEST(Attention, GroupedQueryEqualsDuplicatedHeads) {
  expect_grouped_equals_duplicated(4, 2, 3, 4, false);
  // A bf16 cache on the loop path is read in place, one query head per unit, on the threads
  // side by side (6·40·40·32 multiply-adds): each head must find its own key/value head.
  expect_grouped_equals_duplicated(6, 2, 32, 40, true);
  expect_grouped_equals_duplicated(9, 3, 64, 16, true);
}

TEST(FeedForward, GatedIsActTimesUp) {
  FeedForward ff;
  ff.gated = true;
  ff.act = Activation::Relu;
  ff.gate = Linear{"g", 1, 2, {1.0f, -1.0f}, {}, -1, {}};
  ff.up = Linear{"u", 1, 2, {3.0f, 5.0f}, {}, -1, {}};
  ff.down = Linear{"d", 2, 1, {1.0f, 1.0f}, {}, -1, {}};
  const float x = 2.0f;
  float y = 0.0f;
  feed_forward(ff, &x, 1, &y);
  EXPECT_FLOAT_EQ(y, 2.0f * 6.0f);  // relu(2)·6 + relu(-2)·10
}

TEST(RelativePosition, BucketsMatchTransformers) {
  // T5Attention._relative_position_bucket on these relative positions (transformers 5.17).
  const std::vector<int64_t> rel = {-300, -129, -128, -127, -64, -40, -17, -16, -15,
                                    -9,   -8,   -7,   -1,   0,   1,   7,   8,   9,
                                    15,   16,   17,   40,   64,  127, 128, 300};
  struct Case {
    bool bidirectional;
    int64_t buckets, max_distance;
    std::vector<int64_t> expected;
  };
  const std::vector<Case> cases = {
      {true, 32, 128, {15, 15, 15, 15, 14, 12, 10, 10, 9,  8,  8,  7,  1,
                       0,  17, 23, 24, 24, 25, 26, 26, 28, 30, 31, 31, 31}},
      {false, 32, 128, {31, 31, 31, 31, 26, 23, 16, 16, 15, 9, 8, 7, 1,
                        0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 0, 0, 0}},
      {true, 16, 40, {7, 7, 7,  7,  7,  7,  6,  6,  6,  5,  5,  4,  1,
                      0, 9, 12, 13, 13, 14, 14, 14, 15, 15, 15, 15, 15}},
      {false, 8, 24, {7, 7, 7, 7, 7, 7, 7, 7, 6, 5, 5, 5, 1,
                      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
  };
  for (const Case& c : cases)
    for (size_t i = 0; i < rel.size(); ++i)
      EXPECT_EQ(relative_position_bucket(rel[i], c.bidirectional, c.buckets, c.max_distance),
                c.expected[i])
          << "relative position " << rel[i] << " buckets " << c.buckets;
}

}  // namespace
}  // namespace lorahub
