// The Range request header (RFC 9110 §14.2) for one representation of `size` bytes. We answer a
// single range only: several ranges (or anything malformed) are ignored and the whole file is
// sent, so a request can never make the answer larger than the file.
#pragma once
#include <cstdint>
#include <string_view>

namespace lorahub::http {

struct RangeAnswer {
  enum Kind { kWhole, kPartial, kUnsatisfiable } kind = kWhole;
  uint64_t first = 0, last = 0;  // inclusive, for kPartial
};

// `header` is the field value ("" when absent).
RangeAnswer parse_range(std::string_view header, uint64_t size);

}  // namespace lorahub::http
