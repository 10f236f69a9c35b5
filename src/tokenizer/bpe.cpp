#include "tokenizer/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <filesystem>
#include <limits>

#include "core/error.h"
#include "core/mapped_file.h"

namespace lorahub {

// A compiled PCRE2 pattern; UTF + UCP so that \p{L}, \s and friends follow Unicode as the
// Rust/Oniguruma regexes of `tokenizers` do.
class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP, &err, &offset, nullptr);
    if (!code_) {
      std::array<PCRE2_UCHAR, 256> msg{};
      pcre2_get_error_message(err, msg.data(), msg.size());
      fail("{}: cannot compile regex '{}' at offset {}: {}", where, pattern, offset,
           reinterpret_cast<const char*>(msg.data()));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // best effort; the interpreter is the fallback
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches, left to right, as [begin, end) byte offsets.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const {
    std::vector<std::pair<size_t, size_t>> out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    size_t pos = 0;
    while (pos <= text.size()) {
      const int rc = pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), pos,
                                 0, md, nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        pcre2_match_data_free(md);
        fail("regex match failed with PCRE2 error {} (invalid UTF-8 in the input?)", rc);
      }
      const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      if (ov[1] == ov[0]) {  // empty match: skip one code point so that the loop advances
        pos = ov[0] + 1;
        while (pos < text.size() && (static_cast<uint8_t>(text[pos]) & 0xc0) == 0x80) ++pos;
        continue;
      }
      out.emplace_back(ov[0], ov[1]);
      pos = ov[1];
    }
    pcre2_match_data_free(md);
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
};

namespace {

// GPT-2's pattern, which ByteLevel(use_regex=true) applies.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

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

using Behavior = PreTokenizeStep::Behavior;

Behavior parse_behavior(const std::string& name, const std::string& where) {
  if (name == "Isolated") return Behavior::Isolated;
  if (name == "Removed") return Behavior::Removed;
  if (name == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (name == "MergedWithNext") return Behavior::MergedWithNext;
  if (name == "Contiguous") return Behavior::Contiguous;
  fail("{}: unknown split behavior '{}'", where, name);
}

// Escapes a literal for PCRE2 (\Q...\E would break on a literal "\E").
std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

// Appends the steps one pre_tokenizer JSON object describes.
void parse_pre_tokenizer(const nlohmann::json& j, const std::string& where,
                         std::vector<PreTokenizeStep>& steps) {
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    for (const auto& sub : j.at("pretokenizers")) parse_pre_tokenizer(sub, where, steps);
    return;
  }
  PreTokenizeStep step;
  if (type == "ByteLevel") {
    if (j.value("use_regex", true)) step.pattern = std::make_shared<Regex>(kGpt2Pattern, where);
    step.add_prefix_space = j.value("add_prefix_space", false);
  } else if (type == "Split") {
    const auto& p = j.at("pattern");
    const std::string pattern =
        p.contains("Regex") ? p.at("Regex").get<std::string>() : regex_escape(p.at("String"));
    step.pattern = std::make_shared<Regex>(pattern, where);
    step.behavior = parse_behavior(j.value("behavior", "Isolated"), where);
    step.invert = j.value("invert", false);
  } else if (type == "Digits") {
    step.pattern = std::make_shared<Regex>("[0-9]", where);  // Rust's is_ascii_digit
    step.behavior = j.value("individual_digits", false) ? Behavior::Isolated : Behavior::Contiguous;
  } else {
    fail("{}: pre_tokenizer type '{}' is not supported (ByteLevel, Split, Digits, Sequence are)",
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

}  // namespace

// ---------------------------------------------------------------------------------- loading

void BpeTokenizer::set_vocab(std::vector<std::string> tokens) {
  id_to_token_ = std::move(tokens);
  token_to_id_.reserve(id_to_token_.size());
  for (size_t i = 0; i < id_to_token_.size(); ++i)
    token_to_id_.emplace(id_to_token_[i], static_cast<int32_t>(i));
  is_special_.assign(id_to_token_.size(), false);
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
    }
    id_to_token_[t.id] = t.content;
    token_to_id_[t.content] = t.id;
    is_special_[t.id] = t.special;
  }
  // Longest first, so that split_added finds the leftmost-longest match by trying in order.
  std::stable_sort(added_.begin(), added_.end(), [](const auto& x, const auto& y) {
    return x.content.size() > y.content.size();
  });
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
  try {
    const auto& model = j.at("model");
    check(model.value("type", "BPE") == "BPE", "{}: model.type '{}' is not BPE", path,
          model.value("type", ""));
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
    t->ignore_merges_ = model.value("ignore_merges", false);
    if (model.contains("unk_token") && model.at("unk_token").is_string())
      t->unk_id_ = t->token_id(model.at("unk_token"));
    const auto& norm = j.value("normalizer", nlohmann::json());
    check(
        norm.is_null() || (norm.value("type", "") == "Sequence" && norm.at("normalizers").empty()),
        "{}: normalizer '{}' is not supported", path, norm.value("type", ""));
    if (!j.value("pre_tokenizer", nlohmann::json()).is_null())
      parse_pre_tokenizer(j.at("pre_tokenizer"), path, t->steps_);
    std::vector<AddedToken> added;
    for (const auto& a : j.value("added_tokens", nlohmann::json::array()))
      added.push_back({a.at("content"), a.at("id").get<int32_t>(), a.value("special", false)});
    t->set_added_tokens(std::move(added));
    t->parse_post_processor(j.value("post_processor", nlohmann::json()), path);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed tokenizer: {}", path, e.what());
  }
  return t;
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

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_gguf(const GgufFile& g) {
  const std::string where = g.path() + ": tokenizer.ggml";
  const std::string model = g.get_string("tokenizer.ggml.model");
  check(model == "gpt2", "{}.model is '{}'; only byte-level BPE ('gpt2') is supported", where,
        model);
  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  auto tokens = g.get_strings("tokenizer.ggml.tokens");
  check(!tokens.empty(), "{}.tokens is missing or empty", where);
  const auto types = g.get_ints("tokenizer.ggml.token_type");
  check(types.empty() || types.size() == tokens.size(),
        "{}.token_type has {} entries for {} tokens", where, types.size(), tokens.size());
  t->set_vocab(tokens);
  for (const auto& m : g.get_strings("tokenizer.ggml.merges")) {
    const auto space = m.find(' ', 1);
    check(space != std::string::npos, "{}.merges: '{}' has no space", where, m);
    t->add_merge(m.substr(0, space), m.substr(space + 1), where);
  }
  // As transformers' GGUF converter: ByteLevel with GPT-2's regex, control tokens (type 3) are
  // special added tokens, user-defined ones (type 4) plain added tokens.
  t->steps_.push_back({std::make_shared<Regex>(kGpt2Pattern, where)});
  std::vector<AddedToken> added;
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] == 3 || types[i] == 4)
      added.push_back({tokens[i], static_cast<int32_t>(i), types[i] == 3});
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
  if (g.get_bool("tokenizer.ggml.add_bos_token", false) && t->bos_id_ >= 0)
    t->prefix_ids_.push_back(t->bos_id_);
  if (g.get_bool("tokenizer.ggml.add_eos_token", false) && t->eos_id_ >= 0)
    t->suffix_ids_.push_back(t->eos_id_);
  t->chat_template_ = g.get_string("tokenizer.chat_template", nullptr).value_or("");
  return t;
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
    for (const auto& a : added_)  // longest first
      if (!a.content.empty() && text.substr(pos).starts_with(a.content)) {
        hit = &a;
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

std::vector<std::string> BpeTokenizer::pre_tokenize(std::string_view segment) const {
  std::vector<std::string> pieces{std::string(segment)};
  for (const auto& step : steps_) {
    std::vector<std::string> next;
    for (auto& p : pieces) {
      if (step.add_prefix_space && !p.starts_with(' ')) p.insert(0, " ");
      if (step.pattern)
        split_piece(step, p, next);
      else
        next.push_back(std::move(p));
    }
    pieces = std::move(next);
  }
  return pieces;
}

// Maps the piece's bytes to the byte-level alphabet and merges adjacent symbols, lowest merge
// rank first, until no pair has a merge.
void BpeTokenizer::bpe_piece(const std::string& piece, std::vector<int32_t>& out) const {
  std::string mapped;
  for (unsigned char b : piece) mapped += byte_alphabet()[b];
  if (ignore_merges_) {
    if (const int32_t id = token_id(mapped); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<int32_t> symbols;
  for (size_t i = 0; i < mapped.size();) {
    const size_t n = utf8_length(static_cast<uint8_t>(mapped[i]));
    const int32_t id = token_id(mapped.substr(i, n));
    check(id >= 0 || unk_id_ >= 0, "byte-level symbol '{}' is missing from the vocab",
          mapped.substr(i, n));
    symbols.push_back(id >= 0 ? id : unk_id_);
    i += n;
  }
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    size_t best = 0;
    int32_t merged = -1;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const uint64_t key =
          (static_cast<uint64_t>(symbols[i]) << 32) | static_cast<uint32_t>(symbols[i + 1]);
      const auto it = merges_.find(key);
      if (it != merges_.end() && it->second.rank < best_rank) {
        best_rank = it->second.rank;
        best = i;
        merged = it->second.result;
      }
    }
    if (merged < 0) break;
    symbols[best] = merged;
    symbols.erase(symbols.begin() + best + 1);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special) const {
  std::vector<int32_t> ids;
  if (add_special) ids = prefix_ids_;
  std::vector<const AddedToken*> matched;
  const auto segments = split_added(text, matched);
  for (size_t i = 0; i < segments.size(); ++i) {
    if (!segments[i].empty())
      for (const auto& piece : pre_tokenize(segments[i])) bpe_piece(piece, ids);
    if (i < matched.size()) ids.push_back(matched[i]->id);
  }
  if (add_special) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int32_t>& ids, bool skip_special) const {
  const auto& inverse = byte_alphabet_inverse();
  std::string out;
  for (int32_t id : ids) {
    const std::string& tok = token(id);
    if (is_special_[id]) {
      if (!skip_special) out += tok;
      continue;
    }
    if (std::any_of(added_.begin(), added_.end(), [&](const auto& a) { return a.id == id; })) {
      out += tok;  // added tokens are literal text, not byte-level symbols
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
  return out;
}

// ---------------------------------------------------------------------------------- chat

std::string BpeTokenizer::apply_chat_template(const std::string& user) const {
  check(!chat_template_.empty(),
        "this tokenizer has no chat template (only instruct models have one)");
  return render_chatml_user_turn(chat_template_, user);
}

std::string render_chatml_user_turn(const std::string& chat_template, const std::string& user) {
  check(chat_template.find("<|im_start|>") != std::string::npos,
        "chat template is not ChatML (<|im_start|>...); only ChatML templates are supported");
  // A default system turn is written literally in the template, e.g. SmolLM2's
  // '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, ...<|im_end|>\n'. Jinja
  // string literals may spell the newline as "\n"; unescape it.
  std::string system;
  const std::string open = "<|im_start|>system";
  if (const auto b = chat_template.find(open); b != std::string::npos) {
    const auto e = chat_template.find("<|im_end|>", b);
    const std::string raw = chat_template.substr(b + open.size(), e - b - open.size());
    std::string body;
    for (size_t i = 0; i < raw.size(); ++i) {
      const bool escaped_newline = raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == 'n';
      body += escaped_newline ? '\n' : raw[i];
      i += escaped_newline;
    }
    // Templates that take the system text from the messages (no literal text) have none here.
    if (e != std::string::npos && body.size() > 1 && body[0] == '\n' &&
        body.find_first_of("{}'\"+") == std::string::npos)
      system = open + body + "<|im_end|>\n";
  }
  return system + "<|im_start|>user\n" + user + "<|im_end|>\n<|im_start|>assistant\n";
}

}  // namespace lorahub
