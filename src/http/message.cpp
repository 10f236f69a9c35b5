#include "http/message.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/utf8.h"

namespace lorahub::http {

bool NoCase::operator()(std::string_view a, std::string_view b) const {
  return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) <
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::string Request::header(std::string_view name) const {
  const auto it = headers.find(std::string(name));
  return it == headers.end() ? "" : it->second;
}

std::string Request::param(const std::string& key) const {
  const auto it = query.find(key);
  return it == query.end() ? "" : it->second;
}

const std::string& Request::capture(const std::string& name) const {
  static const std::string kNone;
  const auto it = captures.find(name);
  return it == captures.end() ? kNone : it->second;
}

FileBody::~FileBody() {
  if (fd >= 0) ::close(fd);
}

void Response::set_header(std::string name, std::string value) {
  headers.erase(name);
  headers.emplace(std::move(name), std::move(value));
}

Response Response::json(std::string body, int status) {
  return text(std::move(body), "application/json", status);
}

Response Response::text(std::string body, std::string content_type, int status) {
  Response res;
  res.status = status;
  res.body = std::move(body);
  res.set_header("Content-Type", std::move(content_type));
  return res;
}

Response Response::from_file(const std::string& path, std::string content_type) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  check(fd >= 0, "{}: cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail("{}: cannot stat: {}", path, std::strerror(errno));
  }
  Response res;
  res.file = std::make_shared<FileBody>(fd, static_cast<uint64_t>(st.st_size));
  res.set_header("Content-Type", std::move(content_type));
  return res;
}

Response Response::chunked(std::string content_type, std::function<void(StreamWriter&)> writer) {
  Response res;
  res.stream = std::move(writer);
  res.set_header("Content-Type", std::move(content_type));
  return res;
}

std::string error_json(std::string_view message) {
  return nlohmann::json{{"error", to_valid_utf8(message)}}.dump();
}

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '%' && i + 2 < text.size()) {
      const int hi = hex_value(text[i + 1]), lo = hex_value(text[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && c == '+') ? ' ' : c;
  }
  return out;
}

std::multimap<std::string, std::string> parse_query(std::string_view query) {
  std::multimap<std::string, std::string> out;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    out.emplace(percent_decode(key, true), percent_decode(value, true));
  }
  return out;
}

}  // namespace lorahub::http
