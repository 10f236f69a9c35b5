// The JSON "meta" part of a push (`lorahub hub push`, POST /api/lorahub/push/<repo>): what the
// uploader says about the module. Parsed and validated here, apart from the HTTP layer, so that
// every server front end applies the same rules and a fuzzer can drive it directly.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace lorahub::hub {

struct PushMeta {
  std::string parent;  // 40 hex digits, or empty for the first revision
  std::string message;
  std::string task;  // a valid name, or empty
  std::string description;
  std::string license;
  std::vector<std::string> tags;  // valid names
};

inline constexpr size_t kMaxPushTextField = 4000;  // bytes
inline constexpr size_t kMaxPushTags = 32;

// Throws Error ("push meta: ...") for invalid JSON, a non-object, a field of the wrong type,
// text that is not valid UTF-8 or longer than kMaxPushTextField, a bad parent, task or tag.
// Unknown fields are ignored (newer clients may send more).
PushMeta parse_push_meta(std::string_view text);

}  // namespace lorahub::hub
