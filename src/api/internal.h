// What the public handles of include/lorahub/lorahub.h hold: the engine's own objects. Only the
// public API's sources include this (src/api/ and serve's public_server.cpp); the installed
// headers never name anything under src/.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "eval/learn_task.h"
#include "hub/client.h"
#include "lora/combine.h"
#include "lora/module_set.h"
#include "lorahub/lorahub.h"
#include "models/decode.h"
#include "models/model.h"

namespace lorahub::api {

struct Model::Impl {
  std::string path;
  std::unique_ptr<lorahub::Model> engine;  // immutable once shared (merging happens at load)
};

struct Adapter::Impl {
  std::string name;
  LoraModule module;
  std::shared_ptr<const LoraMap> map;  // module as the models' side path
  // A routed adapter (ModuleSet::route) has routers instead, no module and no map.
  std::shared_ptr<const LoraRouterMap> router;
};

struct ModuleSet::Impl {
  lorahub::ModuleSet set;
  std::vector<std::string> names;
  std::vector<std::shared_ptr<const Adapter>> adapters;
};

// Runs f; an Error from it becomes an OptionError naming `option`, its message unchanged. An
// OptionError from f already names its field and passes through as it is.
template <typename F>
auto as_option(const char* option, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const OptionError&) {
    throw;
  } catch (const Error& e) {
    throw OptionError(option, e.what());
  }
}

// Calls init_runtime() with defaults unless someone already called it (runtime.cpp).
void ensure_runtime();

// The handles' engine objects.
inline const lorahub::Model& engine(const api::Model& model) {
  return *model.impl().engine;
}
std::shared_ptr<const Adapter> make_adapter(std::string name, LoraModule module);

// `adapter` bound to the model (nullptr for none). Throws Error naming the first target that the
// model does not have or whose shape differs from the model's layer.
std::shared_ptr<const BoundLora> bind(const api::Model& model, const Adapter* adapter);

// The engine's combine options for the public ones (names parsed, values checked).
CombineOptions to_combine_options(const ComposeOptions& options);

// The public name of a finish reason: "stop" (EOS or a stop string), "length", "cancelled".
const char* finish_reason(FinishReason reason);

// The engine's decode options for the public generation options (sampling, stop, max tokens).
DecodeOptions to_decode_options(const GenerationOptions& options);

}  // namespace lorahub::api

namespace lorahub::api {

// The hub's modules that match `filter` as a learning pool for a retrieval selection
// (eval/learn_task.h): listed with their stored embeddings only; each is downloaded into
// cache_dir (by revision, as hub::fetch_modules keeps it) when `fetch` is called.
std::vector<RemoteModule> hub_retrieval_pool(const std::string& endpoint,
                                             const hub::HubFilter& filter,
                                             const std::string& cache_dir);

}  // namespace lorahub::api
