// The HTTP layer's own request and response types: handlers see these, never Boost.Beast's.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/error.h"

namespace lorahub::http {

// Case-insensitive ordering, for header names.
struct NoCase {
  bool operator()(std::string_view a, std::string_view b) const;
};
using Headers = std::multimap<std::string, std::string, NoCase>;

struct Request {
  std::string method;  // "GET", "POST", ... (HEAD requests reach GET routes with method "HEAD")
  std::string target;  // the raw request target: path and query, still percent-encoded
  std::string path;    // the raw path part of the target (percent-encoded)
  std::multimap<std::string, std::string> query;  // decoded keys and values ('+' is a space)
  Headers headers;
  std::map<std::string, std::string> captures;  // the route's {name} parts, percent-decoded
  std::string body;                             // empty in a before-body check
  // Set by the server while a handler runs: true once the client has closed its connection (or
  // the connection failed), so that a handler that computes for long can give up. Cheap (one
  // non-blocking peek at the socket); callable from the handler's thread at any time.
  std::function<bool()> client_gone_probe;

  // The header's value, or "" when absent.
  std::string header(std::string_view name) const;
  bool has_param(const std::string& key) const { return query.count(key) > 0; }
  // The first value of a query parameter, or "" when absent.
  std::string param(const std::string& key) const;
  // A route capture by name ("" when the route has none of that name).
  const std::string& capture(const std::string& name) const;
  // Whether the client has gone (see client_gone_probe); false when the server cannot tell.
  bool client_gone() const { return client_gone_probe && client_gone_probe(); }
};

// A failure to answer with `status`; its message becomes the JSON error body {"error": ...}
// (made valid UTF-8 first, so it may quote client bytes). `headers` go with the answer.
struct Error : lorahub::Error {
  Error(int status, std::string message, Headers headers = {})
      : lorahub::Error(std::move(message)), status(status), headers(std::move(headers)) {}
  int status;
  Headers headers;
};

// Passed to a streamed response's writer. write() blocks until the bytes went out; false means
// the client is gone (stop producing). Used for chunked answers such as server-sent events.
class StreamWriter {
 public:
  virtual ~StreamWriter() = default;
  virtual bool write(std::string_view bytes) = 0;
  virtual bool client_gone() const = 0;
};

// An open file to send (or a part of it, from a Range header); owns its descriptor.
struct FileBody {
  FileBody(int fd, uint64_t size) : fd(fd), size(size) {}
  ~FileBody();
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
  int fd;
  uint64_t size;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;                                    // a buffered answer
  std::shared_ptr<FileBody> file;                      // or a file, honouring Range
  std::function<void(StreamWriter&)> stream;           // or a chunked stream
  std::optional<std::pair<uint64_t, uint64_t>> range;  // [first, last] of `file` (set by server)

  void set_header(std::string name, std::string value);
  static Response json(std::string body, int status = 200);
  static Response text(std::string body, std::string content_type, int status = 200);
  // The file at `path`, opened now (so it stays readable even if it is removed meanwhile).
  // Throws Error when it cannot be opened.
  static Response from_file(const std::string& path, std::string content_type);
  static Response chunked(std::string content_type, std::function<void(StreamWriter&)> writer);
};

// The JSON error body {"error": message} with the message made valid UTF-8.
std::string error_json(std::string_view message);

// Percent-decoding; '+' becomes a space when `plus_is_space` (query strings). Malformed escapes
// ("%G1", a trailing "%") are kept as they are.
std::string percent_decode(std::string_view text, bool plus_is_space);

// key=value&... into decoded pairs.
std::multimap<std::string, std::string> parse_query(std::string_view query);

}  // namespace lorahub::http
