// The request-facing parsers of the HTTP layer and the hub's names: the Range header, the query
// string, routing a request target (with percent-decoded captures) and validating the repo id and
// file path it names, multipart bodies, and the UTF-8 helpers every error message goes through.
// Invariants: a range never selects a byte outside the file; every error body is JSON in valid
// UTF-8; truncation never cuts a character; form parts lie inside the body.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/utf8.h"
#include "http/multipart.h"
#include "http/range.h"
#include "http/server.h"
#include "hub/names.h"

namespace {

using namespace lorahub;

void require(bool ok) {
  if (!ok) std::abort();
}

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view path) {
  std::vector<std::string_view> parts;
  for (size_t slash; (slash = path.find('/')) != std::string_view::npos;
       path.remove_prefix(slash + 1))
    parts.push_back(path.substr(0, slash));
  parts.push_back(path);
  return parts;
}

void check_error_body(std::string_view message) {
  const auto body = nlohmann::json::parse(http::error_json(message));  // throws if not valid UTF-8
  require(body.at("error").is_string());
}

const http::Router& hub_like_router() {
  static const http::Router router = [] {
    http::Router r;
    auto ok = [](http::Request&) { return http::Response::json("{}"); };
    for (const char* p :
         {"/", "/api/models", "/api/models/{user}/{name}",
          "/api/models/{user}/{name}/revision/{rev}",
          "/api/models/{user}/{name}/tree/{rev}/{path*}", "/{user}/{name}/resolve/{rev}/{path*}"}) {
      r.add({.method = "GET", .pattern = p, .handler = ok, .before_body = nullptr, .max_body = 0});
    }
    return r;
  }();
  return router;
}

void route(std::string_view target) {
  http::Request req;
  req.method = "GET";
  const size_t q = target.find('?');
  req.path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) req.query = http::parse_query(target.substr(q + 1));
  for (const auto& [key, value] : req.query) check_error_body(key + "=" + value);
  try {
    hub_like_router().match(req);
    const std::string repo = req.capture("user") + "/" + req.capture("name");
    try {
      hub::validate_repo_id(repo);
    } catch (const Error& e) {
      check_error_body(e.what());
    }
    if (!req.capture("path").empty()) {
      try {
        hub::validate_file_path(req.capture("path"));
        for (const auto& segment : split(req.capture("path"))) {  // never leaves its folder
          require(!segment.empty() && segment != "." && segment != "..");
        }
      } catch (const Error& e) {
        check_error_body(e.what());
      }
    }
  } catch (const http::Error& e) {
    require(e.status == 404 || e.status == 405);
    check_error_body(e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const uint64_t file_size = size < 2 ? size : (uint64_t{data[0]} << 8 | data[1]);

  const http::RangeAnswer range = http::parse_range(text, file_size);
  if (range.kind == http::RangeAnswer::kPartial) {
    require(range.first <= range.last && range.last < file_size);
  }
  // If-Range: a part only for exactly our strong tag or (old enough) date; dates round-trip.
  const auto now = std::chrono::system_clock::now();
  const std::string modified = http::http_date(now - std::chrono::hours(1));
  if (http::if_range_holds(text, "\"tag\"", modified, now)) {
    const std::string_view trimmed = trim_blanks(text);
    require(trimmed.empty() || trimmed == "\"tag\"" || trimmed == modified);
  }
  if (const auto when = http::parse_http_date(text)) require(http::http_date(*when) == text);

  route(text);

  try {
    for (const auto& part : http::parse_multipart("multipart/form-data; boundary=b", text, 64)) {
      require(part.content.data() >= text.data() &&
              part.content.data() + part.content.size() <= text.data() + text.size());
      check_error_body(part.name + part.filename);
    }
  } catch (const http::Error& e) {
    require(e.status == 400);
    check_error_body(e.what());
  }

  const std::string valid = to_valid_utf8(text);
  require(is_valid_utf8(valid));
  const std::string cut = truncate_utf8(text, size / 2);
  require(cut.size() <= size / 2 && text.starts_with(cut));
  require(to_valid_utf8(cut) == to_valid_utf8(text).substr(0, to_valid_utf8(cut).size()));
  return 0;
}
