// What the public handles of include/lorahub/lorahub.h hold: the engine's own objects. Only
// src/api/ includes this; the installed headers never name anything under src/.
#pragma once
#include <memory>
#include <mutex>
#include <string>

#include "lora/combine.h"
#include "lora/module_set.h"
#include "lorahub/lorahub.h"
#include "models/decode.h"
#include "models/model.h"

namespace lorahub::api {

struct Model::Impl {
  std::string path;
  std::unique_ptr<lorahub::Model> engine;
  // Today's engine keeps the LoRA side path in the model (Model::set_lora): a call that runs with
  // an adapter holds this for its whole duration (session.cpp). Goes away with immutable models.
  mutable std::mutex lora_mutex;
};

struct Adapter::Impl {
  std::string name;
  LoraModule module;
  LoraMap map;  // module as the models' side path
};

struct ModuleSet::Impl {
  lorahub::ModuleSet set;
  std::vector<std::string> names;
  std::vector<std::shared_ptr<const Adapter>> adapters;
};

// Calls init_runtime() with defaults unless someone already called it (runtime.cpp).
void ensure_runtime();

// The handles' engine objects.
inline lorahub::Model& engine(const api::Model& model) {
  return *model.impl().engine;
}
std::shared_ptr<const Adapter> make_adapter(std::string name, LoraModule module);

// Throws Error naming the first target of `adapter` that the model does not have or whose shape
// differs from the model's layer.
void check_adapter_fits(const api::Model& model, const Adapter& adapter);

// Runs f() with `adapter` (nullptr = none) as the model's LoRA side path, excluding every other
// call that sets one (session.cpp: the one place that knows how adapters reach the engine).
void with_adapter(const api::Model& model, const Adapter* adapter,
                  const std::function<void(lorahub::Model&)>& f);

// The engine's combine options for the public ones (names parsed, values checked).
CombineOptions to_combine_options(const ComposeOptions& options);

// The engine's decode options for the public generation options (sampling, stop, max tokens).
DecodeOptions to_decode_options(const GenerationOptions& options);

}  // namespace lorahub::api
