#include "hub/names.h"

#include <fmt/format.h>

#include <cctype>

#include "core/error.h"

namespace lorahub::hub {
namespace {

constexpr size_t kMaxNameLength = 96;
constexpr size_t kMaxPathLength = 512;
constexpr int kMaxPathDepth = 16;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, 120)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? std::string(1, c) : fmt::format("\\x{:02x}", u);
  }
  return out;
}

namespace {

// Path words of the Hugging Face Hub's URLs and of ours: a namespace named like one of them
// would make "/<namespace>/..." ambiguous with a route.
constexpr std::string_view kReservedUserNames[] = {
    "api",         "models", "datasets", "spaces", "docs",    "settings",      "login",
    "logout",      "join",   "new",      "search", "blog",    "organizations", "pricing",
    "collections", "papers", "static",   "assets", "resolve", "openapi.json"};

}  // namespace

std::string lower_ascii(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

void validate_user_name(std::string_view name) {
  validate_name(name, "user name");
  const std::string lower = lower_ascii(name);
  for (std::string_view reserved : kReservedUserNames)
    check(lower != reserved, "user name '{}' is reserved (it is a word of the hub's URLs)", name);
}

void validate_name(std::string_view name, std::string_view what) {
  check(!name.empty(), "{} is empty", what);
  check(name.size() <= kMaxNameLength, "{} '{}' is longer than {} characters", what,
        printable(name), kMaxNameLength);
  for (char c : name) {
    check(is_name_char(c), "{} '{}' may only contain letters, digits, '.', '_' and '-'", what,
          printable(name));
  }
  check(name.front() != '.' && name.front() != '-', "{} '{}' may not start with '.' or '-'", what,
        printable(name));
}

std::string validate_repo_id(std::string_view repo_id) {
  const size_t slash = repo_id.find('/');
  check(slash != std::string_view::npos, "repo id '{}' is not of the form user/name",
        printable(repo_id));
  const std::string_view user = repo_id.substr(0, slash);
  validate_user_name(user);
  validate_name(repo_id.substr(slash + 1), "repo name in repo id");
  return std::string(user);
}

void validate_file_path(std::string_view path) {
  check(!path.empty(), "file path is empty");
  check(path.size() <= kMaxPathLength, "file path '{}' is longer than {} characters",
        printable(path), kMaxPathLength);
  int depth = 0;
  size_t start = 0;
  while (true) {
    const size_t slash = path.find('/', start);
    const std::string_view part = path.substr(start, slash - start);
    check(!part.empty(), "file path '{}' has an empty component (leading, trailing or double '/')",
          printable(path));
    validate_name(part, fmt::format("component of file path '{}'", printable(path)));
    check(++depth <= kMaxPathDepth, "file path '{}' is nested deeper than {}", printable(path),
          kMaxPathDepth);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
}

std::string percent_encode(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

}  // namespace lorahub::hub
