#include "serve/adapters.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "core/utf8.h"
#include "hub/client.h"

namespace lorahub::serve {

namespace fs = std::filesystem;

namespace {

bool is_module_dir(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "adapter_config.json", ec);
}

// What an adapter costs in memory, from its weight file: the composed tensors have a module's
// shapes (ΣwA, ΣwB), "cat" stacks them. The Adapter API does not report its size; the file is a
// close bound (f32 files; bf16 files are held as f32 unless the model is bf16).
size_t weight_file_bytes(const std::string& dir, bool bf16) {
  std::error_code ec;
  for (const char* name : {"adapter_model.safetensors", "adapter_model.bin"}) {
    const auto size = fs::file_size(fs::path(dir) / name, ec);
    if (!ec) return static_cast<size_t>(size) * (bf16 ? 1 : 2);
  }
  return 1 << 20;
}

// "user/name@<revision sha>": a hub module that never changes, so its folder can be kept.
bool is_pinned(const std::string& id) {
  const size_t at = id.find('@');
  if (at == std::string::npos || id.size() - at - 1 < 40) return false;
  return std::all_of(id.begin() + static_cast<std::ptrdiff_t>(at) + 1, id.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string composition_key(const LoraSpec& spec) {
  std::string key = spec.method;
  if (spec.routed()) {
    key += fmt::format("|top_k={}|temperature={:.17g}", spec.arrow.top_k, spec.arrow.temperature);
    for (const std::string& m : spec.modules) key += "|" + m;
    key += "|general";
    for (const std::string& m : spec.general) key += "|" + m;
    return key;
  }
  for (size_t i = 0; i < spec.modules.size(); ++i)
    key += fmt::format("|{}={:.17g}", spec.modules[i], spec.weights[i]);
  return key;
}

// FNV-1a: a stable id for a composition (same modules, weights and method: same id).
std::string stable_id(const std::string& key) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : key) h = (h ^ c) * 1099511628211ull;
  return fmt::format("lorahub-{:016x}", h);
}

}  // namespace

AdapterRegistry::AdapterRegistry(AdapterOptions options, std::shared_ptr<const api::Model> model)
    : options_(std::move(options)), model_(std::move(model)) {
  for (const std::string& dir : options_.module_dirs) {
    std::error_code ec;
    check(fs::is_directory(dir, ec), "{}: not a folder", dir);
    if (is_module_dir(dir)) {  // a module given directly
      modules_[fs::path(dir).filename().string()] = dir;
      continue;
    }
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!is_module_dir(entry.path())) continue;
      const std::string name = entry.path().filename().string();
      if (auto seen = modules_.find(name); seen != modules_.end())
        fail("module '{}' is in two folders: {} and {}", name, seen->second, entry.path().string());
      modules_[name] = entry.path().string();
    }
  }
}

std::vector<std::string> AdapterRegistry::module_paths(const std::vector<std::string>& names,
                                                       const std::string& param) {
  std::vector<std::string> paths, remote;
  std::vector<size_t> remote_at;
  for (const std::string& name : names) {
    auto it = modules_.find(name);
    if (it != modules_.end()) {
      paths.push_back(it->second);
      continue;
    }
    if (options_.hub_endpoint.empty() || name.find('/') == std::string::npos)
      throw ApiError(404, fmt::format("unknown module '{}'", printable_utf8(name)), param,
                     "module_not_found");
    {
      std::lock_guard lock(mutex_);
      if (auto pinned = pinned_.find(name); pinned != pinned_.end()) {
        paths.push_back(pinned->second);  // no need to ask the hub again
        continue;
      }
    }
    remote_at.push_back(paths.size());
    remote.push_back(name);
    paths.emplace_back();
  }
  if (!remote.empty()) {
    std::vector<std::string> fetched;
    try {
      fetched =
          api::hub_fetch(remote, {options_.hub_endpoint, options_.hub_token, options_.hub_cache});
    } catch (const Error& e) {
      throw ApiError(404, fmt::format("hub: {}", e.what()), param, "module_not_found");
    }
    std::lock_guard lock(mutex_);
    for (size_t i = 0; i < remote.size(); ++i) {
      paths[remote_at[i]] = fetched[i];
      if (is_pinned(remote[i])) pinned_[remote[i]] = fetched[i];
    }
  }
  return paths;
}

std::vector<std::string> AdapterRegistry::hub_modules(const std::vector<std::string>& filter,
                                                      size_t max) {
  if (options_.hub_endpoint.empty())
    throw ApiError(400, "'hub_filter' needs a server started with --hub URL", "hub_filter");
  hub::HubFilter query;
  try {
    query = hub::parse_hub_filter(filter);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "hub_filter");
  }
  query.limit = std::min<int64_t>(query.limit, static_cast<int64_t>(max) + 1);
  std::vector<nlohmann::json> found;
  try {
    found = hub::HubClient(options_.hub_endpoint, options_.hub_token).search(query);
  } catch (const Error& e) {
    throw ApiError(502, fmt::format("hub: {}", e.what()), "hub_filter", "hub_unavailable");
  }
  if (found.empty())
    throw ApiError(404, "no module on the hub matches 'hub_filter'", "hub_filter",
                   "module_not_found");
  if (found.size() > max)
    throw ApiError(400,
                   fmt::format("more than {} modules on the hub match 'hub_filter': narrow it "
                               "(or give it a limit)",
                               max),
                   "hub_filter");
  std::vector<std::string> names;
  for (const nlohmann::json& module : found) {
    const nlohmann::json id = module.value("id", nlohmann::json()),
                         sha = module.value("sha", nlohmann::json());
    if (!id.is_string() || !sha.is_string())
      throw ApiError(502, "hub: a search result has no id or revision sha", "hub_filter",
                     "hub_unavailable");
    names.push_back(id.get<std::string>() + "@" + sha.get<std::string>());
  }
  return names;
}

std::shared_ptr<const api::Adapter> AdapterRegistry::cached(const std::string& key) const {
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second);
  return it->second->adapter;
}

void AdapterRegistry::put(const std::string& key, std::shared_ptr<const api::Adapter> adapter,
                          size_t bytes) {
  std::lock_guard lock(mutex_);
  if (index_.count(key)) return;
  lru_.push_front({key, std::move(adapter), bytes});
  index_[key] = lru_.begin();
  bytes_ += bytes;
  // Evict the least recently used; the newest stays even when it alone exceeds the budget.
  while (bytes_ > options_.cache_bytes && lru_.size() > 1) {
    bytes_ -= lru_.back().bytes;
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

size_t AdapterRegistry::cached_bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

std::shared_ptr<const api::Adapter> AdapterRegistry::compose(const LoraSpec& spec) {
  const std::string key = composition_key(spec);
  if (auto hit = cached(key)) return hit;
  const std::vector<std::string> paths = module_paths(spec.modules, "lora.modules");
  const std::vector<std::string> general = spec.general.empty()
                                               ? std::vector<std::string>()
                                               : module_paths(spec.general, "lora.general");
  api::ModuleSetOptions set_options;
  set_options.bf16 = options_.bf16;
  set_options.hub_ids = false;  // module_paths resolved the names to folders
  api::ComposeOptions compose_options;
  compose_options.method = spec.method;
  std::shared_ptr<const api::Adapter> adapter;
  try {
    const api::ModuleSet set = api::ModuleSet::load(paths, set_options);
    if (spec.routed()) {
      // Arrow (as `lorahub generate --arrow --gks-lora`): a side path over every module.
      std::optional<api::ModuleSet> general_set;
      if (!general.empty()) general_set = api::ModuleSet::load(general, set_options);
      adapter = set.route(spec.arrow, general_set ? &*general_set : nullptr);
    } else {
      adapter = paths.size() == 1 && spec.weights[0] == 1.0 && spec.method == "lorahub"
                    ? set.module(0)
                    : set.compose(spec.weights, compose_options);
    }
    api::Session(model_, adapter);  // targets and shapes fit the model (else Error)
  } catch (const Error& e) {
    throw ApiError(400, fmt::format("lora: {}", e.what()), "lora");
  }
  // "cat" stacks the modules and a router holds every one; the others have one module's shapes.
  const bool holds_all = spec.method == "cat" || spec.routed();
  size_t bytes = 0;
  for (const std::string& p : paths) {
    const size_t b = weight_file_bytes(p, options_.bf16);
    bytes = holds_all ? bytes + b : std::max(bytes, b);
  }
  for (const std::string& p : general) bytes += weight_file_bytes(p, options_.bf16);
  put(key, adapter, bytes);
  return adapter;
}

std::shared_ptr<const api::Adapter> AdapterRegistry::resolve(const std::string& model,
                                                             const std::optional<LoraSpec>& lora) {
  const bool is_base = model == options_.base_name;
  if (lora) {
    if (!is_base)
      throw ApiError(400,
                     fmt::format("with 'lora', 'model' must be the base model '{}' (got '{}')",
                                 options_.base_name, printable_utf8(model)),
                     "model");
    return compose(*lora);
  }
  if (is_base) return nullptr;
  {
    std::unique_lock lock(mutex_);
    auto it = compositions_.find(model);
    if (it != compositions_.end()) {
      const LoraSpec spec = it->second;
      lock.unlock();
      return compose(spec);
    }
  }
  if (modules_.count(model) ||
      (!options_.hub_endpoint.empty() && model.find('/') != std::string::npos)) {
    try {
      return compose({{model}, {1.0}, "lorahub"});
    } catch (const ApiError& e) {
      throw ApiError(404, e.what(), "model", "model_not_found");
    }
  }
  throw ApiError(
      404, fmt::format("the model '{}' does not exist (see GET /v1/models)", printable_utf8(model)),
      "model", "model_not_found");
}

std::string AdapterRegistry::store(const LoraSpec& spec,
                                   std::shared_ptr<const api::Adapter> adapter) {
  const std::string key = composition_key(spec);
  const std::string id = stable_id(key);
  {
    std::lock_guard lock(mutex_);
    compositions_[id] = spec;
  }
  if (adapter) {
    size_t bytes = 0;
    for (const std::string& name : spec.modules) {
      auto it = modules_.find(name);
      bytes = std::max(bytes, it == modules_.end() ? size_t{1} << 20
                                                   : weight_file_bytes(it->second, options_.bf16));
    }
    put(key, std::move(adapter), bytes);
  }
  return id;
}

std::vector<AdapterRegistry::ModelEntry> AdapterRegistry::models() const {
  std::vector<ModelEntry> out{{options_.base_name, "base"}};
  for (const auto& [name, dir] : modules_) out.push_back({name, "module"});
  std::lock_guard lock(mutex_);
  for (const auto& [id, spec] : compositions_) out.push_back({id, "composition"});
  return out;
}

}  // namespace lorahub::serve
