// The connection loop: one C++20 coroutine per connection on Asio's io_context; handlers run on a
// thread pool. Every wait on the client is bounded by a deadline of the request, never per byte.
#include <utility>  // before Asio: its awaitable.hpp uses std::exchange without including it

// Asio 1.74 looks for clang's coroutines only in libc++'s <experimental/coroutine>; with
// libstdc++ (the fuzz build) clang has the standard <coroutine>, which Asio then uses.
#if defined(__clang__) && defined(__cpp_impl_coroutine) && !defined(BOOST_ASIO_HAS_CO_AWAIT)
#define BOOST_ASIO_HAS_CO_AWAIT 1
#endif

#include "http/server.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <cerrno>
#include <future>
#include <thread>

#include "core/utf8.h"
#include "http/range.h"

namespace lorahub::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;

Response error_response(int status, std::string_view message) {
  return Response::json(error_json(message), status);
}

namespace {

// The status, message and headers of an exception escaping a handler (see error_response).
struct Failure {
  int status = 500;
  std::string message;
  Headers headers;
};

Failure failure_of(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return {e.status, e.what(), e.headers};
  } catch (const std::bad_alloc&) {
    return {503, "out of memory", {}};
  } catch (const std::exception& e) {
    return {500, fmt::format("internal error: {}", e.what()), {}};
  } catch (...) {
    return {500, "internal error", {}};
  }
}

}  // namespace

Response error_response(std::exception_ptr error) {
  Failure f = failure_of(error);
  Response res = error_response(f.status, f.message);
  for (const auto& [k, v] : f.headers) res.set_header(k, v);
  return res;
}

namespace {

constexpr size_t kFileChunk = 256 << 10;
constexpr size_t kReadBuffer = 64 << 10;
constexpr std::chrono::seconds kLingerTime{2};
// Connections over the cap being told 503 at once; beyond this many (a flood), the next are
// closed without an answer, so that refusing costs a bounded number of sockets.
constexpr size_t kMaxRefusals = 64;
constexpr int kRetryAfterSeconds = 1;

std::string header_of(const Response& res, std::string_view name) {
  const auto it = res.headers.find(std::string(name));
  return it == res.headers.end() ? "" : it->second;
}

bool is_body_method(std::string_view method) {
  return method == "POST" || method == "PUT" || method == "PATCH";
}

// The request as handlers see it, from Beast's parsed header.
Request to_request(const bhttp::request_parser<bhttp::string_body>& parser) {
  const auto& msg = parser.get();
  Request req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  const size_t q = req.target.find('?');
  req.path = req.target.substr(0, q);
  if (q != std::string::npos) req.query = parse_query(std::string_view(req.target).substr(q + 1));
  for (const auto& field : msg) {
    req.headers.emplace(std::string(field.name_string()), std::string(field.value()));
  }
  return req;
}

// Whether the peer of a connected socket has closed it or the connection failed, without
// reading: a peek at the next byte that does not block. Bytes waiting (a pipelined request) mean
// the client is still there; EOF or an error (reset) means it is gone. Touches only the
// descriptor, never Asio's socket object, so the handler's thread may call it while the
// connection's coroutine waits for that handler.
bool peer_closed(int fd) {
  char byte;
  const ssize_t n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n >= 0) return n == 0;
  return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

// Runs `f` (which may block) on the pool; resumes the caller on its own executor.
template <typename F>
awaitable<std::invoke_result_t<F>> on_pool(asio::thread_pool& pool, F f) {
  co_return co_await asio::co_spawn(
      pool, [f = std::move(f)]() -> awaitable<std::invoke_result_t<F>> { co_return f(); },
      use_awaitable);
}

}  // namespace

void validate(const Limits& l) {
  using std::chrono::milliseconds;
  constexpr milliseconds kDay{86'400'000};
  const auto check_time = [&](milliseconds t, const char* name) {
    check(t.count() > 0 && t <= kDay, "HTTP limit {}: {} ms is not between 1 ms and one day", name,
          t.count());
  };
  check(l.max_connections >= 1 && l.max_connections <= 1'000'000,
        "HTTP limit max_connections: {} is not between 1 and 1000000", l.max_connections);
  check(l.max_header_bytes >= 1024 && l.max_header_bytes <= (size_t{1} << 20),
        "HTTP limit max_header_bytes: {} is not between 1 KiB and 1 MiB", l.max_header_bytes);
  check(l.max_header_fields >= 1 && l.max_header_fields <= 10'000,
        "HTTP limit max_header_fields: {} is not between 1 and 10000", l.max_header_fields);
  check(l.min_body_rate >= 1024, "HTTP limit min_body_rate: {} bytes/s is below 1 KiB/s",
        l.min_body_rate);
  check_time(l.header_timeout, "header_timeout");
  check_time(l.idle_timeout, "idle_timeout");
  check_time(l.body_timeout, "body_timeout");
  check_time(l.write_timeout, "write_timeout");
}

struct Server::Impl {
  ServerOptions options;
  Router router;
  std::atomic<size_t> connections{0};  // before io: its destructor ends the sessions
  std::atomic<size_t> refusals{0};     // connections over the cap being answered 503
  std::atomic<bool> stopping{false};
  asio::io_context io;
  asio::thread_pool pool;
  tcp::acceptor acceptor{io};

  Impl(ServerOptions o, Router r)
      : options(std::move(o)), router(std::move(r)), pool(std::max(1, options.worker_threads)) {}

  // Error answers in the format of options.error_body (default: error_json).
  Response error_answer(int status, std::string_view message) const {
    if (!options.error_body) return error_response(status, message);
    return Response::json(options.error_body(status, to_valid_utf8(message)), status);
  }
  Response error_answer(std::exception_ptr error) const {
    Failure f = failure_of(error);
    Response res = error_answer(f.status, f.message);
    for (const auto& [k, v] : f.headers) res.set_header(k, v);
    return res;
  }

  // Counts a connection for the whole life of its coroutine.
  struct Slot {
    explicit Slot(std::atomic<size_t>& n) : n(n) { ++n; }
    ~Slot() { --n; }
    std::atomic<size_t>& n;
  };

  awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket = co_await acceptor.async_accept(asio::redirect_error(use_awaitable, ec));
      if (ec) {
        if (!acceptor.is_open()) co_return;
        continue;  // EMFILE and friends: keep serving the connections we have
      }
      socket.set_option(tcp::no_delay(true), ec);  // no Nagle stall on keep-alive answers
      if (connections.load() >= options.limits.max_connections) {
        if (refusals.load() < kMaxRefusals)
          asio::co_spawn(io, refuse_busy(beast::tcp_stream(std::move(socket))), asio::detached);
        continue;  // else closed when dropped
      }
      asio::co_spawn(io, session(beast::tcp_stream(std::move(socket))), asio::detached);
    }
  }

  // Over the connection cap: a 503 the client can act on (Retry-After) instead of a silent close
  // or a wait; sent before reading the request, then the connection lingers and closes.
  awaitable<void> refuse_busy(beast::tcp_stream stream) {
    Slot slot(refusals);
    Response res = error_response(
        503, fmt::format("the server has {} connections open, its limit: retry later",
                         options.limits.max_connections));
    res.set_header("Retry-After", std::to_string(kRetryAfterSeconds));
    bhttp::response<bhttp::string_body> msg{head_of(res, false)};
    msg.set(bhttp::field::content_length, std::to_string(res.body.size()));
    msg.body() = std::move(res.body);
    stream.expires_after(kLingerTime);
    boost::system::error_code ec;
    co_await bhttp::async_write(stream, msg, asio::redirect_error(use_awaitable, ec));
    if (!ec) co_await linger(stream);
    stream.socket().close(ec);
  }

  awaitable<void> session(beast::tcp_stream stream) {
    Slot slot(connections);
    beast::flat_buffer buffer(options.limits.max_header_bytes + kReadBuffer);
    try {
      while (!stopping && co_await serve_one(stream, buffer)) {
      }
    } catch (const std::exception&) {  // a socket error or timeout: the client is gone
    }
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
  }

  // Reads and answers one request; false when the connection must close.
  awaitable<bool> serve_one(beast::tcp_stream& stream, beast::flat_buffer& buffer) {
    if (buffer.size() == 0) {  // idle keep-alive: wait for the first byte of the next request
      stream.expires_after(options.limits.idle_timeout);
      const size_t n = co_await stream.async_read_some(buffer.prepare(kReadBuffer), use_awaitable);
      buffer.commit(n);
    }
    stream.expires_after(options.limits.header_timeout);  // for the whole header, not per byte
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(options.limits.max_header_bytes));
    // No limit yet: the route's, once it is known (read_body). Not boost::none: Beast 1.74
    // compares the length with the optional, and every length is greater than none.
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    boost::system::error_code ec;
    co_await bhttp::async_read_header(stream, buffer, parser,
                                      asio::redirect_error(use_awaitable, ec));
    if (ec == beast::error::timeout || ec == bhttp::error::end_of_stream ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      co_return false;
    }
    if (ec == bhttp::error::header_limit) {
      co_await write_error(stream, 431, "the request header is too large");
      co_return false;
    }
    if (ec) {
      co_await write_error(stream, 400, fmt::format("malformed request: {}", ec.message()));
      co_return false;
    }
    const auto& head = parser.get();
    if (static_cast<size_t>(std::distance(head.begin(), head.end())) >
        options.limits.max_header_fields) {
      co_await write_error(stream, 431, "the request has too many header fields");
      co_return false;
    }
    Request req = to_request(parser);
    bool keep_alive = head.keep_alive();
    const bool has_body = parser.chunked() || parser.content_length().value_or(0) > 0;
    const Route* route = nullptr;
    Response res;
    try {
      route = &router.match(req);
      co_await check_before_body(req, *route, parser);
    } catch (...) {
      res = error_answer(std::current_exception());
      route = nullptr;
    }
    if (route != nullptr) {
      if (has_body) {
        const auto failure = co_await read_body(stream, buffer, parser, *route);
        if (failure) {
          if (*failure == 0) co_return false;  // the client is gone or too slow
          co_await write_error(
              stream, *failure,
              *failure == 413 ? "the request body is too large" : "malformed request body");
          co_return false;
        }
        req.body = std::move(parser.get().body());
      }
      // The descriptor stays open until this coroutine, which waits for the handler, resumes.
      req.client_gone_probe = [fd = stream.socket().native_handle()] { return peer_closed(fd); };
      res = co_await on_pool(pool, [this, route, &req] {
        try {
          return route->handler(req);
        } catch (...) {
          return error_answer(std::current_exception());
        }
      });
    } else if (has_body) {  // refused: the unread body is still on its way
      co_await write_response(stream, req, res, false);
      co_await linger(stream);
      co_return false;
    }
    co_return co_await write_response(stream, req, res, keep_alive) && keep_alive;
  }

  // After an answer that refused input still arriving: stop sending and read and discard what
  // comes for a little while, so that the client, still writing, gets to read the answer instead
  // of a connection reset (what nginx calls a lingering close). Bounded in time, not in bytes:
  // nothing is kept.
  awaitable<void> linger(beast::tcp_stream& stream) {
    boost::system::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream.expires_after(kLingerTime);
    std::vector<char> sink(kReadBuffer);
    while (!ec) {
      co_await stream.async_read_some(asio::buffer(sink), asio::redirect_error(use_awaitable, ec));
    }
  }

  // The framing rules (cheap), then the route's own check; all before a body byte is read.
  awaitable<void> check_before_body(const Request& req, const Route& route,
                                    const bhttp::request_parser<bhttp::string_body>& parser) {
    const auto& head = parser.get();
    if (head.count(bhttp::field::transfer_encoding) > 0 && !parser.chunked()) {
      throw Error(400, "unsupported Transfer-Encoding (only chunked)");
    }
    const auto length = parser.content_length();
    if (is_body_method(req.method) && !length && !parser.chunked()) {
      throw Error(411, "a body needs Content-Length or chunked transfer encoding");
    }
    if ((length && *length > route.max_body) || (parser.chunked() && route.max_body == 0)) {
      throw Error(413, fmt::format("the request body may have at most {} bytes", route.max_body));
    }
    if (route.before_body) {
      std::exception_ptr refused = co_await on_pool(pool, [&]() -> std::exception_ptr {
        try {
          route.before_body(req);
          return nullptr;
        } catch (...) {
          return std::current_exception();
        }
      });
      if (refused) std::rethrow_exception(refused);
    }
  }

  // Reads the body within its deadline and limit. Returns nullopt on success, else the status to
  // answer (0: none, the connection just closes).
  awaitable<std::optional<int>> read_body(beast::tcp_stream& stream, beast::flat_buffer& buffer,
                                          bhttp::request_parser<bhttp::string_body>& parser,
                                          const Route& route) {
    const auto& head = parser.get();
    if (beast::iequals(head[bhttp::field::expect], "100-continue")) {
      bhttp::response<bhttp::empty_body> go{bhttp::status::continue_, 11};
      stream.expires_after(options.limits.write_timeout);
      co_await bhttp::async_write(stream, go, use_awaitable);
    }
    const uint64_t expected = parser.content_length().value_or(route.max_body);
    const auto allowance =
        std::chrono::milliseconds(expected * 1000 / options.limits.min_body_rate);
    stream.expires_after(options.limits.body_timeout + allowance);
    parser.body_limit(route.max_body);
    boost::system::error_code ec;
    co_await bhttp::async_read(stream, buffer, parser, asio::redirect_error(use_awaitable, ec));
    if (!ec) co_return std::nullopt;
    if (ec == bhttp::error::body_limit) co_return 413;
    if (ec == beast::error::timeout || ec == bhttp::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      co_return 0;
    }
    co_return 400;
  }

  awaitable<void> write_error(beast::tcp_stream& stream, int status, std::string_view message) {
    Request none;
    Response res = error_answer(status, message);
    try {
      co_await write_response(stream, none, res, false);
    } catch (const std::exception&) {
    }
    co_await linger(stream);
  }

  // The status line and headers of `res`, with the headers every answer carries.
  bhttp::response<bhttp::empty_body> head_of(const Response& res, bool keep_alive) {
    bhttp::response<bhttp::empty_body> head;
    head.version(11);
    head.result(static_cast<unsigned>(res.status));
    for (const auto& [name, value] : res.headers) head.insert(name, value);
    head.set("X-Content-Type-Options", "nosniff");
    head.set(bhttp::field::date, http_date(std::chrono::system_clock::now()));
    head.keep_alive(keep_alive);
    return head;
  }

  awaitable<bool> write_response(beast::tcp_stream& stream, const Request& req, Response& res,
                                 bool keep_alive) {
    const bool head_only = req.method == "HEAD";
    if (res.file) co_return co_await write_file(stream, req, res, keep_alive, head_only);
    if (res.stream) co_return co_await write_stream(stream, res, keep_alive, head_only);
    bhttp::response<bhttp::string_body> msg{head_of(res, keep_alive)};
    msg.set(bhttp::field::content_length, std::to_string(res.body.size()));
    if (!head_only) msg.body() = std::move(res.body);
    stream.expires_after(options.limits.write_timeout);
    boost::system::error_code ec;
    bhttp::response_serializer<bhttp::string_body> serializer(msg);
    co_await bhttp::async_write(stream, serializer, asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  }

  awaitable<bool> write_head(beast::tcp_stream& stream, bhttp::response<bhttp::empty_body>& head) {
    bhttp::response_serializer<bhttp::empty_body> serializer(head);
    stream.expires_after(options.limits.write_timeout);
    boost::system::error_code ec;
    co_await bhttp::async_write_header(stream, serializer, asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  }

  awaitable<bool> write_file(beast::tcp_stream& stream, const Request& req, Response& res,
                             bool keep_alive, bool head_only) {
    const uint64_t size = res.file->size;
    uint64_t first = 0, count = size;
    res.set_header("Accept-Ranges", "bytes");
    if (res.status == 200 && (req.method == "GET" || head_only)) {
      RangeAnswer range = parse_range(req.header("Range"), size);
      if (range.kind != RangeAnswer::kWhole &&
          !if_range_holds(req.header("If-Range"), header_of(res, "ETag"),
                          header_of(res, "Last-Modified"), std::chrono::system_clock::now())) {
        range = RangeAnswer{};  // the client's part is of another version: send all of this one
      }
      if (range.kind == RangeAnswer::kUnsatisfiable) {
        Response refused = error_answer(416, fmt::format("range not satisfiable: the file has {} "
                                                         "bytes",
                                                         size));
        refused.set_header("Content-Range", fmt::format("bytes */{}", size));
        co_return co_await write_response(stream, req, refused, keep_alive);
      }
      if (range.kind == RangeAnswer::kPartial) {
        res.status = 206;
        first = range.first;
        count = range.last - range.first + 1;
        res.set_header("Content-Range",
                       fmt::format("bytes {}-{}/{}", range.first, range.last, size));
      }
    }
    auto head = head_of(res, keep_alive);
    head.set(bhttp::field::content_length, std::to_string(count));
    if (!co_await write_head(stream, head)) co_return false;
    if (head_only) co_return true;
    std::vector<char> chunk(std::min<uint64_t>(kFileChunk, std::max<uint64_t>(count, 1)));
    for (uint64_t sent = 0; sent < count;) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(chunk.size(), count - sent));
      const ssize_t got =
          ::pread(res.file->fd, chunk.data(), want, static_cast<off_t>(first + sent));
      if (got <= 0) co_return false;  // the file shrank under us: cut the answer short
      stream.expires_after(options.limits.write_timeout);
      co_await asio::async_write(stream, asio::buffer(chunk.data(), static_cast<size_t>(got)),
                                 use_awaitable);
      sent += static_cast<uint64_t>(got);
    }
    co_return true;
  }

  // A writer on the pool; each write() hands its chunk to the connection's executor and waits.
  struct ChunkWriter : StreamWriter {
    Impl& server;
    beast::tcp_stream& stream;
    std::atomic<bool> gone{false};
    ChunkWriter(Impl& s, beast::tcp_stream& st) : server(s), stream(st) {}

    bool write(std::string_view bytes) override {
      if (gone || server.stopping) return false;
      if (bytes.empty()) return true;  // an empty chunk would end the stream
      std::promise<bool> done;
      auto result = done.get_future();
      asio::co_spawn(
          stream.get_executor(),
          [this, bytes]() -> awaitable<bool> {
            stream.expires_after(server.options.limits.write_timeout);
            co_await asio::async_write(stream, bhttp::make_chunk(asio::buffer(bytes)),
                                       use_awaitable);
            co_return true;
          },
          [&done](std::exception_ptr e, bool ok) { done.set_value(!e && ok); });
      while (result.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
        if (server.stopping) return !(gone = true);  // the io threads may be gone
      }
      if (!result.get()) gone = true;
      return !gone;
    }
    bool client_gone() const override { return gone; }
  };

  awaitable<bool> write_stream(beast::tcp_stream& stream, Response& res, bool keep_alive,
                               bool head_only) {
    auto head = head_of(res, keep_alive);
    if (!head_only) head.set(bhttp::field::transfer_encoding, "chunked");
    if (!co_await write_head(stream, head)) co_return false;
    if (head_only) co_return true;
    ChunkWriter writer(*this, stream);
    co_await on_pool(pool, [&] {
      try {
        res.stream(writer);
      } catch (const std::exception&) {  // the answer is under way: all we can do is end it
        writer.gone = true;
      }
      return 0;
    });
    if (writer.gone) co_return false;
    stream.expires_after(options.limits.write_timeout);
    boost::system::error_code ec;
    co_await asio::async_write(stream, bhttp::make_chunk_last(),
                               asio::redirect_error(use_awaitable, ec));
    co_return !ec;
  }
};

Server::Server(ServerOptions options, Router router) {
  validate(options.limits);
  impl_ = std::make_unique<Impl>(std::move(options), std::move(router));
}

Server::~Server() {
  stop();
  impl_->pool.join();
}

int Server::bind() {
  auto& acceptor = impl_->acceptor;
  const auto& o = impl_->options;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(o.host, ec);
  check(!ec, "cannot listen on '{}': not an IP address", o.host);
  const tcp::endpoint endpoint(address, static_cast<unsigned short>(o.port));
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  check(!ec, "cannot listen on {}:{}: {}", o.host, o.port, ec.message());
  return acceptor.local_endpoint().port();
}

void Server::run() {
  auto& impl = *impl_;
  if (impl.stopping) return;
  asio::co_spawn(impl.io, impl.accept_loop(), asio::detached);
  std::vector<std::thread> threads;
  for (int i = 1; i < std::max(1, impl.options.io_threads); ++i) {
    threads.emplace_back([&impl] { impl.io.run(); });
  }
  impl.io.run();
  for (auto& t : threads) t.join();
}

void Server::stop_accepting() {
  auto& impl = *impl_;
  asio::post(impl.io, [&impl] {
    boost::system::error_code ec;
    impl.acceptor.close(ec);
  });
}

void Server::stop() {
  auto& impl = *impl_;
  if (impl.stopping.exchange(true)) return;
  asio::post(impl.io, [&impl] {
    boost::system::error_code ec;
    impl.acceptor.close(ec);
    impl.io.stop();
  });
}

}  // namespace lorahub::http
