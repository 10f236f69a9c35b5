// The "meta" JSON of a push (hub/push_meta.h), as any client can send it: every input either
// parses into fields the hub can serve or throws lorahub::Error, and both the fields and the
// error message go through a strict JSON encoder (what the server does with them) without
// throwing: no invalid UTF-8 escapes validation (nlohmann's type_error 316 was issue 14's crash).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hub/push_meta.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  nlohmann::json served;
  try {
    const auto meta = lorahub::hub::parse_push_meta(text);
    for (const auto* field :
         {&meta.parent, &meta.message, &meta.task, &meta.description, &meta.license})
      if (field->size() > lorahub::hub::kMaxPushTextField) std::abort();
    if (meta.tags.size() > lorahub::hub::kMaxPushTags) std::abort();
    served = {
        {"parent", meta.parent}, {"message", meta.message},         {"task", meta.task},
        {"tags", meta.tags},     {"description", meta.description}, {"license", meta.license}};
  } catch (const lorahub::Error& e) {
    served = {{"error", e.what()}};
  }
  (void)served.dump();  // throws (and so fails the run) on invalid UTF-8
  return 0;
}
