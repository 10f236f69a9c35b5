#include "hub/push_meta.h"

#include "core/error.h"
#include "core/utf8.h"
#include "formats/json.h"
#include "hub/hash.h"
#include "hub/names.h"

namespace lorahub::hub {
namespace {

// A text field: absent or null is "", anything else must be a string of valid UTF-8.
std::string text_field(const nlohmann::json& meta, const char* key) {
  const auto it = meta.find(key);
  if (it == meta.end() || it->is_null()) return "";
  check(it->is_string(), "push meta: '{}' must be a string, got {}", key, json_type_name(*it));
  const std::string& value = it->get_ref<const std::string&>();
  check(is_valid_utf8(value), "push meta: '{}' is not valid UTF-8", key);
  check(value.size() <= kMaxPushTextField, "push meta: '{}' is longer than {} bytes", key,
        kMaxPushTextField);
  return value;
}

// Names are checked by names.h; the message says which field held the bad one.
void check_name(const std::string& name, std::string_view what) {
  try {
    validate_name(name, what);
  } catch (const Error& e) {
    fail("push meta: {}", e.what());
  }
}

std::vector<std::string> tags_field(const nlohmann::json& meta) {
  std::vector<std::string> tags;
  const auto it = meta.find("tags");
  if (it == meta.end() || it->is_null()) return tags;
  check(it->is_array() && it->size() <= kMaxPushTags,
        "push meta: 'tags' must be a list of at most {} strings", kMaxPushTags);
  for (const auto& tag : *it) {
    check(tag.is_string(), "push meta: every tag must be a string, got {}", json_type_name(tag));
    check_name(tag.get<std::string>(), "tag");
    tags.push_back(tag.get<std::string>());
  }
  return tags;
}

}  // namespace

PushMeta parse_push_meta(std::string_view text) {
  const nlohmann::json meta = parse_json(text, "push meta");
  check(meta.is_object(), "push meta: expected a JSON object, got {}", json_type_name(meta));
  PushMeta out;
  out.parent = text_field(meta, "parent");
  check(out.parent.empty() || is_lower_hex(out.parent, 40),
        "push meta: 'parent' must be a 40-digit revision sha or null");
  out.message = text_field(meta, "message");
  out.task = text_field(meta, "task");
  if (!out.task.empty()) check_name(out.task, "task name");
  out.description = text_field(meta, "description");
  out.license = text_field(meta, "license");
  out.tags = tags_field(meta);
  return out;
}

}  // namespace lorahub::hub
