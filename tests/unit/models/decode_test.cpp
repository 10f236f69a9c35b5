// The decoding loop on a scripted model whose tokens are byte strings we choose: EOS, stop
// strings (decoding ends there, text cut before them), max tokens, text that is valid UTF-8
// however the tokens split characters (streamed pieces == final text), and sampling.
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "core/utf8.h"
#include "models/batcher.h"
#include "models/decode.h"
#include "support/scripted_model.h"

namespace lorahub {
namespace {

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

// Pieces: 1 "a", 2 "\n", 3 "Q", 4 ":", 5 E2, 6 82, 7 AC (the three bytes of €), 8 BC, 9 "b".
const std::vector<std::string> kPieces = {"",     "a",    "\n",   "Q",    ":",
                                          "\xE2", "\x82", "\xAC", "\xBC", "b"};

struct DecodeRun {
  std::vector<Decoded> out;
  std::map<size_t, std::string> streamed;
  std::map<size_t, int> done_events;
};

DecodeRun run(ScriptedModel& model, const std::vector<int32_t>& which, DecodeOptions o) {
  DecodeRun r;
  o.on_event = [&](const StreamEvent& e) {
    EXPECT_TRUE(is_valid_utf8(e.text)) << "streamed piece of sequence " << e.sequence;
    r.streamed[e.sequence] += e.text;
    if (e.done) ++r.done_events[e.sequence];
    return true;
  };
  std::vector<std::vector<int32_t>> prompts;
  for (int32_t w : which) prompts.push_back({w});
  r.out = decode(model, prompts, o);
  return r;
}

TEST(Decode, EndsAtEosAndAtMaxTokens) {
  ScriptedModel model(kPieces, {{1, 9, 1}, {1, 1, 1, 1, 1, 1}});
  DecodeOptions o;
  o.max_new_tokens = 4;
  const DecodeRun r = run(model, {0, 1}, o);
  EXPECT_EQ(r.out[0].ids, (std::vector<int32_t>{1, 9, 1}));
  EXPECT_EQ(r.out[0].text, "aba");
  EXPECT_EQ(r.out[0].finish, FinishReason::kEos);
  EXPECT_EQ(r.out[1].ids.size(), 4u);
  EXPECT_EQ(r.out[1].finish, FinishReason::kLength);
  EXPECT_EQ(model.steps, 3);  // prefill gave token 1; three steps gave tokens 2-4
  for (size_t b : {0u, 1u}) {
    EXPECT_EQ(r.streamed.at(b), r.out[b].text);
    EXPECT_EQ(r.done_events.at(b), 1);
  }
}

// The timings a benchmark reads tokens/s from (generate --json) count what the batcher ran.
TEST(Decode, BatcherTimesItsPrefillsAndSteps) {
  ScriptedModel model(kPieces, {{1, 9, 1}, {1, 1, 1, 1, 1, 1}});
  ContinuousBatcher batcher(model);
  DecodeOptions o;
  o.max_new_tokens = 4;
  batcher.add({0}, nullptr, o);
  batcher.add({1}, nullptr, o);
  while (batcher.active() > 0) batcher.step();
  const DecodeTimings& t = batcher.timings();
  EXPECT_EQ(t.prefill_tokens, 2u);
  EXPECT_EQ(t.decode_steps, 3u);  // tokens 2-4 of both (step 3 gives sequence 0 its EOS)
  EXPECT_EQ(t.decode_rows, 6u);
  EXPECT_GT(t.prefill_seconds, 0.0);
  EXPECT_GT(t.decode_seconds, 0.0);
}

TEST(Decode, StopStringsEndDecodingAndAreCut) {
  // "a\n\nQ: a a ..." and "aQ:..." with BBH's stops: decoding ends at the stop, not at max.
  ScriptedModel model(kPieces, {{1, 2, 2, 3, 4, 1, 1, 1, 1, 1, 1, 1}, {1, 3, 4, 1, 1, 1, 1, 1}});
  DecodeOptions o;
  o.max_new_tokens = 12;
  o.stop = {"\n\n", "Q:"};
  const DecodeRun r = run(model, {0, 1}, o);
  EXPECT_EQ(r.out[0].text, "a");
  EXPECT_EQ(r.out[0].finish, FinishReason::kStop);
  EXPECT_EQ(r.out[0].ids, (std::vector<int32_t>{1, 2, 2}));
  EXPECT_EQ(r.out[1].text, "a");
  EXPECT_EQ(r.out[1].ids, (std::vector<int32_t>{1, 3, 4}));
  EXPECT_EQ(model.steps, 2);  // both stopped by their third token
  // The held-back "\n" and "Q" never reached the stream.
  EXPECT_EQ(r.streamed.at(0), "a");
  EXPECT_EQ(r.streamed.at(1), "a");
}

TEST(Decode, CancelledSequencesStopDecoding) {
  // Sequence 0 is cancelled by its third event, sequence 1 runs to max_new_tokens.
  ScriptedModel model(kPieces, {std::vector<int32_t>(40, 1), std::vector<int32_t>(40, 9)});
  DecodeOptions o;
  o.max_new_tokens = 30;
  std::map<size_t, int> events;
  std::map<size_t, FinishReason> last;
  o.on_event = [&](const StreamEvent& e) {
    if (e.done) last[e.sequence] = e.result->finish;
    return ++events[e.sequence] < 3 || e.sequence == 1;
  };
  std::vector<Decoded> out = decode(model, {{0}, {1}}, o);
  EXPECT_EQ(out[0].finish, FinishReason::kCancelled);
  EXPECT_EQ(out[0].ids.size(), 3u);
  EXPECT_EQ(events[0], 4);  // three tokens, then the one "cancelled" event
  EXPECT_EQ(last[0], FinishReason::kCancelled);
  EXPECT_EQ(out[1].ids.size(), 30u);
  EXPECT_EQ(model.steps, 29);

  // Once every row is cancelled the batch stops: two steps, not 29.
  model.steps = 0;
  events.clear();
  o.on_event = [&](const StreamEvent& e) { return ++events[e.sequence] < 3; };
  out = decode(model, {{0}, {1}}, o);
  EXPECT_EQ(model.steps, 2);
  EXPECT_EQ(out[1].finish, FinishReason::kCancelled);
}

TEST(Decode, HeldBackStopPrefixIsReleasedWhenItIsNotAStop) {
  ScriptedModel model(kPieces, {{1, 2, 1, 3, 1}});
  DecodeOptions o;
  o.stop = {"\n\n", "Q:"};
  const DecodeRun r = run(model, {0}, o);
  EXPECT_EQ(r.out[0].text, "a\naQa");
  EXPECT_EQ(r.out[0].finish, FinishReason::kEos);
  EXPECT_EQ(r.streamed.at(0), "a\naQa");
}

TEST(Decode, TextIsValidUtf8WhenTokensSplitCharacters) {
  // The euro sign split over three tokens; a lone continuation byte (the 0xBC of the crash
  // report); a generation cut by max tokens inside the euro sign; one stopped inside it.
  ScriptedModel model(kPieces, {{1, 5, 6, 7, 1}, {8, 1}, {1, 1, 1, 5, 6}, {5, 6, 2, 2, 1}});
  DecodeOptions o;
  o.max_new_tokens = 5;
  o.stop = {"\n\n"};
  const DecodeRun r = run(model, {0, 1, 2, 3}, o);
  EXPECT_EQ(r.out[0].text,
            "a\xE2\x82\xAC"
            "a");
  EXPECT_EQ(r.out[1].text, R + "a");
  EXPECT_EQ(r.out[2].text, "aaa" + R);
  EXPECT_EQ(r.out[2].finish, FinishReason::kLength);
  EXPECT_EQ(r.out[3].text, R);
  EXPECT_EQ(r.out[3].finish, FinishReason::kStop);
  for (size_t b = 0; b < 4; ++b) {
    EXPECT_TRUE(is_valid_utf8(r.out[b].text)) << b;
    EXPECT_EQ(r.streamed.at(b), r.out[b].text) << b;
  }
}

TEST(Decode, StreamHoldsBackAnUnfinishedCharacter) {
  const ByteTokenizer tokenizer(kPieces);
  TextStream stream(tokenizer, {});
  EXPECT_EQ(stream.push(1), "a");
  EXPECT_EQ(stream.push(5), "");
  EXPECT_EQ(stream.push(6), "");
  EXPECT_EQ(stream.push(7), "\xE2\x82\xAC");
  EXPECT_EQ(stream.push(8), R);  // can never complete: released at once
  EXPECT_EQ(stream.push(5), "");
  EXPECT_EQ(stream.finish(), R);
  EXPECT_EQ(stream.streamed(), stream.text());
}

// A model whose logits are fixed: token i has logit -i (0 excluded: never EOS here).
class FixedModel : public ScriptedModel {
 public:
  FixedModel() : ScriptedModel(kPieces, {{}}) {}
  std::unique_ptr<DecodeState> prefill(const std::vector<std::vector<int32_t>>& prompts, int,
                                       const SequenceLora&) const override {
    auto s = std::make_unique<ScriptState>();
    s->batch = static_cast<int64_t>(prompts.size());
    fill(*s);
    return s;
  }
  void decode_step(DecodeState& s, const std::vector<int32_t>&) const override { fill(s); }

 private:
  void fill(DecodeState& s) const {
    s.logits.clear();
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t i = 0; i < vocab_size(); ++i)
        s.logits.push_back(i == 0 ? -1e9f : -static_cast<float>(i));
  }
};

std::vector<int32_t> sampled(const SamplingOptions& s, int n = 200) {
  FixedModel model;
  DecodeOptions o;
  o.max_new_tokens = n;
  o.sampling = s;
  return decode(model, {{1}}, o)[0].ids;
}

TEST(Decode, SamplingIsSeededAndHonoursTopKAndTopP) {
  const SamplingOptions greedy;
  for (int32_t t : sampled(greedy, 5)) EXPECT_EQ(t, 1);
  SamplingOptions s{.temperature = 1.0f, .seed = 7};
  const auto a = sampled(s);
  EXPECT_EQ(a, sampled(s));  // same seed, same draw
  s.seed = 8;
  EXPECT_NE(a, sampled(s));
  EXPECT_GT(std::count_if(a.begin(), a.end(), [](int32_t t) { return t > 2; }), 0);
  s.top_k = 2;
  for (int32_t t : sampled(s)) EXPECT_TRUE(t == 1 || t == 2) << t;
  // p(1) = 0.63, p(1) + p(2) = 0.86 of the nine tokens: top_p 0.8 keeps tokens 1 and 2.
  s = {.temperature = 1.0f, .top_p = 0.8f, .seed = 3};
  const auto nucleus = sampled(s);
  for (int32_t t : nucleus) EXPECT_TRUE(t == 1 || t == 2) << t;
  EXPECT_GT(std::count(nucleus.begin(), nucleus.end(), 2), 0);
  s.top_p = 0.5f;  // token 1 alone reaches it
  for (int32_t t : sampled(s)) EXPECT_EQ(t, 1);
}

}  // namespace
}  // namespace lorahub
