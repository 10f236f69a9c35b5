// The Range request header (RFC 9110 §14.2) for one representation of `size` bytes. We answer a
// single range only: several ranges (or anything malformed) are ignored and the whole file is
// sent, so a request can never make the answer larger than the file.
#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lorahub::http {

struct RangeAnswer {
  enum Kind { kWhole, kPartial, kUnsatisfiable } kind = kWhole;
  uint64_t first = 0, last = 0;  // inclusive, for kPartial
};

// `header` is the field value ("" when absent).
RangeAnswer parse_range(std::string_view header, uint64_t size);

// If-Range (RFC 9110 §13.1.5): whether a Range may be honoured, given the If-Range field value
// ("" when absent: true) and the representation's ETag and Last-Modified as we send them ("" when
// we send none). An entity-tag holds only by strong comparison (a weak tag on either side never
// matches); an HTTP-date only when it is exactly our Last-Modified and that is a strong validator
// (at least one second before `now`). Anything else (malformed included) is false: the whole
// representation is sent, never a part of a different one.
bool if_range_holds(std::string_view if_range, std::string_view etag,
                    std::string_view last_modified, std::chrono::system_clock::time_point now);

// An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), for Date and Last-Modified.
std::string http_date(std::chrono::system_clock::time_point when);
// Parses an IMF-fixdate; nullopt when `text` is not one.
std::optional<std::chrono::system_clock::time_point> parse_http_date(std::string_view text);

}  // namespace lorahub::http
