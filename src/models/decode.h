// The one decoding loop of every model: the model runs prefill and decode steps (model.h), the
// loop picks tokens (greedy, or sampling with temperature, top-k, top-p and a seed), ends each
// sequence at EOS, at a stop string or at max_new_tokens, and turns tokens into text that is
// valid UTF-8 always. Streaming gets each piece of text once it is final: bytes of an unfinished
// character, and text that may be the start of a stop string, are held back until the next
// token decides; at the end, bytes that never formed a character become U+FFFD, as
// transformers' decode does.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "models/model.h"

namespace lorahub {

struct SamplingOptions {
  float temperature = 0.0f;  // <= 0: greedy (argmax)
  int top_k = 0;             // keep the k most likely tokens (0 = all)
  float top_p = 1.0f;        // keep the smallest set of tokens whose probability reaches top_p
  uint64_t seed = 0;         // sequence i of a call draws from a generator seeded (seed, i)
};

struct Decoded;

// Streaming: one event per generated token (`text` = what became final with it, maybe empty)
// and one last event with done = true (token -1, the rest of the text).
struct StreamEvent {
  size_t sequence = 0;  // index into the prompts of the call (ContinuousBatcher: the id)
  int32_t token = -1;
  std::string_view text;
  bool done = false;
  const Decoded* result = nullptr;  // with done: the sequence's outcome
};

struct DecodeOptions {
  int max_new_tokens = 256;
  SamplingOptions sampling;
  // A sequence ends where its text first contains one of these; the text ends before it.
  std::vector<std::string> stop;
  // Returning false cancels the sequence (a client gone): it decodes no further, and a last
  // event (done, FinishReason::kCancelled) follows. A batch whose sequences all ended stops.
  std::function<bool(const StreamEvent&)> on_event;
};

enum class FinishReason { kEos, kStop, kLength, kCancelled };
const char* finish_reason_name(FinishReason reason);

// Where the time of a generation went, measured around the model's own calls (as llama.cpp's
// timings are): the prefill forwards and the decoding steps, each with the sampling of the
// tokens it yields. A benchmark reads tokens/s off these instead of process wall times.
struct DecodeTimings {
  double prefill_seconds = 0;
  size_t prefill_tokens = 0;  // prompt tokens of the prefilled sequences
  double decode_seconds = 0;
  size_t decode_steps = 0;  // calls of Model::decode_steps
  size_t decode_rows = 0;   // sequences stepped, summed over the steps (one token each)
};

struct Decoded {
  std::vector<int32_t> ids;  // generated tokens, without EOS (with the one completing a stop)
  std::string text;          // valid UTF-8, special tokens skipped, cut before a stop string
  FinishReason finish = FinishReason::kLength;
};

// Turns one sequence's growing token list into final text: tokens in, text pieces out. Used by
// decode(); public so that tests can feed token sequences that split characters.
class TextStream {
 public:
  TextStream(const Tokenizer& tokenizer, std::vector<std::string> stop);
  // Adds a token; returns the text that became final (valid UTF-8). Sets stopped() when the
  // text now holds a stop string.
  std::string push(int32_t token);
  // Ends the sequence: returns the rest of the text (incomplete bytes as U+FFFD).
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::vector<int32_t>& ids() const { return ids_; }
  const std::string& streamed() const { return streamed_; }  // all text returned so far
  // The sequence's text: to_valid_utf8(decode(ids)), cut before a stop string. Equals
  // streamed() after finish() whenever decoding a longer sequence extends the text of a shorter
  // one (always for byte-level BPE; SentencePiece's joining rules could in principle differ).
  std::string text() const;

 private:
  std::string take(size_t end);
  size_t held_for_stop(std::string_view raw) const;

  const Tokenizer& tokenizer_;
  std::vector<std::string> stop_;
  std::vector<int32_t> ids_;
  std::string raw_;     // decoded bytes (cut before a stop string once stopped)
  size_t emitted_ = 0;  // bytes of raw_ already turned into text
  std::string streamed_;
  bool stopped_ = false;
};

// One sequence being decoded: picks its tokens from the logits of each step, ends it at EOS, a
// stop string or max_new_tokens, and reports its text through options.on_event. Shared by
// decode() and the continuous batcher (models/batcher.h).
class SequenceDecoder {
 public:
  SequenceDecoder(const Model& model, const DecodeOptions& options, size_t sequence,
                  uint64_t rng_stream);
  // Takes the next token from logits z[vocab]; returns it when it is to be fed to the model,
  // or -1 when the sequence has ended (result() is final).
  int32_t advance(const float* z);
  // Ends the sequence now (a cancelled request).
  void cancel() { end(FinishReason::kCancelled); }
  bool done() const { return done_; }
  const Decoded& result() const { return result_; }

 private:
  bool emit(int32_t token, const std::string& text, bool done);  // false: the caller cancels
  void end(FinishReason reason);

  const Model& model_;
  const DecodeOptions& options_;
  size_t sequence_;
  TextStream stream_;
  std::mt19937_64 rng_;
  std::vector<int32_t> eos_;
  int64_t vocab_;
  bool done_ = false;
  Decoded result_;
};

// Decodes all prompts as one batch, each with its adapter (models/lora_delta.h).
std::vector<Decoded> decode(const Model& model, const std::vector<std::vector<int32_t>>& prompts,
                            const DecodeOptions& options, const SequenceLora& lora = {});

// The next token from logits z[vocab] under `sampling`.
int32_t pick_token(const float* z, int64_t vocab, const SamplingOptions& sampling,
                   std::mt19937_64& rng);

}  // namespace lorahub
