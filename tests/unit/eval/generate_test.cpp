// Generation over many inputs with refill (eval/generate.h) on the scripted model, whose prompt
// "k" plays script k: every output equals decoding that input alone, a finished sequence is
// replaced by the next input at the next step (so one long answer does not hold a batch of
// finished ones), and finished rows are not fed to the model.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "eval/generate.h"
#include "support/scripted_model.h"

namespace lorahub {
namespace {

// Pieces: 1 "a", 2 "b". Script 1: 30 "a" then EOS (a rambling answer); script 2: "b", EOS.
ScriptedModel scripted() {
  return ScriptedModel({"", "a", "b"}, {{}, std::vector<int32_t>(30, 1), {2}});
}

// Ten inputs, 5 at a time; inputs 0 and 5 ramble (30 tokens), the others answer in one.
const std::vector<std::string> kInputs = {"1", "2", "2", "2", "2", "1", "2", "2", "2", "2"};

TEST(GenerateRefill, EachOutputEqualsDecodingItAlone) {
  ScriptedModel model = scripted();
  GenerateOptions options;
  options.decode.max_new_tokens = 64;
  options.batch_size = 5;
  size_t progress_calls = 0, last_done = 0;
  options.on_progress = [&](size_t done, size_t total) {
    EXPECT_EQ(total, kInputs.size());
    EXPECT_GT(done, last_done);
    last_done = done;
    ++progress_calls;
  };
  std::vector<std::string> streamed(kInputs.size());
  options.decode.on_event = [&](const StreamEvent& e) {
    streamed.at(e.sequence) += e.text;  // indexes the inputs, not the batcher's ids
    return true;
  };
  const std::vector<Decoded> out = generate_texts(model, kInputs, options);
  ASSERT_EQ(out.size(), kInputs.size());
  for (size_t i = 0; i < kInputs.size(); ++i) {
    ScriptedModel alone = scripted();
    GenerateOptions one;
    one.decode.max_new_tokens = 64;
    const Decoded expected = generate_texts(alone, {kInputs[i]}, one)[0];
    EXPECT_EQ(out[i].text, expected.text) << i;
    EXPECT_EQ(out[i].ids, expected.ids) << i;
    EXPECT_EQ(out[i].finish, FinishReason::kEos) << i;
    EXPECT_EQ(streamed[i], out[i].text) << i;
  }
  EXPECT_EQ(out[0].text, std::string(30, 'a'));
  EXPECT_EQ(out[1].text, "b");
  EXPECT_EQ(last_done, kInputs.size());
  EXPECT_GE(progress_calls, 2u);
}

TEST(GenerateRefill, FinishedSequencesAreReplacedAndNotFed) {
  ScriptedModel model = scripted();
  GenerateOptions options;
  options.decode.max_new_tokens = 64;
  options.batch_size = 5;
  generate_texts(model, kInputs, options);
  // In fixed batches of 5 each batch steps until its rambler ends: 2 x 30 steps. With refill
  // input 5 joins at the second step, when inputs 1-4 have ended, and both ramblers decode
  // side by side: 31 steps.
  EXPECT_EQ(model.steps, 31);
  // Only running rows are fed: each rambler 30 times (29 tokens after its first, and its EOS
  // step), each short answer once (its EOS step).
  EXPECT_EQ(model.rows_fed, 2 * 30 + 8 * 1);

  ScriptedModel single = scripted();
  options.batch_size = 1;  // one at a time: every input's steps in turn
  generate_texts(single, kInputs, options);
  EXPECT_EQ(single.steps, 2 * 30 + 8 * 1);
  EXPECT_EQ(single.rows_fed, single.steps);
}

}  // namespace
}  // namespace lorahub
