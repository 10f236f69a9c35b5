// lorahub's public C++ API: the one surface the CLI, the Python package (python/) and the
// OpenAI-compatible server (`lorahub serve`) are built on. Installed by `cmake --install`
// with a CMake package (`find_package(lorahub)`, target `lorahub::lorahub`).
//
// The model of use:
//   * a Model is loaded once and is immutable afterwards (merging adapters happens at load); it
//     is shared (std::shared_ptr<const Model>) by every thread and request;
//   * an Adapter is one LoRA (a PEFT module, or a composition of modules) and is immutable too;
//   * a Session is per request / per thread state: the adapter it runs with, and the caches and
//     scratch of its calls. N sessions with N adapters on one model, in N threads, give what N
//     separate processes give;
//   * a Batcher decodes many sequences, each with its own adapter, in shared steps (base
//     products once for all rows, the low-rank path per group of rows), sequences joining and
//     leaving between steps (continuous batching).
// Every failure is a lorahub::Error whose message names the file, tensor or field at fault.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lorahub/error.h"

namespace lorahub::api {

// ------------------------------------------------------------------------------ runtime

struct RuntimeOptions {
  int threads = 0;             // compute threads for OpenMP, oneDNN and BLAS (0 = all cores)
  bool tune_allocator = true;  // glibc malloc keeps large freed blocks (no page faults per call)
  bool spin_wait = true;       // OpenMP threads spin briefly between parallel regions
};
// Sets the process-wide compute settings. Call once before the first model; calling it again
// changes the thread count only. Every entry point calls it with defaults when nobody did.
void init_runtime(const RuntimeOptions& options = {});
// The engine version, e.g. "0.1.0+numerics.3": the release and the numerics revision (bumped
// with every change of computed numbers). Cached evaluation results are keyed by it.
std::string version();
// The SIMD paths this build takes on this CPU, one line: the loop clones the loader chose
// ("x86-64-v4 (clones)" in a portable build, "native" in a -march=native one) and the run-time
// choices of the AVX512-VNNI and AVX512-BF16 kernels.
std::string cpu_dispatch();

// Long work reports progress here: `what` is being done, `done` of `total` units. Returning
// false cancels the call, which then throws Cancelled.
using ProgressFn = std::function<bool(std::string_view what, size_t done, size_t total)>;
class Cancelled : public Error {
 public:
  Cancelled() : Error("cancelled") {}
};

// A bad value of one option: option() is the field at fault as the options struct names it
// ("method", "majority_sign", ...), so that a program can say where the value came from.
class OptionError : public Error {
 public:
  OptionError(std::string option, const std::string& what)
      : Error(what), option_(std::move(option)) {}
  const std::string& option() const { return option_; }

 private:
  std::string option_;
};

// A progress bar on stderr for command-line programs: a bar with ETA on a terminal, one plain
// line per update otherwise. update() fits a ProgressFn.
class ProgressBar {
 public:
  ProgressBar(std::string label, size_t total);
  ~ProgressBar();
  void update(size_t done, const std::string& detail = "");
  void finish(const std::string& detail = "");
  // Silences every bar of the process (e.g. a program that prints JSON on stdout).
  static void set_quiet(bool quiet);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ------------------------------------------------------------------------------ tokenizers

// A model's tokenizer on its own (no weights loaded): for checking tokenizers and prompts.
class Tokenizer {
 public:
  // A GGUF file, an HF model directory (spiece.model: SentencePiece, as T5; else tokenizer.json:
  // byte-level BPE) or a tokenizer.json file.
  static std::shared_ptr<const Tokenizer> load(const std::string& path);
  // special_tokens: those the HF tokenizer adds by default (T5: EOS; Llama: BOS if any).
  std::vector<int32_t> encode(const std::string& text, bool special_tokens = true) const;
  // The bytes the ids stand for, as the tokenizer joins them: not always valid UTF-8 (a
  // byte-level token may be part of a character; Model::decode repairs that).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special = true) const;
  // `user` as a user turn of the chat template plus the generation prompt, ready for encode()
  // with its default special tokens. Throws Error when the tokenizer has no template.
  std::string chat_prompt(const std::string& user) const;
  // The chat template rendered for `messages_json` (a JSON array of {"role", "content"}
  // objects; their keys' order is kept, as templates' tojson prints them), as transformers'
  // apply_chat_template(tokenize=False) does. template_source, when not "", is a Jinja template
  // used instead of the tokenizer's.
  std::string render_chat(const std::string& messages_json, bool add_generation_prompt = true,
                          const std::string& template_source = "") const;

  struct Impl;
  explicit Tokenizer(std::shared_ptr<const Impl> impl);

 private:
  std::shared_ptr<const Impl> impl_;
};

// ------------------------------------------------------------------------------ examples

// One row of an example file: an input, and the output expected for it (absent in files of
// inputs to generate for).
struct TextExample {
  std::string input;
  std::optional<std::string> output;
  size_t line = 0;  // 1-based line in the file, for messages
};
// A JSON Lines example file: {"input", "output"} or the reference's BBH rows {"context",
// "completion"}, one object per line; blank lines skipped. Throws Error naming file and line.
std::vector<TextExample> read_examples(const std::string& path);

// Percentage (0-100) of predictions equal to their targets as the reference compares them
// (both stripped, lower-cased, '.' removed). Throws Error when the sizes differ or are zero.
double exact_match_accuracy(const std::vector<std::string>& predictions,
                            const std::vector<std::string>& targets);
// The stop strings of the evaluation's answer rule ("\n\n", "Q:"): generation with them ends
// where lorahub bbh's predictions end.
std::vector<std::string> answer_stops();

// ------------------------------------------------------------------------------ models

class Adapter;

struct ModelOptions {
  bool bf16 = false;       // bf16 weights (the fast path) instead of f32 (the reference)
  bool int8 = false;       // int8 weights per output channel (quantized at load), int8 products
  bool quantized = false;  // GGUF: products in the file's quantized blocks
  std::vector<std::string> merge;  // adapter directories merged into the weights at load
  // Adapters (compositions, say) merged into the weights at load, after `merge`. A routed
  // adapter (ModuleSet::route) cannot be merged.
  std::vector<std::shared_ptr<const Adapter>> merge_adapters;
};

struct ChatMessage {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

class Model {
 public:
  // An HF model directory (config.json + safetensors + tokenizer) or a .gguf file.
  static std::shared_ptr<const Model> load(const std::string& path,
                                           const ModelOptions& options = {});

  const std::string& path() const;
  std::string architecture() const;  // "t5", "llama", "qwen2", "gemma3", ...
  bool is_encoder_decoder() const;
  std::vector<int32_t> encode(const std::string& text, bool special_tokens = true) const;
  std::string decode(const std::vector<int32_t>& ids) const;  // valid UTF-8, specials skipped
  // The prompt for a conversation from the model's chat template; throws Error when the model
  // has none.
  bool has_chat_template() const;
  std::string chat_prompt(const std::vector<ChatMessage>& messages,
                          bool add_generation_prompt = true) const;
  // `user` as one user turn plus the generation prompt (as Tokenizer::chat_prompt).
  std::string chat_prompt(const std::string& user) const;
  std::vector<std::string> lora_targets() const;  // names of the linear layers LoRA may target

  struct Impl;
  explicit Model(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// ------------------------------------------------------------------------------ adapters

class Adapter {
 public:
  // A PEFT adapter directory (adapter_config.json + adapter_model.safetensors or .bin), or a
  // llama.cpp GGUF LoRA (.gguf), whose tensor names base_model (the model's path) resolves.
  static std::shared_ptr<const Adapter> load(const std::string& path,
                                             const std::string& base_model = "");
  // Writes it as a PEFT adapter directory that peft.PeftModel.from_pretrained reads.
  void save(const std::string& dir) const;
  // Writes it as a llama.cpp GGUF LoRA file for the model at base_model (a GGUF file or HF
  // directory: its tensor names, Llama's q/k row order).
  void save_gguf(const std::string& path, const std::string& base_model) const;
  const std::string& name() const;  // the directory it came from, or "composition"
  std::string base_model() const;   // adapter_config.json's base_model_name_or_path
  // Whether it was made for the model at model_path, judged by name: base_model()'s last path
  // component agrees with the model's (case-insensitive, a suffix such as GGUF's "-Q8_0"
  // allowed), or base_model() is empty.
  bool made_for(const std::string& model_path) const;
  int64_t rank() const;
  std::vector<std::string> target_layers() const;  // the linear layers it changes

  struct Impl;
  explicit Adapter(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

struct ComposeOptions {
  std::string method = "lorahub";  // or PEFT's: linear, cat, svd, ties, dare_linear, ...
  std::optional<double> density;   // ties / dare / magnitude_prune
  std::string majority_sign = "total";
  int64_t svd_rank = 0;  // 0 = the largest module rank
  std::optional<double> svd_clamp;
  uint64_t seed = 0;  // DARE's drop masks
  // Testing: DARE's keep-masks from this safetensors file ('<layer>.lora_A.<i>',
  // '<layer>.lora_B.<i>' or '<layer>.delta.<i>' for module i) instead of the seeded draw.
  std::string drop_masks_file;
};
// Throws OptionError naming the field ("method", "majority_sign", ...) when the options do not
// fit the method (a density outside [0, 1] or missing, an unknown name, ...).
void validate(const ComposeOptions& options);

struct ArrowOptions {
  int64_t top_k = 3;         // modules mixed per token, at most the set's size
  double temperature = 1.0;  // of the softmax over the chosen modules' scores, > 0
};

struct ModuleSetOptions {
  bool bf16 = false;  // hold the module tensors as bf16 (with bf16 models)
  // Names that are not local directories are module ids on this lorahub hub ("" = the
  // LORAHUB_ENDPOINT environment variable; none set = ids are an error). Fetched once into
  // cache_dir ("" = the default cache).
  std::string hub_endpoint;
  std::string hub_token;
  std::string cache_dir;
  bool hub_ids = true;     // false: every name is a local path (no hub lookups)
  std::string base_model;  // the model's path, for reading GGUF LoRAs (tensor names, q/k order)
};

// A module list file: one adapter directory (or GGUF LoRA file) per line; blank lines and lines
// starting with '#' skipped; relative paths are relative to the list file's folder.
std::vector<std::string> read_module_list(const std::string& list_file);

// The pool LoraHub composes: adapters of one base model with equal keys and shapes.
class ModuleSet {
 public:
  // Throws Error for no modules, or naming the first module that differs from the first one.
  static ModuleSet load(const std::vector<std::string>& names,
                        const ModuleSetOptions& options = {});
  size_t size() const;
  const std::vector<std::string>& names() const;  // as given
  std::shared_ptr<const Adapter> module(size_t i) const;
  // w has one weight per module. Throws Error for a wrong count or non-finite weights.
  std::shared_ptr<const Adapter> compose(const std::vector<double>& w,
                                         const ComposeOptions& options = {}) const;
  // Arrow routing (PEFT's create_arrow_model): each token goes to the top_k modules by
  // |x . prototype|, mixed by a softmax at the temperature; with `general` (GenKnowSub), the
  // general modules' mean A and B are subtracted from each module first. The result runs as a
  // side path only: it cannot be merged or saved.
  std::shared_ptr<const Adapter> route(const ArrowOptions& options,
                                       const ModuleSet* general = nullptr) const;

  struct Impl;
  explicit ModuleSet(std::shared_ptr<const Impl> impl);
  const Impl& impl() const { return *impl_; }

 private:
  std::shared_ptr<const Impl> impl_;
};

// ------------------------------------------------------------------------------ sessions

// A row-major f32 matrix.
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;  // rows * cols
};
// Writes `text` to `path` through a temporary file renamed into place: a reader never sees a
// half-written file.
void write_file_atomic(const std::string& path, const std::string& text);
// Writes the matrices as f32 tensors [rows, cols] of a safetensors file, under their names.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Matrix>>& tensors);

struct ExampleScore {
  double loss_sum = 0.0;  // cross-entropy summed over the output's tokens
  int64_t tokens = 0;     // how many there were (mean = loss_sum / tokens)
};

// One piece of generated text that is final (valid UTF-8), or the end of a sequence.
struct TextEvent {
  size_t index = 0;       // which prompt of the call (Batcher: the sequence id)
  std::string_view text;  // may be empty
  bool done = false;      // last event of the sequence; finish_reason is set
  const char* finish_reason = "";
};
// Returning false cancels that sequence only (a disconnected client): it decodes no further
// and gets one last event (done, "cancelled"); the other sequences go on, and a batch whose
// sequences have all ended stops at once. To stop a whole Session::generate call, throw from the
// callback (e.g. Cancelled): generate rethrows it at once, decoding no other sequence further.
using StreamFn = std::function<bool(const TextEvent&)>;

struct GenerationOptions {
  int max_new_tokens = 256;
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::vector<std::string> stop;  // a sequence ends before the first of these in its text
  int batch_size = 10;            // prompts decoded together by Session::generate
  StreamFn on_text;
  ProgressFn on_progress;
};

struct Generation {
  std::string text;  // valid UTF-8, special tokens skipped, cut before a stop string
  std::vector<int32_t> ids;
  std::string finish_reason;  // "stop" (EOS or a stop string), "length", "cancelled"
  bool eos = false;           // "stop" because the model ended it (not a stop string)
  size_t prompt_tokens = 0;
};

// Where a generate call's time went, measured around the engine's own calls: the prefill
// forwards and the decoding steps (each with the picking of the tokens it yields), summed over the
// call. Tokens/s for benchmarks: generated tokens beyond each sequence's first (which comes from
// its prefill) per decode second.
struct GenerationTimings {
  double prefill_seconds = 0;
  size_t prefill_tokens = 0;  // prompt tokens prefilled
  double decode_seconds = 0;
  size_t decode_steps = 0;  // decoding steps (every running sequence advances one token)
  size_t decode_rows = 0;   // sequences stepped, summed over the steps
};

class Session {
 public:
  explicit Session(std::shared_ptr<const Model> model,
                   std::shared_ptr<const Adapter> adapter = nullptr);
  ~Session();
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;

  // Checks the adapter against the model (targets and shapes) and uses it from now on
  // (nullptr = the base model).
  void set_adapter(std::shared_ptr<const Adapter> adapter);
  const std::shared_ptr<const Adapter>& adapter() const;
  const Model& model() const;

  // Teacher-forced cross-entropy of each output given its input (the LoraHub loss's terms).
  // batch_size 0 = all in one batch. Throws Error when the lengths differ.
  std::vector<ExampleScore> score(const std::vector<std::string>& inputs,
                                  const std::vector<std::string>& outputs, int batch_size = 0);
  std::vector<Generation> generate(const std::vector<std::string>& prompts,
                                   const GenerationOptions& options = {},
                                   GenerationTimings* timings = nullptr);
  // The logits at each output token's position (what score()'s cross-entropy is taken of), one
  // matrix [output tokens, vocabulary] per example; for checking against other engines.
  std::vector<Matrix> label_logits(const std::vector<std::string>& inputs,
                                   const std::vector<std::string>& outputs, int batch_size = 0);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// Continuous batching: sequences, each with its own adapter and options, decode in shared
// steps; new sequences join at the next step, finished or cancelled ones leave. Not thread-safe:
// one thread drives step(), others hand it work through their own queue.
class Batcher {
 public:
  explicit Batcher(std::shared_ptr<const Model> model);
  ~Batcher();
  // Queues a prompt (already a full prompt: no chat template is applied); returns its id. Its
  // events go to options.on_text with index = the id.
  uint64_t add(const std::string& prompt, std::shared_ptr<const Adapter> adapter,
               const GenerationOptions& options);
  void cancel(uint64_t id);
  // Prefills the queued sequences, then decodes one token for every active one. Returns how many
  // sequences were in the step.
  size_t step();
  size_t active() const;  // queued + decoding

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// ------------------------------------------------------------------------------ learning

struct LearnStep {
  int evaluation = 0;  // 1-based
  std::vector<double> weights;
  double objective = 0.0;  // loss + regularization
  double loss = 0.0;
  double seconds = 0.0;  // since the search started, at the end of this evaluation
};

struct LearnOptions {
  int steps = 40;                    // evaluation budget
  std::string optimizer = "cobyla";  // cobyla (the reference's), cma-es, ...
  uint64_t seed = 42;
  double l1 = 0.05;                // the default regularization: l1 · mean |w|
  std::string loss = "reference";  // "reference" | "example-mean" (adapt/objective.h)
  int batch_size = 0;              // 0 = all examples in one batch
  ComposeOptions compose;
  // Replaces the L1 term when set (the reference's get_regular).
  std::function<double(const std::vector<double>& weights)> regularizer;
  // After every evaluation; returning false cancels (learn throws Cancelled).
  std::function<bool(const LearnStep&)> on_step;
};

struct LearnResult {
  std::vector<double> weights;  // the best evaluated weights
  double objective = 0.0;
  std::vector<LearnStep> history;
  std::shared_ptr<const Adapter> adapter;  // the modules composed with `weights`
  double seconds = 0.0;
};

// LoraHub learning: weights for `modules` that minimize the few-shot loss of the examples.
LearnResult learn(std::shared_ptr<const Model> model, const ModuleSet& modules,
                  const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
                  const LearnOptions& options = {});

// ------------------------------------------------------------------------------ files

struct ConvertOptions {
  std::string dtype = "keep";  // floating-point tensors to "f32", "f16" or "bf16" (as torch's
                               // .to(): round to nearest even), or "keep"
  std::string base_model;      // GGUF LoRAs: the model they are for (GGUF file or HF directory)
};
// Rewrites weights with lorahub's writers. src is a PEFT adapter directory (dst becomes one,
// loadable by PEFT), a llama.cpp GGUF LoRA (dst becomes a PEFT directory) or a weights file
// (.bin or .safetensors; dst is a .safetensors file). A dst ending in .gguf is written as a
// GGUF LoRA (f32) for base_model. Throws OptionError ("dtype", "base_model") for options that
// do not fit.
void convert(const std::string& src, const std::string& dst, const ConvertOptions& options = {});

struct TensorInfo {
  std::string name;
  std::string dtype;           // "F32", "BF16", ...; GGUF: the ggml type ("Q4_K", ...)
  std::vector<int64_t> shape;  // PyTorch order
  std::string sha256;          // of the bytes as stored, with InspectOptions::sha256
  std::string f32_sha256;      // GGUF with InspectOptions::f32_sha256: of the values as f32
};

struct InspectOptions {
  bool sha256 = false;
  bool f32_sha256 = false;  // GGUF only: hash each tensor dequantized to f32 (as gguf-py does)
};

struct Inspection {
  std::string kind;  // "safetensors", "torch", "gguf", "model" (HF directory), "adapter" (PEFT)
  std::vector<TensorInfo> tensors;
  std::string metadata_json = "{}";  // a JSON object: safetensors' header metadata, GGUF's
                                     // key/values (long arrays shortened to their head)
  std::string adapter_json;          // adapters: the PEFT config as a JSON object (+ "num_targets")
  std::optional<std::vector<int32_t>> end_of_generation_ids;  // GGUF models
};
// What a weights file (safetensors, torch .bin, GGUF), HF model directory or PEFT adapter
// directory holds.
Inspection inspect(const std::string& path, const InspectOptions& options = {});
// Every tensor of a GGUF file dequantized to f32, written to the safetensors file `out` (GGUF
// names, PyTorch-order shapes).
void dequantize_gguf(const std::string& path, const std::string& out);
// Whether `path` is a GGUF file (by its magic bytes).
bool is_gguf_file(const std::string& path);

// ------------------------------------------------------------------------------ hub

struct HubOptions {
  std::string endpoint;  // "" = LORAHUB_ENDPOINT, else an error
  std::string token;
  std::string cache_dir;  // "" = the default cache
};
// Downloads (once, cached by revision) the modules with these ids; returns their local dirs.
std::vector<std::string> hub_fetch(const std::vector<std::string>& ids,
                                   const HubOptions& options = {});
// Computes the module's retrieval embedding under `model` (the mean over the first 20 inputs of
// module_dir/examples.jsonl of the model's mean last hidden state, as `learn --select
// retrieval:K` compares modules) and writes it as module_dir/lorahub_embedding.json, naming the
// model by its SHA-256. Pushed with the module, it lets retrieval over a hub rank the module
// without downloading it. Returns the file's path.
std::string write_module_embedding(const Model& model, const std::string& module_dir);
// Pushes an adapter directory to the hub as `id` ("user/name"); returns the revision.
std::string hub_push(const std::string& dir, const std::string& id, const HubOptions& options);

}  // namespace lorahub::api

// ------------------------------------------------------------------------------ servers
// The module hub (server, maintenance, client) and the OpenAI-compatible server.
#include "lorahub/hub.h"
#include "lorahub/serve.h"
// Learning tasks (module pools, sampling, selection, weights.json): lorahub/learn.h.
#include "lorahub/learn.h"  // IWYU pragma: export
// The BBH evaluation protocol: lorahub/bbh.h.
#include "lorahub/bbh.h"  // IWYU pragma: export
