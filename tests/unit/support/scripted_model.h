// A model whose tokens are byte strings a test chooses and whose "forward" plays back scripted
// tokens (one-hot logits): the decoding loop's tests (decode_test.cpp), generation with refill
// (eval/generate_test.cpp) and the API's cancellation test drive it and count its decode steps
// and the rows they feed.
#pragma once
#include <gtest/gtest.h>
#include <memory>

#include <string>
#include <vector>

#include "models/model.h"

namespace lorahub {

// Token i decodes to pieces[i]; 0 is EOS (special, decodes to nothing). A text of decimal digits
// encodes to that one token ("2" -> {2}: the script it plays), any other text to {1}.
class ByteTokenizer : public Tokenizer {
 public:
  explicit ByteTokenizer(std::vector<std::string> pieces) : pieces_(std::move(pieces)) {}
  std::vector<int32_t> encode(std::string_view text, bool) const override {
    const bool number = !text.empty() && text.size() < 9 &&
                        text.find_first_not_of("0123456789") == std::string_view::npos;
    return {number ? std::stoi(std::string(text)) : 1};
  }
  std::string decode(const std::vector<int32_t>& ids, bool) const override {
    std::string out;
    for (int32_t id : ids) out += id == 0 ? "" : pieces_.at(id);
    return out;
  }
  int32_t eos_id() const override { return 0; }
  int32_t pad_id() const override { return 0; }
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }

 private:
  std::vector<std::string> pieces_;
};

struct ScriptState : DecodeState {
  int step = 0;
  std::vector<int32_t> which;  // each row's script
  std::unique_ptr<DecodeState> clone() const override {
    return std::make_unique<ScriptState>(*this);
  }
};

// Sequence b of a call emits scripts[prompt[b][0]] (then EOS); logits are one-hot.
class ScriptedModel : public Model {
 public:
  ScriptedModel(std::vector<std::string> pieces, std::vector<std::vector<int32_t>> scripts)
      : tok_(std::move(pieces)), scripts_(std::move(scripts)) {}
  std::string architecture() const override { return "scripted"; }
  bool is_encoder_decoder() const override { return false; }
  const Tokenizer& tokenizer() const override { return tok_; }
  Example make_example(const std::string&, const std::string&) const override { return {}; }
  std::vector<ExampleLoss> score(const std::vector<Example>&, const SequenceLora&) const override {
    return {};
  }
  std::unique_ptr<DecodeState> prefill(const std::vector<std::vector<int32_t>>& prompts, int,
                                       const SequenceLora&) const override {
    auto s = std::make_unique<ScriptState>();
    s->batch = static_cast<int64_t>(prompts.size());
    for (const auto& p : prompts) s->which.push_back(p.at(0));
    ++prefills;
    fill(*s);
    return s;
  }
  void decode_step(DecodeState& base, const std::vector<int32_t>& tokens) const override {
    decode_steps({&base}, tokens);
  }
  // One engine step over all states (counted once); a negative token is a finished row, not fed.
  void decode_steps(const std::vector<DecodeState*>& states,
                    const std::vector<int32_t>& tokens) const override {
    ++steps;
    size_t next = 0;
    for (DecodeState* base : states) {
      auto& s = dynamic_cast<ScriptState&>(*base);
      ASSERT_LE(next + static_cast<size_t>(s.batch), tokens.size());
      for (int64_t b = 0; b < s.batch; ++b) rows_fed += tokens[next + b] >= 0 ? 1 : 0;
      next += static_cast<size_t>(s.batch);
      ++s.step;
      fill(s);
    }
    ASSERT_EQ(next, tokens.size());
  }
  int64_t vocab_size() const override { return tok_.vocab_size(); }
  std::vector<int32_t> end_of_sequence_ids() const override { return {0}; }
  void merge_lora(const LoraMap&) override {}
  std::vector<std::pair<std::string, Tensor>> state_dict() const override { return {}; }
  mutable int steps = 0;     // engine steps (decode_steps calls)
  mutable int rows_fed = 0;  // rows of running sequences fed by them
  mutable int prefills = 0;

 protected:
  std::vector<const Linear*> lora_targets() const override { return {}; }

 private:
  void fill(ScriptState& s) const {
    const int64_t v = vocab_size();
    s.logits.assign(static_cast<size_t>(s.batch * v), 0.0f);
    for (int64_t b = 0; b < s.batch; ++b) {
      const auto& script = scripts_.at(s.which.at(b));
      const int32_t token = s.step < static_cast<int>(script.size()) ? script[s.step] : 0;
      s.logits[b * v + token] = 10.0f;
    }
  }
  ByteTokenizer tok_;
  std::vector<std::vector<int32_t>> scripts_;
};

}  // namespace lorahub
