#include "tokenizer/bpe.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <limits>
#include <queue>
#include <set>
#include <string_view>
#include <utility>

#include "core/error.h"
#include "core/mapped_file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/regex.h"

namespace lorahub {

namespace {

// GPT-2's pattern, which ByteLevel(use_regex=true) applies.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

constexpr const char* kSpmSpace = "\xe2\x96\x81";  // "▁" (U+2581), SentencePiece's space

// GPT-2's reversible byte -> code point table: printable Latin-1 bytes map to themselves, the
// others to U+0100 onwards, so every byte becomes a visible character.
const std::array<std::string, 256>& byte_alphabet() {
  static const std::array<std::string, 256> table = [] {
    std::array<std::string, 256> t;
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
      const int cp = printable ? b : next++;
      // Code points below U+0800 take one or two UTF-8 bytes.
      t[b] = cp < 0x80 ? std::string(1, static_cast<char>(cp))
                       : std::string{static_cast<char>(0xc0 | (cp >> 6)),
                                     static_cast<char>(0x80 | (cp & 0x3f))};
    }
    return t;
  }();
  return table;
}

const std::unordered_map<std::string, uint8_t>& byte_alphabet_inverse() {
  static const auto inverse = [] {
    std::unordered_map<std::string, uint8_t> m;
    for (int b = 0; b < 256; ++b) m[byte_alphabet()[b]] = static_cast<uint8_t>(b);
    return m;
  }();
  return inverse;
}

size_t utf8_length(uint8_t lead) {
  return lead < 0x80           ? 1
         : (lead >> 5) == 0x6  ? 2
         : (lead >> 4) == 0xe  ? 3
         : (lead >> 3) == 0x1e ? 4
                               : 1;
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
    s.replace(pos, from.size(), to);
  return s;
}

using Behavior = PreTokenizeStep::Behavior;

Behavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Isolated") return Behavior::Isolated;
  if (name == "Removed") return Behavior::Removed;
  if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::MergedWithNext;
  if (name == "Contiguous") return Behavior::Contiguous;
  fail("{}: unknown split behavior '{}'", where, name);
}

PreTokenizeStep::Prepend parse_prepend_scheme(const nlohmann::json& j, const std::string& where) {
  using P = PreTokenizeStep::Prepend;
  if (!j.contains("prepend_scheme"))  // tokenizers < 0.14: add_prefix_space
    return j.value("add_prefix_space", true) ? P::Always : P::Never;
  const std::string s = j.at("prepend_scheme");
  if (s == "always") return P::Always;
  if (s == "first") return P::First;
  if (s == "never") return P::Never;
  fail("{}: unknown Metaspace prepend_scheme '{}'", where, s);
}

// Appends the steps one pre_tokenizer JSON object describes; sets *byte_level for ByteLevel.
void parse_pre_tokenizer(const nlohmann::json& j, const std::string& where,
                         std::vector<PreTokenizeStep>& steps, bool* byte_level) {
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& sub : j.at("pretokenizers"))
      parse_pre_tokenizer(sub, where, steps, byte_level);
    return;
  }
  PreTokenizeStep step;
  if (type == "ByteLevel") {
    *byte_level = true;
    if (j.value("use_regex", true)) step.pattern = std::make_shared<Regex>(kGpt2Pattern, where);
    step.add_prefix_space = j.value("add_prefix_space", false);
  } else if (type == "Split") {
    const auto& p = j.at("pattern");
    const std::string pattern = p.contains("Regex")
                                    ? p.at("Regex").get<std::string>()
                                    : regex_escape(p.at("String").get<std::string>());
    step.pattern = std::make_shared<Regex>(pattern, where);
    step.behavior = parse_behavior(j.value("behavior", "Isolated"), where);
    step.invert = j.value("invert", false);
  } else if (type == "Digits") {
    step.pattern = std::make_shared<Regex>(R"(\p{N})", where);  // Rust's char::is_numeric
    step.behavior = j.value("individual_digits", false) ? Behavior::Isolated : Behavior::Contiguous;
  } else if (type == "Metaspace") {
    step.metaspace = j.value("replacement", std::string(kSpmSpace));
    check(!step.metaspace.empty(), "{}: Metaspace replacement is empty", where);
    step.prepend = parse_prepend_scheme(j, where);
    if (j.value("split", true)) {
      step.pattern = std::make_shared<Regex>(regex_escape(step.metaspace), where);
      step.behavior = Behavior::MergedWithNext;
    }
  } else {
    fail(
        "{}: pre_tokenizer type '{}' is not supported (ByteLevel, Split, Digits, Metaspace, "
        "Sequence are)",
        where, type);
  }
  steps.push_back(std::move(step));
}

// Splits `piece` by the step's matches, as tokenizers' NormalizedString::split does.
void split_piece(const PreTokenizeStep& step, std::string_view piece,
                 std::vector<std::string>& out) {
  struct Span {
    size_t begin, end;
    bool delimiter;
  };
  std::vector<Span> spans;
  size_t pos = 0;
  for (auto [b, e] : step.pattern->find_all(piece)) {
    if (b > pos) spans.push_back({pos, b, step.invert});
    spans.push_back({b, e, !step.invert});
    pos = e;
  }
  if (pos < piece.size()) spans.push_back({pos, piece.size(), step.invert});

  std::vector<std::pair<size_t, size_t>> parts;  // [begin, end) of the resulting pieces
  bool glue_next = false;
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[i];
    const bool extend =
        glue_next || (s.delimiter && step.behavior == Behavior::MergedWithPrevious) ||
        (s.delimiter && step.behavior == Behavior::Contiguous && i > 0 && spans[i - 1].delimiter);
    glue_next = s.delimiter && step.behavior == Behavior::MergedWithNext;
    if (s.delimiter && step.behavior == Behavior::Removed) continue;
    if (extend && !parts.empty())
      parts.back().second = s.end;
    else
      parts.emplace_back(s.begin, s.end);
  }
  for (auto [b, e] : parts) out.emplace_back(piece.substr(b, e - b));
}

std::string token_content(const nlohmann::json& v) {  // "<s>" or {"content": "<s>", ...}
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v.at("content").get<std::string>();
  return {};
}

// llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp, llm_tokenizer_bpe) by the name
// tokenizer.ggml.pre gives. Where llama.cpp spells a tokenizer.json regex differently only
// for std::regex (no (?i:), no \p{Lu}), llama.cpp's spelling is kept: it is the oracle for GGUF.
constexpr const char* kGpt2Regex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr const char* kLlama3Regex =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Regex =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekkenRegex =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4oRegex =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

bool is_llama3_pre(const std::string& pre) {
  return pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe" || pre == "falcon3" ||
         pre == "pixtral";
}

}  // namespace

std::vector<std::string> gguf_pre_tokenizer_regexes(const std::string& pre) {
  const auto any_of = [&](std::initializer_list<const char*> names) {
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return pre == n; });
  };
  if (is_llama3_pre(pre) || any_of({"dbrx", "smaug-bpe", "chatglm-bpe"})) return {kLlama3Regex};
  if (any_of({"qwen2", "stablelm2", "deepseek-r1-qwen", "megrez", "hunyuan", "grok-2"}))
    return {kQwen2Regex};
  if (any_of({"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"}))
    return {R"(\p{N})", kGpt2Regex};
  if (any_of({"gpt-2", "phi-2", "mpt", "olmo", "jais", "trillion", "jina-es", "jina-de",
              "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe"}))
    return {kGpt2Regex};
  if (pre == "falcon") return {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2Regex, "[0-9][0-9][0-9]"};
  if (pre == "tekken") return {kTekkenRegex};
  if (pre == "gpt-4o") return {kGpt4oRegex};
  if (any_of({"poro-chat", "bloom", "gpt3-finnish"})) return {R"( ?[^(\s|.,!?…。，、।۔،)]+)"};
  if (pre == "viking") return {R"( ?[^(\s|.,!?…。，、।۔،)]+)", R"(\p{N})"};
  if (pre == "default")
    return {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2Regex, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  return {};
}

// ---------------------------------------------------------------------------------- loading

void BpeTokenizer::set_vocab(std::vector<std::string> tokens) {
  id_to_token_ = std::move(tokens);
  token_to_id_.reserve(id_to_token_.size());
  for (size_t i = 0; i < id_to_token_.size(); ++i)
    token_to_id_.emplace(id_to_token_[i], static_cast<int32_t>(i));
  is_special_.assign(id_to_token_.size(), false);
  is_added_.assign(id_to_token_.size(), false);
}

void BpeTokenizer::find_byte_tokens() {
  for (int b = 0; b < 256; ++b) byte_token_[b] = token_id(fmt::format("<0x{:02X}>", b));
}

void BpeTokenizer::add_merge(const std::string& left, const std::string& right,
                             const std::string& where) {
  const int32_t a = token_id(left), b = token_id(right), merged = token_id(left + right);
  check(a >= 0 && b >= 0 && merged >= 0, "{}: merge '{} {}' uses a token missing from the vocab",
        where, left, right);
  const uint64_t key = (static_cast<uint64_t>(a) << 32) | static_cast<uint32_t>(b);
  merges_.emplace(key, Merge{static_cast<int32_t>(merges_.size()), merged});
}

void BpeTokenizer::set_added_tokens(std::vector<AddedToken> added) {
  added_ = std::move(added);
  for (const auto& t : added_) {
    check(t.id >= 0 && t.id < 1 << 30, "added token '{}' has invalid id {}", t.content, t.id);
    if (static_cast<size_t>(t.id) >= id_to_token_.size()) {
      id_to_token_.resize(t.id + 1);
      is_special_.resize(t.id + 1, false);
      is_added_.resize(t.id + 1, false);
    }
    id_to_token_[t.id] = t.content;
    token_to_id_[t.content] = t.id;
    is_special_[t.id] = t.special;
    is_added_[t.id] = true;
  }
  // Longest first within each first byte, so that split_added finds the leftmost-longest
  // match by trying in order.
  std::stable_sort(added_.begin(), added_.end(), [](const auto& x, const auto& y) {
    return x.content.size() > y.content.size();
  });
  for (auto& bucket : added_by_byte_) bucket.clear();
  for (const auto& a : added_)
    if (!a.content.empty()) added_by_byte_[static_cast<uint8_t>(a.content[0])].push_back(&a);
}

void BpeTokenizer::set_special_ids(const std::string& bos, const std::string& eos,
                                   const std::string& pad) {
  if (!bos.empty()) bos_id_ = token_id(bos);
  if (!eos.empty()) eos_id_ = token_id(eos);
  if (!pad.empty()) pad_id_ = token_id(pad);
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_tokenizer_json(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_text_file(path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: invalid JSON: {}", path, e.what());
  }
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  const auto null = nlohmann::json();
  try {
    const auto& model = j.at("model");
    check(model.value("type", "BPE") == "BPE", "{}: model.type '{}' is not supported (BPE is)",
          path, model.value("type", ""));
    std::vector<std::string> tokens;
    for (const auto& [tok, id] : model.at("vocab").items()) {
      const auto i = id.get<int64_t>();
      check(i >= 0 && i < (1 << 30), "{}: vocab entry '{}' has invalid id {}", path, tok, i);
      if (static_cast<size_t>(i) >= tokens.size()) tokens.resize(i + 1);
      tokens[i] = tok;
    }
    t->set_vocab(std::move(tokens));
    for (const auto& m : model.at("merges")) {
      if (m.is_array()) {
        t->add_merge(m.at(0), m.at(1), path);
      } else {
        const std::string s = m.get<std::string>();
        const auto space = s.find(' ', 1);
        check(space != std::string::npos, "{}: merge '{}' has no space", path, s);
        t->add_merge(s.substr(0, space), s.substr(space + 1), path);
      }
    }
    const auto flag = [&](const char* key) {
      return model.contains(key) && model.at(key).is_boolean() && model.at(key).get<bool>();
    };
    t->ignore_merges_ = flag("ignore_merges");
    t->byte_fallback_ = flag("byte_fallback");
    t->fuse_unk_ = flag("fuse_unk");
    if (model.contains("unk_token") && model.at("unk_token").is_string())
      t->unk_id_ = t->token_id(model.at("unk_token"));
    t->normalizer_ = Normalizer::from_json(j.contains("normalizer") ? j.at("normalizer") : null,
                                           path + ": normalizer");
    bool byte_level = false;
    if (j.contains("pre_tokenizer") && !j.at("pre_tokenizer").is_null())
      parse_pre_tokenizer(j.at("pre_tokenizer"), path, t->steps_, &byte_level);
    const auto& decoder = j.contains("decoder") ? j.at("decoder") : null;
    byte_level = byte_level || decoder.dump().find("\"ByteLevel\"") != std::string::npos;
    t->byte_level_ = byte_level;
    t->parse_decoder(decoder);
    t->find_byte_tokens();
    std::vector<AddedToken> added;
    for (const auto& a : j.value("added_tokens", nlohmann::json::array()))
      added.push_back({a.at("content"), a.at("id").get<int32_t>(), a.value("special", false)});
    t->set_added_tokens(std::move(added));
    t->parse_post_processor(j.contains("post_processor") ? j.at("post_processor") : null, path);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed tokenizer: {}", path, e.what());
  }
  return t;
}

// Decoding is mostly the inverse of the model; what the decoder adds is whether the space that
// SentencePiece-style tokenizers prepend is removed again (Strip(start=1), Metaspace).
void BpeTokenizer::parse_decoder(const nlohmann::json& j) {
  if (!j.is_object()) return;
  const std::string type = j.value("type", "");
  if (type == "Sequence" && j.contains("decoders") && j.at("decoders").is_array())
    for (const auto& d : j.at("decoders")) parse_decoder(d);
  if (type == "Strip" && j.value("start", 0) > 0) strip_leading_space_ = true;
  // Metaspace drops every "▁" of the first token (not only a leading one), as tokenizers does.
  if (type == "Metaspace" && parse_prepend_scheme(j, "decoder") != PreTokenizeStep::Prepend::Never)
    metaspace_first_token_ = true;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_hf_dir(const std::string& dir) {
  namespace fs = std::filesystem;
  auto t = from_tokenizer_json((fs::path(dir) / "tokenizer.json").string());
  const auto config_path = fs::path(dir) / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    try {
      const auto c = nlohmann::json::parse(read_text_file(config_path.string()));
      t->set_special_ids(token_content(c.value("bos_token", nlohmann::json())),
                         token_content(c.value("eos_token", nlohmann::json())),
                         token_content(c.value("pad_token", nlohmann::json())));
      if (c.contains("chat_template") && c.at("chat_template").is_string())
        t->chat_template_ = c.at("chat_template");
    } catch (const nlohmann::json::exception& e) {
      fail("{}: {}", config_path.string(), e.what());
    }
  }
  const auto jinja = fs::path(dir) / "chat_template.jinja";
  if (t->chat_template_.empty() && fs::exists(jinja)) t->chat_template_ = read_text_file(jinja);
  return t;
}

bool llama_cpp_ends_generation(std::string_view piece) {
  static const std::set<std::string_view> kEndOfTurn = {"<|eot_id|>",
                                                        "<|im_end|>",
                                                        "<|end|>",
                                                        "<|return|>",
                                                        "<|call|>",
                                                        "<|flush|>",
                                                        "<|calls|>",
                                                        "<end_of_turn>",
                                                        "<|endoftext|>",
                                                        "</s>",
                                                        "<|eom_id|>",
                                                        "<EOT>",
                                                        "_<EOT>",
                                                        "[EOT]",
                                                        "[EOS]",
                                                        "<|end_of_text|>",
                                                        "<end_of_utterance>",
                                                        "<eos>",
                                                        "<turn|>",
                                                        "<|tool_response>"};
  return kEndOfTurn.count(piece) > 0;
}

// GGUF token types (llama.cpp's llama_token_type).
enum GgufTokenType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kByte = 6 };

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_gguf(const GgufFile& g) {
  const std::string where = g.path() + ": tokenizer.ggml";
  const std::string model = g.get_string("tokenizer.ggml.model");
  check(model == "gpt2" || model == "llama",
        "{}.model is '{}'; byte-level BPE ('gpt2') and SentencePiece ('llama') are supported",
        where, model);
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  auto tokens = g.get_strings("tokenizer.ggml.tokens");
  check(!tokens.empty(), "{}.tokens is missing or empty", where);
  const auto types = g.get_ints("tokenizer.ggml.token_type");
  check(types.empty() || types.size() == tokens.size(),
        "{}.token_type has {} entries for {} tokens", where, types.size(), tokens.size());
  t->set_vocab(tokens);
  // Control and unknown tokens are special added tokens, user-defined ones plain added tokens:
  // llama.cpp matches all three in the text (with parse_special) before the model runs. It also
  // turns every token spelled like an end of turn into a control token, whatever the file says
  // (Qwen2.5's '</s>' is a normal token, which llama.cpp then matches whole in "a</s>").
  std::vector<AddedToken> added;
  for (size_t i = 0; i < types.size(); ++i) {
    const bool control = types[i] == kControl || llama_cpp_ends_generation(tokens[i]);
    if (control || types[i] == kUnknown || types[i] == kUserDefined)
      added.push_back({tokens[i], static_cast<int32_t>(i), control || types[i] == kUnknown});
  }
  t->set_added_tokens(std::move(added));
  const auto id_or_none = [&](const char* key) {
    const int64_t id = g.get_int(key, -1);
    check(id < static_cast<int64_t>(tokens.size()), "{}: {} = {} is outside the vocab", g.path(),
          key, id);
    return static_cast<int32_t>(id);
  };
  t->bos_id_ = id_or_none("tokenizer.ggml.bos_token_id");
  t->eos_id_ = id_or_none("tokenizer.ggml.eos_token_id");
  t->pad_id_ = id_or_none("tokenizer.ggml.padding_token_id");
  t->unk_id_ = id_or_none("tokenizer.ggml.unknown_token_id");
  const std::string pre = g.get_string("tokenizer.ggml.pre", nullptr).value_or("default");
  if (model == "gpt2")
    t->gguf_byte_level(g, where);
  else
    t->gguf_sentencepiece(g, where);
  // llama.cpp's defaults: BOS for SentencePiece vocabularies and Llama 3's, none otherwise.
  const bool bos_default = model == "llama" || is_llama3_pre(pre);
  if (g.get_bool("tokenizer.ggml.add_bos_token", bos_default) && t->bos_id_ >= 0)
    t->prefix_ids_.push_back(t->bos_id_);
  if (g.get_bool("tokenizer.ggml.add_eos_token", false) && t->eos_id_ >= 0)
    t->suffix_ids_.push_back(t->eos_id_);
  t->chat_template_ = g.get_string("tokenizer.chat_template", nullptr).value_or("");
  return t;
}

void BpeTokenizer::gguf_byte_level(const GgufFile& g, const std::string& where) {
  for (const auto& m : g.get_strings("tokenizer.ggml.merges")) {
    const auto space = m.find(' ', 1);
    check(space != std::string::npos, "{}.merges: '{}' has no space", where, m);
    add_merge(m.substr(0, space), m.substr(space + 1), where);
  }
  const std::string pre = g.get_string("tokenizer.ggml.pre", nullptr).value_or("default");
  const auto regexes = gguf_pre_tokenizer_regexes(pre);
  check(!regexes.empty(), "{}.pre '{}' is not a pre-tokenizer this build knows", where, pre);
  for (const auto& r : regexes) {
    PreTokenizeStep step;
    step.pattern = std::make_shared<Regex>(r, where + ".pre");
    steps_.push_back(std::move(step));
  }
  ignore_merges_ = is_llama3_pre(pre);
}

// SentencePiece vocabulary: pieces with scores, "▁" for spaces, <0xNN> byte pieces, and (by
// default) a space before the text, as llama.cpp's SPM tokenizer runs it.
void BpeTokenizer::gguf_sentencepiece(const GgufFile& g, const std::string& where) {
  const GgufKV* kv = g.find("tokenizer.ggml.scores");
  check(kv && kv->type == GgufValueType::Array && kv->value.is_array() &&
            kv->value.size() == id_to_token_.size(),
        "{}.scores is missing or does not have one score per token", where);
  scores_.reserve(kv->value.size());
  for (const auto& v : kv->value) {
    check(v.is_number(), "{}.scores holds a non-number", where);
    scores_.push_back(v.get<float>());
  }
  byte_level_ = false;
  byte_fallback_ = true;
  strip_leading_space_ = space_prefix_ = g.get_bool("tokenizer.ggml.add_space_prefix", true);
  bos_after_space_kept_ = true;
  normalizer_.add_replace(" ", kSpmSpace);
  find_byte_tokens();
}

// TemplateProcessing's single template: special tokens before and after "$A". ByteLevel's
// post-processor only trims offsets, which ids do not see.
void BpeTokenizer::parse_post_processor(const nlohmann::json& j, const std::string& where) {
  if (j.is_null()) return;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& p : j.at("processors")) parse_post_processor(p, where);
    return;
  }
  if (type == "ByteLevel") return;
  check(type == "TemplateProcessing", "{}: post_processor '{}' is not supported", where, type);
  bool seen_sequence = false;
  for (const auto& piece : j.at("single")) {
    if (piece.contains("Sequence")) {
      seen_sequence = true;
      continue;
    }
    const std::string tok = piece.at("SpecialToken").at("id");
    const auto& ids = j.at("special_tokens").at(tok).at("ids");
    for (const auto& id : ids) (seen_sequence ? suffix_ids_ : prefix_ids_).push_back(id);
  }
}

// ---------------------------------------------------------------------------------- encoding

int32_t BpeTokenizer::token_id(const std::string& token) const {
  const auto it = token_to_id_.find(token);
  return it == token_to_id_.end() ? -1 : it->second;
}

const std::string& BpeTokenizer::token(int32_t id) const {
  check(id >= 0 && static_cast<size_t>(id) < id_to_token_.size(),
        "token id {} is outside the vocab ({})", id, id_to_token_.size());
  return id_to_token_[id];
}

std::vector<std::string_view> BpeTokenizer::split_added(
    std::string_view text, std::vector<const AddedToken*>& matched) const {
  std::vector<std::string_view> segments;  // segments[i] precedes matched[i]; one more at the end
  size_t start = 0, pos = 0;
  while (pos < text.size() && !added_.empty()) {
    const AddedToken* hit = nullptr;
    for (const AddedToken* a : added_by_byte_[static_cast<uint8_t>(text[pos])])  // longest first
      if (text.substr(pos).starts_with(a->content)) {
        hit = a;
        break;
      }
    if (!hit) {
      ++pos;
      continue;
    }
    segments.push_back(text.substr(start, pos - start));
    matched.push_back(hit);
    pos += hit->content.size();
    start = pos;
  }
  segments.push_back(text.substr(start));
  return segments;
}

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view segment,
                                                    bool first_section) const {
  std::vector<std::string> pieces{std::string(segment)};
  for (const auto& step : steps_) {
    std::vector<std::string> next;
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string& p = pieces[i];
      if (step.add_prefix_space && !p.starts_with(' ')) p.insert(0, " ");
      if (!step.metaspace.empty()) {
        p = replace_all(std::move(p), " ", step.metaspace);
        const bool prepend =
            step.prepend == PreTokenizeStep::Prepend::Always ||
            (step.prepend == PreTokenizeStep::Prepend::First && first_section && i == 0);
        if (prepend && !p.starts_with(step.metaspace)) p.insert(0, step.metaspace);
      }
      if (step.pattern)
        split_piece(step, p, next);
      else
        next.push_back(std::move(p));
    }
    pieces = std::move(next);
  }
  return pieces;
}

// <0xNN> tokens for the bytes of `text` (SentencePiece byte fallback), unk where one is missing.
void BpeTokenizer::push_bytes(std::string_view text, std::vector<int32_t>& out) const {
  for (unsigned char b : text) {
    const int32_t id = byte_token_[b] >= 0 ? byte_token_[b] : unk_id_;
    check(id >= 0, "byte 0x{:02X} has no <0x{:02X}> token and the vocab no unknown token", b, b);
    out.push_back(id);
  }
}

// Merges adjacent symbols of one piece until no pair merges, best pair first (lowest merge rank,
// or highest score of the merged piece), leftmost on ties: the order of HF's BPE and of
// llama.cpp's SPM tokenizer, both of which run a priority queue of candidate pairs.
void BpeTokenizer::merge_piece(const std::string& raw, std::vector<int32_t>& out) const {
  std::string piece;
  if (byte_level_)
    for (unsigned char b : raw) piece += byte_alphabet()[b];
  else
    piece = raw;
  if (ignore_merges_) {
    if (const int32_t id = token_id(piece); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  struct Symbol {
    size_t begin, len;
    int32_t id;  // -1: a character outside the vocab (score mode: byte fallback at the end)
    int prev, next;
  };
  std::vector<Symbol> sym;
  const bool by_score = !scores_.empty();
  for (size_t i = 0; i < piece.size();) {
    const size_t n = std::min(utf8_length(static_cast<uint8_t>(piece[i])), piece.size() - i);
    int32_t id = token_id(piece.substr(i, n));
    if (id < 0 && !by_score) {
      const bool bytes =
          byte_fallback_ && std::all_of(piece.begin() + i, piece.begin() + i + n,
                                        [&](char c) { return byte_token_[uint8_t(c)] >= 0; });
      if (bytes) {
        for (size_t k = 0; k < n; ++k)
          sym.push_back({i + k, 1, byte_token_[uint8_t(piece[i + k])], 0, 0});
        i += n;
        continue;
      }
      check(unk_id_ >= 0, "symbol '{}' is missing from the vocab, which has no unknown token",
            piece.substr(i, n));
      id = unk_id_;
      if (fuse_unk_ && !sym.empty() && sym.back().id == unk_id_) {
        sym.back().len += n;
        i += n;
        continue;
      }
    }
    sym.push_back({i, n, id, 0, 0});
    i += n;
  }
  for (size_t i = 0; i < sym.size(); ++i) {
    sym[i].prev = static_cast<int>(i) - 1;
    sym[i].next = i + 1 < sym.size() ? static_cast<int>(i + 1) : -1;
  }
  struct Candidate {
    double priority;
    int left, right;
    size_t len;
    int32_t merged;
    bool operator<(const Candidate& o) const {  // max-heap: best priority, then leftmost
      return priority < o.priority || (priority == o.priority && left > o.left);
    }
  };
  std::priority_queue<Candidate> queue;
  const auto consider = [&](int l, int r) {
    if (l < 0 || r < 0) return;
    const Symbol &a = sym[l], &b = sym[r];
    if (by_score) {
      const int32_t id = token_id(piece.substr(a.begin, a.len + b.len));
      if (id >= 0) queue.push({scores_[id], l, r, a.len + b.len, id});
    } else if (a.id >= 0 && b.id >= 0) {
      const uint64_t key = (static_cast<uint64_t>(a.id) << 32) | static_cast<uint32_t>(b.id);
      const auto it = merges_.find(key);
      if (it != merges_.end())
        queue.push({-static_cast<double>(it->second.rank), l, r, a.len + b.len, it->second.result});
    }
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i)
    consider(static_cast<int>(i), static_cast<int>(i + 1));
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol &a = sym[c.left], &b = sym[c.right];
    if (a.len == 0 || b.len == 0 || a.next != c.right || a.len + b.len != c.len) continue;  // stale
    a.len += b.len;
    a.id = c.merged;
    b.len = 0;
    a.next = b.next;
    if (b.next >= 0) sym[b.next].prev = c.left;
    consider(a.prev, c.left);
    consider(c.left, a.next);
  }
  for (const Symbol& s : sym) {
    if (s.len == 0) continue;
    if (s.id >= 0)
      out.push_back(s.id);
    else
      push_bytes(std::string_view(piece).substr(s.begin, s.len), out);
  }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  if (add_special) ids = prefix_ids_;
  std::vector<const AddedToken*> matched;
  const auto segments = split_added(text, matched);
  for (size_t i = 0; i < segments.size(); ++i) {
    if (!segments[i].empty()) {
      const std::string normalized =
          normalizer_.apply(space_prefix_ ? " " + std::string(segments[i]) : segments[i]);
      for (const auto& piece : pre_tokenize(normalized, i == 0)) merge_piece(piece, ids);
    }
    if (i < matched.size()) ids.push_back(matched[i]->id);
  }
  if (add_special) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const auto& inverse = byte_alphabet_inverse();
  std::string out;
  bool first = true;
  for (int32_t id : ids) {
    const std::string& tok = token(id);
    if (is_special_[id] && skip_special) continue;
    const bool first_token = std::exchange(first, false);
    if (is_special_[id]) {
      out += tok;
      continue;
    }
    if (is_added_[id]) {
      out += tok;  // added tokens are literal text, not byte-level symbols
      continue;
    }
    if (!byte_level_) {
      const auto byte = std::find(byte_token_.begin(), byte_token_.end(), id);
      if (byte != byte_token_.end())
        out += static_cast<char>(byte - byte_token_.begin());
      else
        out += replace_all(tok, kSpmSpace, first_token && metaspace_first_token_ ? "" : " ");
      continue;
    }
    for (size_t i = 0; i < tok.size();) {
      const size_t n = utf8_length(static_cast<uint8_t>(tok[i]));
      const auto it = inverse.find(tok.substr(i, n));
      // A symbol outside the byte alphabet cannot come from the byte-level model; keep it.
      if (it == inverse.end())
        out += tok.substr(i, n);
      else
        out += static_cast<char>(it->second);
      i += n;
    }
  }
  // llama.cpp keeps the prefix space when the ids start with the BOS it removes.
  const bool after_bos = bos_after_space_kept_ && skip_special && !ids.empty() && ids[0] == bos_id_;
  if (strip_leading_space_ && !after_bos && out.starts_with(' ')) out.erase(0, 1);
  return out;
}

// ---------------------------------------------------------------------------------- chat

std::string BpeTokenizer::render_chat(const nlohmann::ordered_json& messages,
                                      bool add_generation_prompt,
                                      const std::string& template_source) const {
  const std::string& source = template_source.empty() ? chat_template_ : template_source;
  check(!source.empty(), "this tokenizer has no chat template (only instruct models have one)");
  const std::string bos = bos_id_ >= 0 ? id_to_token_[bos_id_] : "";
  const std::string eos = eos_id_ >= 0 ? id_to_token_[eos_id_] : "";
  return render_chat_template(source, messages, bos, eos, add_generation_prompt);
}

// One user turn and the generation prompt. A rendered BOS at the very start is dropped when
// encode() adds one itself, so that encoding the prompt gives apply_chat_template(
// tokenize=True)'s ids (one BOS, not two).
std::string BpeTokenizer::apply_chat_template(const std::string& user) const {
  std::string out =
      render_chat(nlohmann::ordered_json::array({{{"role", "user"}, {"content", user}}}), true);
  const std::string bos = bos_id_ >= 0 ? id_to_token_[bos_id_] : "";
  const bool adds_bos = !prefix_ids_.empty() && prefix_ids_.front() == bos_id_;
  if (adds_bos && !bos.empty() && out.starts_with(bos)) out.erase(0, bos.size());
  return out;
}

}  // namespace lorahub
