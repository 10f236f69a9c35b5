#include "models/decode.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/utf8.h"

namespace lorahub {

const char* finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "?";
}

int32_t pick_token(const float* z, int64_t vocab, const SamplingOptions& s, std::mt19937_64& rng) {
  if (s.temperature <= 0.0f) return static_cast<int32_t>(std::max_element(z, z + vocab) - z);
  // transformers' order: temperature, then top-k, then top-p, then a draw.
  std::vector<std::pair<float, int32_t>> candidates(static_cast<size_t>(vocab));
  for (int64_t i = 0; i < vocab; ++i)
    candidates[i] = {z[i] / s.temperature, static_cast<int32_t>(i)};
  auto more_likely = [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  const size_t keep =
      s.top_k > 0 ? std::min<size_t>(s.top_k, candidates.size()) : candidates.size();
  std::partial_sort(candidates.begin(), candidates.begin() + keep, candidates.end(), more_likely);
  candidates.resize(keep);
  std::vector<double> p(candidates.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i)
    total += p[i] = std::exp(static_cast<double>(candidates[i].first - candidates[0].first));
  // Nucleus: the most likely tokens until their probability reaches top_p (at least one).
  size_t n = p.size();
  if (s.top_p < 1.0f) {
    double cumulative = 0;
    for (n = 0; n < p.size();) {
      cumulative += p[n++] / total;
      if (cumulative >= s.top_p) break;
    }
  }
  double kept = 0;
  for (size_t i = 0; i < n; ++i) kept += p[i];
  double u = std::uniform_real_distribution<double>(0.0, kept)(rng);
  for (size_t i = 0; i < n; ++i) {
    if (u < p[i]) return candidates[i].second;
    u -= p[i];
  }
  return candidates[n - 1].second;  // rounding left u at the very end
}

TextStream::TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop)
    : tokenizer_(tokenizer), stop_(std::move(stop)) {
  std::erase_if(stop_, [](const std::string& s) { return s.empty(); });
}

// The longest end of `raw` that begins one of the stop strings: it may become one.
size_t TextStream::held_for_stop(std::string_view raw) const {
  size_t held = 0;
  for (const std::string& stop : stop_)
    for (size_t k = std::min(stop.size() - 1, raw.size()); k > held; --k)
      if (raw.substr(raw.size() - k) == std::string_view(stop).substr(0, k)) {
        held = k;
        break;
      }
  return held;
}

std::string TextStream::take(size_t end) {
  if (end <= emitted_) return {};
  std::string piece = to_valid_utf8(std::string_view(raw_).substr(emitted_, end - emitted_));
  emitted_ = end;
  streamed_ += piece;
  return piece;
}

std::string TextStream::push(int32_t token) {
  check(!stopped_, "text stream: token after a stop string");
  ids_.push_back(token);
  // Decoding the whole sequence again (not token by token) keeps what tokenizers do across
  // token boundaries (SentencePiece's leading space, byte tokens joining into characters).
  raw_ = tokenizer_.decode(ids_);
  size_t stop_at = std::string::npos;
  for (const std::string& stop : stop_) stop_at = std::min(stop_at, raw_.find(stop));
  if (stop_at != std::string::npos) {
    raw_.resize(stop_at);
    stopped_ = true;
  }
  const size_t limit = raw_.size() - (stopped_ ? 0 : held_for_stop(raw_));
  return take(utf8_complete_prefix(std::string_view(raw_).substr(0, limit)));
}

std::string TextStream::finish() {
  return take(raw_.size());
}

std::string TextStream::text() const {
  return to_valid_utf8(raw_);
}

namespace {

std::mt19937_64 sequence_rng(uint64_t seed, size_t sequence) {
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32),
                    static_cast<uint32_t>(sequence)};
  return std::mt19937_64(seq);
}

}  // namespace

SequenceDecoder::SequenceDecoder(const Model& model, const DecodeOptions& options, size_t sequence,
                                 uint64_t rng_stream)
    : model_(model),
      options_(options),
      sequence_(sequence),
      stream_(model.tokenizer(), options.stop),
      rng_(sequence_rng(options.sampling.seed, rng_stream)),
      eos_(model.end_of_sequence_ids()),
      vocab_(model.vocab_size()) {
  if (options.max_new_tokens <= 0) end(FinishReason::kLength);
}

bool SequenceDecoder::emit(int32_t token, const std::string& text, bool done) {
  if (!options_.on_event) return true;
  return options_.on_event(StreamEvent{sequence_, token, text, done, done ? &result_ : nullptr});
}

void SequenceDecoder::end(FinishReason reason) {
  if (done_) return;
  done_ = true;
  const std::string rest = stream_.finish();
  result_ = {stream_.ids(), stream_.text(), reason};
  emit(-1, rest, true);
}

int32_t SequenceDecoder::advance(const float* z) {
  if (done_) return -1;
  const int32_t token = pick_token(z, vocab_, options_.sampling, rng_);
  if (std::find(eos_.begin(), eos_.end(), token) != eos_.end()) {
    end(FinishReason::kEos);
    return -1;
  }
  const bool wanted = emit(token, stream_.push(token), false);
  if (!wanted)
    end(FinishReason::kCancelled);
  else if (stream_.stopped())
    end(FinishReason::kStop);
  else if (stream_.ids().size() >= static_cast<size_t>(options_.max_new_tokens))
    end(FinishReason::kLength);
  return done_ ? -1 : token;
}

std::vector<Decoded> decode(const Model& model, const std::vector<std::vector<int32_t>>& prompts,
                            const DecodeOptions& options, const SequenceLora& lora) {
  std::vector<Decoded> out(prompts.size());
  if (prompts.empty() || options.max_new_tokens <= 0) return out;
  const int64_t vocab = model.vocab_size();
  std::vector<SequenceDecoder> sequences;
  sequences.reserve(prompts.size());
  for (size_t b = 0; b < prompts.size(); ++b) sequences.emplace_back(model, options, b, b);

  const std::unique_ptr<DecodeState> state = model.prefill(prompts, options.max_new_tokens, lora);
  check(state->logits.size() == prompts.size() * static_cast<size_t>(vocab),
        "decode: the model returned {} logits for {} sequences of {}", state->logits.size(),
        prompts.size(), vocab);
  std::vector<int32_t> next(prompts.size(), -1);  // -1: finished, left out of the step
  while (true) {
    size_t left = 0;
    for (size_t b = 0; b < prompts.size(); ++b) {
      const int32_t token = sequences[b].advance(state->logits.data() + b * vocab);
      next[b] = token;
      left += sequences[b].done() ? 0 : 1;
    }
    if (left == 0) break;
    model.decode_step(*state, next);
  }
  for (size_t b = 0; b < prompts.size(); ++b) out[b] = sequences[b].result();
  return out;
}

}  // namespace lorahub
