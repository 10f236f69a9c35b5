#include <gtest/gtest.h>

#include <chrono>

#include "http/message.h"
#include "http/multipart.h"
#include "http/range.h"
#include "http/server.h"

namespace lorahub::http {
namespace {

struct RangeCase {
  const char* header;
  uint64_t size;
  RangeAnswer::Kind kind;
  uint64_t first = 0, last = 0;
};

// RFC 9110 §14: what each Range header selects from a representation of `size` bytes.
TEST(HttpRangeMalformed, FollowsRfc9110) {
  using K = RangeAnswer::Kind;
  const RangeCase cases[] = {
      {"", 151, K::kWhole},
      {"bytes=0-8191", 151, K::kPartial, 0, 150},  // last-pos past the end is clamped
      {"bytes=0-0", 151, K::kPartial, 0, 0},
      {"bytes=10-20", 151, K::kPartial, 10, 20},
      {"bytes=150-", 151, K::kPartial, 150, 150},
      {"bytes=-10", 151, K::kPartial, 141, 150},  // suffix: the last 10 bytes
      {"bytes=-1000", 151, K::kPartial, 0, 150},  // a suffix longer than the file: all of it
      {"BYTES=1-2", 151, K::kPartial, 1, 2},      // the unit is case-insensitive
      {"bytes=0-99999999999999999999999", 151, K::kPartial, 0, 150},
      {"bytes=151-", 151, K::kUnsatisfiable},  // first-pos at or past the end
      {"bytes=8192-9000", 151, K::kUnsatisfiable},
      {"bytes=99999999999999999999999-", 151, K::kUnsatisfiable},
      {"bytes=-0", 151, K::kUnsatisfiable},  // a zero-length suffix
      {"bytes=0-", 0, K::kUnsatisfiable},
      {"bytes=-5", 0, K::kWhole},
      {"bytes=5-4", 151, K::kWhole},      // invalid range-spec: the header is ignored
      {"bytes=0-1,2-3", 151, K::kWhole},  // several ranges: whole file, never amplified
      {"bytes=0-,0-,0-,0-", 151, K::kWhole},
      {"bytes=0-100,50-150", 151, K::kWhole},  // overlapping
      {"items=0-1", 151, K::kWhole},
      {"bytes", 151, K::kWhole},
      {"bytes=", 151, K::kWhole},
      {"bytes=-", 151, K::kWhole},
      {"bytes=a-b", 151, K::kWhole},
      {"bytes=1-2x", 151, K::kWhole},
      {"bytes=+1-2", 151, K::kWhole},
      {"bytes=--1", 151, K::kWhole},
  };
  for (const auto& c : cases) {
    const RangeAnswer got = parse_range(c.header, c.size);
    EXPECT_EQ(got.kind, c.kind) << c.header;
    if (c.kind == K::kPartial) {
      EXPECT_EQ(got.first, c.first) << c.header;
      EXPECT_EQ(got.last, c.last) << c.header;
    }
  }
}

// RFC 9110 §13.1.5: a Range is honoured only when If-Range names this very representation.
TEST(HttpIfRangeMalformed, HoldsOnlyForAStrongMatch) {
  const auto now = std::chrono::system_clock::from_time_t(784111777 + 10);  // 10 s after modified
  const std::string modified = "Sun, 06 Nov 1994 08:49:37 GMT";
  const std::string etag = "\"abc\"";
  struct Case {
    const char* if_range;
    std::string etag, last_modified;
    bool holds;
  };
  const Case cases[] = {
      {"", etag, modified, true},  // absent: the Range stands
      {"\"abc\"", etag, modified, true},
      {"  \"abc\" ", etag, modified, true},
      {"\"abd\"", etag, modified, false},     // another version
      {"W/\"abc\"", etag, modified, false},   // weak: never by strong comparison
      {"\"abc\"", "W/\"abc\"", "", false},    // our tag is weak
      {"\"abc\"", "", modified, false},       // we send no ETag
      {"\"ab\"c\"", "\"ab\"c\"", "", false},  // not an entity-tag
      {"\"", "\"", "", false},
      {"abc", etag, modified, false},
      {"Sun, 06 Nov 1994 08:49:37 GMT", etag, modified, true},  // exactly our Last-Modified
      {"Sun, 06 Nov 1994 08:49:38 GMT", etag, modified, false},
      {"Sunday, 06-Nov-94 08:49:37 GMT", etag, modified, false},  // not exactly it
      {"Sun, 06 Nov 1994 08:49:37 GMT", etag, "", false},         // we send no Last-Modified
      {"Sun, 06 Nov 1994 08:49:37 GMT \xFF", etag, modified, false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(if_range_holds(c.if_range, c.etag, c.last_modified, now), c.holds) << c.if_range;
  }
  // A Last-Modified less than a second old is a weak validator (a change within that second
  // would keep it): a date then never holds.
  const auto just_then = std::chrono::system_clock::from_time_t(784111777);
  EXPECT_FALSE(if_range_holds(modified, etag, modified, just_then));
}

TEST(HttpDate, FormatsAndParsesImfFixdate) {
  const auto when = std::chrono::system_clock::from_time_t(784111777);
  EXPECT_EQ(http_date(when), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), when);
  for (const char* bad : {"Mon, 06 Nov 1994 08:49:37 GMT", "Sun, 36 Nov 1994 08:49:37 GMT",
                          "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 06 Nov 1994 08:49:37 GMTx", ""}) {
    EXPECT_FALSE(parse_http_date(bad).has_value()) << bad;
  }
}

TEST(HttpLimitsMalformed, NonsenseIsRefusedNamingTheLimit) {
  EXPECT_NO_THROW(validate(Limits{}));
  const auto refused = [](Limits l, const char* name) {
    try {
      validate(l);
      ADD_FAILURE() << name << " accepted";
    } catch (const lorahub::Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  refused({.max_connections = 0}, "max_connections");
  refused({.max_header_bytes = 10}, "max_header_bytes");
  refused({.max_header_fields = 0}, "max_header_fields");
  refused({.header_timeout = std::chrono::milliseconds(0)}, "header_timeout");
  refused({.idle_timeout = std::chrono::milliseconds(-5)}, "idle_timeout");
  refused({.body_timeout = std::chrono::hours(48)}, "body_timeout");
  refused({.min_body_rate = 0}, "min_body_rate");
  refused({.write_timeout = std::chrono::milliseconds(0)}, "write_timeout");
}

TEST(HttpRouter, MatchesPatternsAndDecodesCaptures) {
  Router router;
  auto named = [](std::string name) {
    return [name](Request&) { return Response::text(name, "text/plain"); };
  };
  router.add({.method = "GET",
              .pattern = "/",
              .handler = named("root"),
              .before_body = nullptr,
              .max_body = 0});
  router.add({.method = "GET",
              .pattern = "/api/models/{user}/{name}",
              .handler = named("info"),
              .before_body = nullptr,
              .max_body = 0});
  router.add({.method = "GET",
              .pattern = "/api/models/{user}/{name}/tree/{rev}/{path*}",
              .handler = named("tree"),
              .before_body = nullptr,
              .max_body = 0});
  router.add({.method = "POST",
              .pattern = "/api/push/{user}",
              .handler = named("push"),
              .before_body = nullptr,
              .max_body = 0});
  auto match = [&](std::string method, std::string path) {
    Request req;
    req.method = std::move(method);
    req.path = std::move(path);
    Response res = router.match(req).handler(req);
    return std::pair(res.body, req.captures);
  };
  EXPECT_EQ(match("GET", "/").first, "root");
  EXPECT_EQ(match("HEAD", "/").first, "root");  // GET routes answer HEAD
  auto [body, captures] = match("GET", "/api/models/al%69ce/m%FF");
  EXPECT_EQ(body, "info");
  EXPECT_EQ(captures["user"], "alice");
  EXPECT_EQ(captures["name"], "m\xFF");  // decoded bytes: the handler validates them
  std::tie(body, captures) = match("GET", "/api/models/a/b/tree/refs%2Fpr%2F1/x/y%2Fz");
  EXPECT_EQ(body, "tree");
  EXPECT_EQ(captures["rev"], "refs/pr/1");
  EXPECT_EQ(captures["path"], "x/y/z");
  EXPECT_EQ(match("GET", "/api/models/a/b/tree/main/").second["path"], "");
  auto status_of = [&](std::string method, std::string path) {
    try {
      match(std::move(method), std::move(path));
    } catch (const Error& e) {
      return e.status;
    }
    return 200;
  };
  EXPECT_EQ(status_of("GET", "/api/models/a"), 404);
  EXPECT_EQ(status_of("GET", "/api/models/a/b/c"), 404);
  EXPECT_EQ(status_of("GET", "/api/models//b"), 404);  // an empty segment captures nothing
  EXPECT_EQ(status_of("GET", "/api/models/a/b/tree/main"), 404);
  EXPECT_EQ(status_of("GET", "/api/push/a"), 405);
  EXPECT_EQ(status_of("GET", "no-slash"), 404);
}

TEST(HttpQuery, DecodesKeysAndValues) {
  const auto q = parse_query("a=1&b=x+y%21&&c&d=%zz&a=2&e=%");
  EXPECT_EQ(q.count("a"), 2u);
  EXPECT_EQ(q.find("b")->second, "x y!");
  EXPECT_EQ(q.find("c")->second, "");
  EXPECT_EQ(q.find("d")->second, "%zz");  // a malformed escape stays as it is
  EXPECT_EQ(q.find("e")->second, "%");
  EXPECT_EQ(percent_decode("%FF%2f", false), "\xFF/");
  EXPECT_EQ(percent_decode("a+b", false), "a+b");
}

TEST(HttpErrors, BodiesAreValidJsonInValidUtf8) {
  EXPECT_EQ(error_json("bad \xFF byte"), "{\"error\":\"bad \xEF\xBF\xBD byte\"}");
  const Response res = error_response(std::make_exception_ptr(Error(403, "no \xC0")));
  EXPECT_EQ(res.status, 403);
  EXPECT_EQ(res.body, "{\"error\":\"no \xEF\xBF\xBD\"}");
  EXPECT_EQ(error_response(std::make_exception_ptr(std::runtime_error("x"))).status, 500);
  EXPECT_EQ(error_response(std::make_exception_ptr(42)).status, 500);
}

TEST(HttpMultipart, ReadsFieldsAndFiles) {
  const std::string body =
      "preamble\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=\"meta\"\r\nContent-Type: application/json\r\n\r\n"
      "{\"a\":1}\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=\"file\"; filename=\"dir/a \\\"q\\\".bin\"\r\n\r\n"
      "bin\r\n--ary\r\n--XyZ\r\n"
      "Content-Disposition: form-data; name=file; filename=empty\r\n\r\n"
      "\r\n--XyZ--\r\n";
  const auto parts = parse_multipart("multipart/form-data; boundary=\"XyZ\"", body);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].name, "meta");
  EXPECT_EQ(parts[0].content_type, "application/json");
  EXPECT_EQ(parts[0].content, "{\"a\":1}");
  EXPECT_EQ(parts[1].filename, "dir/a \"q\".bin");
  EXPECT_EQ(parts[1].content, "bin\r\n--ary");
  EXPECT_EQ(parts[2].filename, "empty");
  EXPECT_EQ(parts[2].content, "");
}

TEST(HttpMultipartMalformed, RefusesWith400) {
  const std::string ok_part = "--b\r\nContent-Disposition: form-data; name=x\r\n\r\nv\r\n";
  const std::pair<const char*, std::string> bad[] = {
      {"text/plain", ok_part + "--b--"},
      {"multipart/form-data", ok_part + "--b--"},  // no boundary
      {"multipart/form-data; boundary=b", ""},
      {"multipart/form-data; boundary=b", ok_part},  // never closed
      {"multipart/form-data; boundary=b", "--b\r\nContent-Type: x\r\n\r\nv\r\n--b--"},
      {"multipart/form-data; boundary=b", "--b\r\nno colon\r\n\r\nv\r\n--b--"},
      {"multipart/form-data; boundary=b",
       "--b\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b--"},
      {"multipart/form-data; boundary=b", "--bjunk"},
      {"multipart/form-data; boundary=\"b", ok_part + "--b--"},
  };
  for (const auto& [type, body] : bad) {
    try {
      parse_multipart(type, body);
      ADD_FAILURE() << type << " / " << body;
    } catch (const Error& e) {
      EXPECT_EQ(e.status, 400);
    }
  }
  std::string many;
  for (int i = 0; i < 5; ++i) many += ok_part;
  EXPECT_THROW(parse_multipart("multipart/form-data; boundary=b", many + "--b--", 4), Error);
}

}  // namespace
}  // namespace lorahub::http
