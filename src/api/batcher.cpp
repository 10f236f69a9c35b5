// Continuous batching through the engine's ContinuousBatcher (models/batcher.h): sequences with
// different adapters decode in shared steps, joining and leaving between steps. This file turns
// the public options and events into the engine's.
#include <map>
#include <memory>

#include "api/internal.h"
#include "core/error.h"
#include "models/batcher.h"

namespace lorahub::api {

struct Batcher::Impl {
  std::shared_ptr<const Model> model;
  ContinuousBatcher engine_batcher;
  // Bound adapters by Adapter, so that a composition used by many requests is bound once.
  std::map<const Adapter*,
           std::pair<std::shared_ptr<const Adapter>, std::shared_ptr<const BoundLora>>>
      bound;

  explicit Impl(std::shared_ptr<const Model> m)
      : model(std::move(m)), engine_batcher(engine(*model)) {}

  std::shared_ptr<const BoundLora> bound_for(const std::shared_ptr<const Adapter>& adapter) {
    if (!adapter) return nullptr;
    auto it = bound.find(adapter.get());
    if (it == bound.end())
      it = bound.emplace(adapter.get(), std::make_pair(adapter, bind(*model, adapter.get()))).first;
    return it->second.second;
  }
};

Batcher::Batcher(std::shared_ptr<const Model> model) {
  check(model != nullptr, "batcher: no model");
  impl_ = std::make_unique<Impl>(std::move(model));
}

Batcher::~Batcher() = default;

uint64_t Batcher::add(const std::string& prompt, std::shared_ptr<const Adapter> adapter,
                      const GenerationOptions& options) {
  DecodeOptions decode = to_decode_options(options);
  if (options.on_text) {
    // The id is known only after add(); events come from step(), after it.
    auto id = std::make_shared<uint64_t>(0);
    Impl* impl = impl_.get();
    StreamFn on_text = options.on_text;
    decode.on_event = [impl, id, on_text](const StreamEvent& e) {
      const char* reason = e.done && e.result ? finish_reason(e.result->finish) : "";
      if (!on_text(TextEvent{e.sequence, e.text, e.done, reason}) && !e.done)
        impl->engine_batcher.cancel(*id);  // ends at the next step, with a "cancelled" event
    };
    *id = impl_->engine_batcher.add(engine(*impl_->model).tokenizer().encode(prompt),
                                    impl_->bound_for(adapter), std::move(decode));
    return *id;
  }
  return impl_->engine_batcher.add(engine(*impl_->model).tokenizer().encode(prompt),
                                   impl_->bound_for(adapter), std::move(decode));
}

void Batcher::cancel(uint64_t id) {
  impl_->engine_batcher.cancel(id);
}

size_t Batcher::step() {
  const size_t n = impl_->engine_batcher.step();
  // Drop the bindings no sequence uses any more (only this map holds them), also while others
  // decode: under steady load the batcher is never idle, and a binding keeps its adapter alive
  // (a server's adapter cache could never free a composition it evicted).
  std::erase_if(impl_->bound,
                [](const auto& entry) { return entry.second.second.use_count() == 1; });
  return n;
}

size_t Batcher::active() const {
  return impl_->engine_batcher.active();
}

}  // namespace lorahub::api
