#include "http/multipart.h"

#include "core/utf8.h"
#include "http/message.h"

namespace lorahub::http {
namespace {

[[noreturn]] void bad(std::string_view why) {
  throw Error(400, fmt::format("multipart body: {}", why));
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && !NoCase{}(a, b) && !NoCase{}(b, a);
}

// The parameter `key` of a header value like `form-data; name="file"; filename="a.txt"`
// (quoted or a bare token; "\x" in a quoted string stands for x).
std::optional<std::string> parameter(std::string_view value, std::string_view key) {
  size_t i = value.find(';');
  while (i != std::string_view::npos) {
    value.remove_prefix(i + 1);
    const size_t eq = value.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view name = trim(value.substr(0, eq));
    value = value.substr(eq + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    std::string parsed;
    if (!value.empty() && value.front() == '"') {
      size_t j = 1;
      for (; j < value.size() && value[j] != '"'; ++j) {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        parsed += value[j];
      }
      if (j >= value.size()) return std::nullopt;  // unterminated quote
      value.remove_prefix(j + 1);
    } else {
      const size_t end = value.find(';');
      parsed = std::string(trim(value.substr(0, end)));
      value = end == std::string_view::npos ? std::string_view() : value.substr(end);
    }
    if (iequals(name, key)) return parsed;
    i = value.find(';');
  }
  return std::nullopt;
}

void read_part_headers(std::string_view head, FormPart& part) {
  bool disposition = false;
  while (!head.empty()) {
    const size_t eol = head.find("\r\n");
    const std::string_view line = head.substr(0, eol);
    head = eol == std::string_view::npos ? std::string_view() : head.substr(eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) bad("a part header without ':'");
    const std::string_view name = trim(line.substr(0, colon));
    const std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "Content-Disposition")) {
      const std::string_view type = trim(value.substr(0, value.find(';')));
      if (!iequals(type, "form-data")) bad("a part is not form-data");
      const auto field = parameter(value, "name");
      if (!field) bad("a part has no name");
      part.name = *field;
      part.filename = parameter(value, "filename").value_or("");
      disposition = true;
    } else if (iequals(name, "Content-Type")) {
      part.content_type = std::string(value);
    }
  }
  if (!disposition) bad("a part has no Content-Disposition");
}

}  // namespace

std::vector<FormPart> parse_multipart(std::string_view content_type, std::string_view body,
                                      size_t max_parts) {
  const std::string_view type = trim(content_type.substr(0, content_type.find(';')));
  if (!iequals(type, "multipart/form-data")) bad("expected Content-Type multipart/form-data");
  const auto boundary = parameter(content_type, "boundary");
  if (!boundary || boundary->empty() || boundary->size() > 200) bad("no valid boundary");
  const std::string delimiter = "--" + *boundary;
  // The body opens with the first delimiter (a preamble before it is allowed and skipped).
  size_t pos = delimiter.size();
  if (!body.starts_with(delimiter)) {
    pos = body.find("\r\n" + delimiter);
    if (pos == std::string_view::npos) bad("the boundary does not occur");
    pos += delimiter.size() + 2;
  }
  const std::string next = "\r\n" + delimiter;
  std::vector<FormPart> parts;
  for (;;) {
    const std::string_view rest = body.substr(pos);
    if (rest.starts_with("--")) return parts;  // the closing delimiter
    if (!rest.starts_with("\r\n")) bad("a delimiter is not followed by a line break");
    pos += 2;
    const size_t content_end = body.find(next, pos);
    if (content_end == std::string_view::npos) bad("a part has no closing delimiter");
    const size_t head_end = body.substr(0, content_end).find("\r\n\r\n", pos);
    if (head_end == std::string_view::npos) bad("a part has no header block");
    FormPart part;
    read_part_headers(body.substr(pos, head_end - pos), part);
    part.content = body.substr(head_end + 4, content_end - head_end - 4);
    if (parts.size() >= max_parts) bad(fmt::format("more than {} parts", max_parts));
    parts.push_back(std::move(part));
    pos = content_end + next.size();
  }
}

}  // namespace lorahub::http
