// The answer rule of every evaluation (lorahub bbh, lorahub generate --answer, scripts/demo.py):
// the answer is the generation up to the first stop sequence (lm-evaluation-harness's BBH
// convention, "\n\n" and "Q:"). A base decoder that has seen Q:/A: pairs in its prompt goes on
// to write the next question instead of ending with EOS. Every BBH target is one line, so
// stopping never shortens a correct answer. The stops end decoding (models/decode.h) instead of
// cutting the text afterwards, so no tokens are spent past the answer.
#pragma once
#include <string>
#include <vector>

#include "models/decode.h"

namespace lorahub {

inline const std::vector<std::string> kAnswerStops = {"\n\n", "Q:"};

// Greedy decoding of at most max_new_tokens, ended by the answer rule.
inline DecodeOptions answer_decode_options(int max_new_tokens) {
  DecodeOptions options;
  options.max_new_tokens = max_new_tokens;
  options.stop = kAnswerStops;
  return options;
}

}  // namespace lorahub
