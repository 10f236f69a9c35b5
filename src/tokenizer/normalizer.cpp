#include "tokenizer/normalizer.h"

#include <utf8proc.h>

#include <cstdlib>

#include "core/error.h"
#include "tokenizer/regex.h"

namespace lorahub {

namespace {

void append_utf8(std::string& out, utf8proc_int32_t cp) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(cp, buf);
  out.append(reinterpret_cast<const char*>(buf), n);
}

// Rust's char::to_lowercase, which `tokenizers` applies per character: utf8proc's simple
// mapping plus the one full mapping that expands (U+0130 -> "i" + U+0307).
std::string lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  utf8proc_ssize_t left = static_cast<utf8proc_ssize_t>(text.size());
  while (left > 0) {
    utf8proc_int32_t cp = 0;
    const auto n = utf8proc_iterate(p, left, &cp);
    check(n > 0, "invalid UTF-8 in the text to normalize");
    if (cp == 0x130) {
      out += 'i';
      append_utf8(out, 0x307);
    } else {
      append_utf8(out, utf8proc_tolower(cp));
    }
    p += n;
    left -= n;
  }
  return out;
}

std::string replace_all(std::string_view text, const std::string& from, const std::string& to) {
  if (from.empty()) return std::string(text);
  std::string out;
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string_view::npos; pos = hit + from.size())
    out.append(text.substr(pos, hit - pos)).append(to);
  out.append(text.substr(pos));
  return out;
}

bool is_unicode_space(utf8proc_int32_t cp) {  // Rust's char::is_whitespace (White_Space)
  return (cp >= 0x9 && cp <= 0xd) || cp == 0x20 || cp == 0x85 || cp == 0xa0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 || cp == 0x2029 || cp == 0x202f ||
         cp == 0x205f || cp == 0x3000;
}

std::string strip(std::string_view text, bool left, bool right) {
  // Decode into code points with their byte offsets, trim White_Space at the chosen ends.
  std::vector<std::pair<size_t, utf8proc_int32_t>> cps;
  const auto* base = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  for (size_t off = 0; off < text.size();) {
    utf8proc_int32_t cp = 0;
    const auto n =
        utf8proc_iterate(base + off, static_cast<utf8proc_ssize_t>(text.size() - off), &cp);
    check(n > 0, "invalid UTF-8 in the text to normalize");
    cps.emplace_back(off, cp);
    off += n;
  }
  size_t b = 0, e = cps.size();
  while (left && b < e && is_unicode_space(cps[b].second)) ++b;
  while (right && e > b && is_unicode_space(cps[e - 1].second)) --e;
  const size_t begin = b < cps.size() ? cps[b].first : text.size();
  const size_t end = e < cps.size() ? cps[e].first : text.size();
  return std::string(text.substr(begin, end - begin));
}

}  // namespace

std::string utf8_normalize(std::string_view text, int options) {
  utf8proc_uint8_t* out = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                              static_cast<utf8proc_ssize_t>(text.size()), &out,
                              static_cast<utf8proc_option_t>(options | UTF8PROC_STABLE));
  check(n >= 0, "cannot normalize text: {}", utf8proc_errmsg(n));
  std::string s(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  std::free(out);
  return s;
}

Normalizer Normalizer::from_json(const nlohmann::json& j, const std::string& where) {
  Normalizer n;
  if (!j.is_null()) n.parse(j, where);
  return n;
}

void Normalizer::parse(const nlohmann::json& j, const std::string& where) {
  const std::string type = j.value("type", "");
  Step s{Step::Kind::Unicode};
  if (type == "Sequence") {
    for (const auto& sub : j.at("normalizers")) parse(sub, where);
    return;
  } else if (type == "NFC") {
    s.unicode_options = UTF8PROC_COMPOSE;
  } else if (type == "NFD") {
    s.unicode_options = UTF8PROC_DECOMPOSE;
  } else if (type == "NFKC") {
    s.unicode_options = UTF8PROC_COMPOSE | UTF8PROC_COMPAT;
  } else if (type == "NFKD") {
    s.unicode_options = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT;
  } else if (type == "Lowercase") {
    s.kind = Step::Kind::Lowercase;
  } else if (type == "Replace") {
    s.kind = Step::Kind::Replace;
    const auto& p = j.at("pattern");
    if (p.contains("Regex"))
      s.pattern = std::make_shared<Regex>(p.at("Regex").get<std::string>(), where);
    else
      s.from = p.at("String").get<std::string>();
    s.to = j.at("content").get<std::string>();
  } else if (type == "Prepend") {
    s.kind = Step::Kind::Prepend;
    s.to = j.at("prepend").get<std::string>();
  } else if (type == "Strip") {
    s.kind = Step::Kind::Strip;
    s.left = j.value("strip_left", true);
    s.right = j.value("strip_right", true);
  } else {
    fail(
        "{}: normalizer '{}' is not supported (NFC, NFD, NFKC, NFKD, Lowercase, Replace, "
        "Prepend, Strip, Sequence are)",
        where, type);
  }
  steps_.push_back(std::move(s));
}

void Normalizer::add_replace(std::string from, std::string to) {
  Step s{Step::Kind::Replace};
  s.from = std::move(from);
  s.to = std::move(to);
  steps_.push_back(std::move(s));
}

void Normalizer::add_prepend(std::string prefix) {
  Step s{Step::Kind::Prepend};
  s.to = std::move(prefix);
  steps_.push_back(std::move(s));
}

std::string Normalizer::apply(std::string_view text) const {
  std::string s(text);
  for (const auto& step : steps_) {
    switch (step.kind) {
      case Step::Kind::Unicode:
        s = utf8_normalize(s, step.unicode_options);
        break;
      case Step::Kind::Lowercase:
        s = lowercase(s);
        break;
      case Step::Kind::Replace:
        if (step.pattern) {
          std::string out;
          size_t pos = 0;
          for (auto [b, e] : step.pattern->find_all(s)) {
            out.append(s, pos, b - pos).append(step.to);
            pos = e;
          }
          s = out.append(s, pos);
        } else {
          s = replace_all(s, step.from, step.to);
        }
        break;
      case Step::Kind::Prepend:
        if (!s.empty()) s.insert(0, step.to);  // tokenizers prepends to non-empty text only
        break;
      case Step::Kind::Strip:
        s = strip(s, step.left, step.right);
        break;
    }
  }
  return s;
}

}  // namespace lorahub
