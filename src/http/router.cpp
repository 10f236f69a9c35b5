#include "core/utf8.h"
#include "http/server.h"

namespace lorahub::http {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  path.remove_prefix(1);  // the leading '/'
  for (;;) {
    const size_t slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) return parts;
    path.remove_prefix(slash + 1);
  }
}

}  // namespace

// A pattern as its segments: literals, "{name}" captures and an optional trailing "{rest*}".
struct Router::Compiled {
  Route route;
  struct Segment {
    std::string text;  // the literal, or the capture's name
    bool capture = false;
  };
  std::vector<Segment> segments;
  std::string rest;  // name of the trailing capture, "" when none
  bool has_rest = false;

  explicit Compiled(Route r) : route(std::move(r)) {
    check(route.pattern.starts_with('/'), "route pattern '{}' must start with '/'", route.pattern);
    auto parts = split_path(route.pattern);
    for (size_t i = 0; i < parts.size(); ++i) {
      const std::string_view p = parts[i];
      const bool braced = p.size() > 2 && p.front() == '{' && p.back() == '}';
      if (braced && p.ends_with("*}")) {
        check(i + 1 == parts.size(), "route pattern '{}': '{}' must come last", route.pattern, p);
        rest = std::string(p.substr(1, p.size() - 3));
        has_rest = true;
      } else if (braced) {
        segments.push_back({std::string(p.substr(1, p.size() - 2)), true});
      } else {
        segments.push_back({std::string(p), false});
      }
    }
  }

  // Matches the raw (percent-encoded) path; captures are decoded. "{rest*}" takes what follows
  // the fixed segments, possibly empty.
  bool matches(std::string_view path, std::map<std::string, std::string>& captures) const {
    if (!path.starts_with('/')) return false;
    std::string_view remaining = path.substr(1);
    std::map<std::string, std::string> found;
    for (size_t i = 0; i < segments.size(); ++i) {
      const bool last = i + 1 == segments.size();
      const size_t slash = remaining.find('/');
      if (slash == std::string_view::npos && !last) return false;
      if (slash != std::string_view::npos && last && !has_rest) return false;
      const std::string_view raw = remaining.substr(0, slash);
      remaining =
          slash == std::string_view::npos ? std::string_view() : remaining.substr(slash + 1);
      if (segments[i].capture) {
        if (raw.empty()) return false;
        found[segments[i].text] = percent_decode(raw, false);
      } else if (raw != segments[i].text) {
        return false;
      }
      if (last && has_rest && slash == std::string_view::npos) return false;  // ".../x" lacks "/"
    }
    if (has_rest) found[rest] = percent_decode(remaining, false);
    captures = std::move(found);
    return true;
  }
};

void Router::add(Route route) {
  routes_.push_back(std::make_shared<const Compiled>(std::move(route)));
}

const Route& Router::match(Request& req) const {
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  bool path_known = false;
  for (const auto& r : routes_) {
    std::map<std::string, std::string> captures;
    if (!r->matches(req.path, captures)) continue;
    path_known = true;
    if (r->route.method != method) continue;
    req.captures = std::move(captures);
    return r->route;
  }
  if (path_known)
    throw Error(405, fmt::format("{} is not allowed here", printable_utf8(req.method)));
  throw Error(404, fmt::format("no such route: {}", printable_utf8(req.path)));
}

}  // namespace lorahub::http
