// What a request's "model" and "lora" fields name, as an adapter: the base model (none), a
// module from the --modules folders or the hub, a stored composition (learned or composed
// before), or a composition made on the fly. Composed adapters are cached, least recently used
// first out, within a byte budget. Thread-safe.
#pragma once
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "lorahub/lorahub.h"
#include "serve/openai.h"

namespace lorahub::serve {

struct AdapterOptions {
  std::string base_name;                 // the "model" id of the base model
  std::vector<std::string> module_dirs;  // folders whose subfolders are modules
  std::string hub_endpoint;              // "" = no hub: unknown names are errors
  std::string hub_token;
  std::string hub_cache;
  bool bf16 = false;
  size_t cache_bytes = 256u << 20;
};

class AdapterRegistry {
 public:
  // Scans module_dirs; throws Error. Adapters are checked against `model` when first made.
  AdapterRegistry(AdapterOptions options, std::shared_ptr<const api::Model> model);

  // The adapter of a request (nullptr = the base model). Throws ApiError 404 for an unknown
  // model or module, 400 for a composition the modules or weights do not allow.
  std::shared_ptr<const api::Adapter> resolve(const std::string& model,
                                              const std::optional<LoraSpec>& lora);
  // The local folders of module names (local ones, else fetched from the hub).
  std::vector<std::string> module_paths(const std::vector<std::string>& names,
                                        const std::string& param);
  // The hub's modules that match a filter (the "key=value" items of `lorahub learn
  // --hub-filter`), named "user/name@revision" so that a composition of them never changes
  // (listed newest first, as the hub lists them). Throws ApiError 400 for a bad filter, a server
  // without a hub or more than `max` matches, 404 when none matches, 502 when the hub fails.
  std::vector<std::string> hub_modules(const std::vector<std::string>& filter, size_t max);
  // Keeps a composition under a new id (usable as "model"); returns the id.
  std::string store(const LoraSpec& spec, std::shared_ptr<const api::Adapter> adapter);

  struct ModelEntry {
    std::string id;
    std::string kind;  // "base", "module", "composition"
  };
  std::vector<ModelEntry> models() const;
  size_t cached_bytes() const;

 private:
  std::shared_ptr<const api::Adapter> compose(const LoraSpec& spec);
  std::shared_ptr<const api::Adapter> cached(const std::string& key) const;
  void put(const std::string& key, std::shared_ptr<const api::Adapter> adapter, size_t bytes);

  AdapterOptions options_;
  std::shared_ptr<const api::Model> model_;
  std::map<std::string, std::string> modules_;  // name -> folder (scanned at start)
  mutable std::mutex mutex_;
  std::map<std::string, std::string> pinned_;     // "user/name@revision" -> its cache folder
  std::map<std::string, LoraSpec> compositions_;  // stored id -> how to rebuild it
  // LRU: most recent at the front.
  struct Entry {
    std::string key;
    std::shared_ptr<const api::Adapter> adapter;
    size_t bytes;
  };
  mutable std::list<Entry> lru_;
  mutable std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  size_t bytes_ = 0;
};

}  // namespace lorahub::serve
