// The bodies of huggingface_hub's write API (hub/hf_upload.h) as any client can send them: the
// NDJSON commit, the preupload and the LFS batch requests. Every input either parses into
// operations whose paths and oids passed validation, or is refused with a 4xx http::Error; the
// message of the refusal and the parsed fields go through a strict JSON encoder without throwing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "http/message.h"
#include "hub/hash.h"
#include "hub/hf_upload.h"
#include "hub/names.h"

namespace {

using namespace lorahub::hub;

void served_path(nlohmann::json& out, const std::string& path) {
  validate_file_path(path);  // a lorahub::Error escaping run() fails the fuzz run
  out.push_back(path);
}

template <typename Parse>
void run(Parse&& parse) {
  nlohmann::json served = nlohmann::json::array();
  try {
    parse(served);
  } catch (const lorahub::http::Error& e) {
    if (e.status < 400 || e.status >= 500) std::abort();
    served = nlohmann::json::object();
    served["error"] = e.what();
  }
  (void)served.dump();  // throws (and so fails the run) on invalid UTF-8
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  run([&](nlohmann::json& out) {
    const CommitRequest r =
        parse_commit_request(text, {.max_operations = 64, .max_file_bytes = 4096});
    out.push_back(r.summary);
    out.push_back(r.description);
    for (const auto& a : r.additions) {
      served_path(out, a.path);
      if (a.content ? a.content->size() > 4096 : !is_lower_hex(a.lfs_oid, 64)) std::abort();
    }
    for (const auto& p : r.deleted_files) served_path(out, p);
    for (const auto& p : r.deleted_folders) served_path(out, p);
  });
  run([&](nlohmann::json& out) {
    for (const auto& f : parse_preupload_request(text, 64, 4096)) {
      served_path(out, f.path);
      if (f.sample.size() > 512 || f.size < 0 || f.size > 4096) std::abort();
      out.push_back(upload_mode(f));
    }
  });
  run([&](nlohmann::json& out) {
    for (const auto& o : parse_lfs_batch_request(text, 64)) {
      if (!is_lower_hex(o.oid, 64) || o.size < 0) std::abort();
      out.push_back(o.oid);
    }
  });
  return 0;
}
