// Models, adapters and module sets: the public handles over models/, lora/ and hub/.
#include <cstdlib>
#include <filesystem>

#include "api/internal.h"
#include "core/error.h"
#include "formats/state_dict.h"
#include "hub/client.h"
#include "lora/arrow.h"
#include "lora/base_model.h"
#include "lora/combine.h"
#include "lora/compose.h"
#include "lora/export.h"
#include "lora/gguf_lora.h"
#include "tokenizer/bpe.h"

namespace lorahub::api {

namespace fs = std::filesystem;

// ------------------------------------------------------------------------------ Model

Model::Model(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

std::shared_ptr<const Model> Model::load(const std::string& path, const ModelOptions& options) {
  ensure_runtime();
  auto impl = std::make_shared<Impl>();
  impl->path = path;
  LoadOptions load;
  load.bf16 = options.bf16;
  load.int8 = options.int8;
  load.quantized = options.quantized;
  impl->engine = load_model(path, load);
  // Merged once, as merge_and_unload does: inference then costs what the base model costs.
  std::vector<std::shared_ptr<const Adapter>> merged;
  for (const std::string& dir : options.merge) merged.push_back(Adapter::load(dir, path));
  merged.insert(merged.end(), options.merge_adapters.begin(), options.merge_adapters.end());
  for (const std::shared_ptr<const Adapter>& adapter : merged) {
    check(adapter != nullptr, "model {}: a null adapter to merge", path);
    check(adapter->impl().map != nullptr,
          "adapter {}: a routed adapter mixes modules per token and cannot be merged",
          adapter->name());
    bind(Model(impl), adapter.get());  // checks targets and shapes, naming the adapter
    impl->engine->merge_lora(*adapter->impl().map);
  }
  return std::make_shared<const Model>(std::move(impl));
}

const std::string& Model::path() const {
  return impl_->path;
}
std::string Model::architecture() const {
  return impl_->engine->architecture();
}
bool Model::is_encoder_decoder() const {
  return impl_->engine->is_encoder_decoder();
}

std::vector<int32_t> Model::encode(const std::string& text, bool special_tokens) const {
  return impl_->engine->tokenizer().encode(text, special_tokens);
}

std::string Model::decode(const std::vector<int32_t>& ids) const {
  return to_valid_utf8(impl_->engine->tokenizer().decode(ids, true));
}

bool Model::has_chat_template() const {
  const auto* bpe = dynamic_cast<const BpeTokenizer*>(&impl_->engine->tokenizer());
  return bpe != nullptr && !bpe->chat_template().empty();
}

std::string Model::chat_prompt(const std::vector<ChatMessage>& messages,
                               bool add_generation_prompt) const {
  const lorahub::Tokenizer& tokenizer = impl_->engine->tokenizer();
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) list.push_back({{"role", m.role}, {"content", m.content}});
  std::string prompt = tokenizer.render_chat(list, add_generation_prompt);
  // The prompt goes to encode() with its default special tokens: a BOS that encode() adds
  // must not be in the text too (as Tokenizer::apply_chat_template does).
  const int32_t bos = tokenizer.bos_id();
  const std::vector<int32_t> prefix = tokenizer.encode("", true);
  if (bos >= 0 && !prefix.empty() && prefix.front() == bos) {
    const std::string bos_text = tokenizer.decode({bos}, false);
    if (!bos_text.empty() && prompt.starts_with(bos_text)) prompt.erase(0, bos_text.size());
  }
  return prompt;
}

std::string Model::chat_prompt(const std::string& user) const {
  return impl_->engine->tokenizer().apply_chat_template(user);
}

std::vector<std::string> Model::lora_targets() const {
  std::vector<std::string> names;
  for (const LinearInfo& l : impl_->engine->linear_layers()) names.push_back(l.name);
  return names;
}

// ------------------------------------------------------------------------------ Adapter

Adapter::Adapter(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

std::shared_ptr<const Adapter> make_adapter(std::string name, LoraModule module) {
  auto impl = std::make_shared<Adapter::Impl>();
  impl->name = std::move(name);
  impl->map = std::make_shared<const LoraMap>(to_lora_map(module));
  impl->module = std::move(module);
  return std::make_shared<const Adapter>(std::move(impl));
}

std::shared_ptr<const Adapter> Adapter::load(const std::string& path,
                                             const std::string& base_model) {
  return make_adapter(path, load_lora_module(path, base_model));
}

void Adapter::save(const std::string& dir) const {
  check(impl_->router == nullptr, "adapter {}: a routed adapter cannot be saved", impl_->name);
  save_composed_adapter(impl_->module, dir);
}
const std::string& Adapter::name() const {
  return impl_->name;
}
std::string Adapter::base_model() const {
  return impl_->module.config.base_model_name_or_path;
}
void Adapter::save_gguf(const std::string& path, const std::string& base_model) const {
  check(impl_->router == nullptr, "adapter {}: a routed adapter cannot be saved", impl_->name);
  save_gguf_lora(impl_->module, path, base_model);
}

std::vector<std::string> read_module_list(const std::string& list_file) {
  return lorahub::read_module_list(list_file);
}

bool Adapter::made_for(const std::string& model_path) const {
  return base_model_matches(base_model(), model_path);
}
int64_t Adapter::rank() const {
  return impl_->module.config.r;
}

std::vector<std::string> Adapter::target_layers() const {
  std::vector<std::string> layers;
  for (const LoraTensor& t : impl_->module.tensors)
    if (layers.empty() || layers.back() != t.layer) layers.push_back(t.layer);
  return layers;
}

// ------------------------------------------------------------------------------ ModuleSet

namespace {

std::string endpoint_or_env(const std::string& endpoint) {
  if (!endpoint.empty()) return endpoint;
  const char* env = std::getenv("LORAHUB_ENDPOINT");
  return env != nullptr ? env : "";
}

// Local directories as they are, hub ids fetched into the cache; order kept.
std::vector<std::string> resolve_module_names(const std::vector<std::string>& names,
                                              const ModuleSetOptions& options) {
  std::vector<std::string> ids;
  for (const std::string& name : names)
    if (!fs::is_directory(name)) ids.push_back(name);
  if (ids.empty() || !options.hub_ids) return names;
  check(!endpoint_or_env(options.hub_endpoint).empty(),
        "module '{}' is not a local directory, and there is no hub to fetch it from (give "
        "hub_endpoint or set LORAHUB_ENDPOINT)",
        ids.front());
  HubOptions hub;
  hub.endpoint = options.hub_endpoint;
  hub.token = options.hub_token;
  hub.cache_dir = options.cache_dir;
  const std::vector<std::string> fetched = hub_fetch(ids, hub);
  std::vector<std::string> dirs;
  size_t next = 0;
  for (const std::string& name : names)
    dirs.push_back(fs::is_directory(name) ? name : fetched.at(next++));
  return dirs;
}

}  // namespace

ModuleSet::ModuleSet(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}

ModuleSet ModuleSet::load(const std::vector<std::string>& names, const ModuleSetOptions& options) {
  check(!names.empty(), "module set: no modules given");
  auto impl = std::make_shared<Impl>();
  impl->names = names;
  impl->set = lorahub::ModuleSet::load(resolve_module_names(names, options), options.bf16,
                                       options.base_model);
  for (size_t i = 0; i < impl->set.size(); ++i)
    impl->adapters.push_back(make_adapter(names[i], impl->set[i]));
  return ModuleSet(std::move(impl));
}

size_t ModuleSet::size() const {
  return impl_->set.size();
}
const std::vector<std::string>& ModuleSet::names() const {
  return impl_->names;
}

std::shared_ptr<const Adapter> ModuleSet::module(size_t i) const {
  check(i < impl_->adapters.size(), "module set: no module {} (the set has {})", i,
        impl_->adapters.size());
  return impl_->adapters[i];
}

namespace {

// DARE's keep-masks read from a safetensors file: "<tensor>.<module>" -> 0/1 values.
DropMaskFn drop_masks_from(const std::string& path) {
  auto masks = std::make_shared<StateDict>(
      as_option("drop_masks_file", [&] { return load_state_dict_file(path); }));
  return [masks](const std::string& tensor, size_t module, size_t n, double) {
    const std::string name = tensor + "." + std::to_string(module);
    const Tensor* t = masks->find(name);
    check(t != nullptr, "{}: no mask '{}'", masks->source(), name);
    std::vector<float> mask = t->to_f32();
    check(mask.size() == n, "{}: mask '{}' has {} values, not {}", masks->source(), name,
          mask.size(), n);
    return mask;
  };
}

}  // namespace

CombineOptions to_combine_options(const ComposeOptions& options) {
  CombineOptions out;
  out.method = as_option("method", [&] { return parse_combine_method(options.method); });
  out.density = options.density;
  out.majority_sign =
      as_option("majority_sign", [&] { return parse_majority_sign(options.majority_sign); });
  out.svd_rank = options.svd_rank;
  out.svd_clamp = options.svd_clamp;
  out.seed = options.seed;
  if (!options.drop_masks_file.empty()) out.drop_mask = drop_masks_from(options.drop_masks_file);
  // A value out of range is its own field's fault; a value the method lacks, the method's.
  const auto in_unit = [](const std::optional<double>& x) { return !x || (*x >= 0 && *x <= 1); };
  if (!in_unit(out.density))
    throw OptionError("density", fmt::format("density must be in [0, 1], got {}", *out.density));
  if (!in_unit(out.svd_clamp))
    throw OptionError("svd_clamp",
                      fmt::format("SVD clamp quantile must be in [0, 1], got {}", *out.svd_clamp));
  if (out.svd_rank < 0)
    throw OptionError("svd_rank", fmt::format("SVD rank must be >= 0, got {}", out.svd_rank));
  as_option("method", [&] { check_combine_options(out); });
  return out;
}

void validate(const ComposeOptions& options) {
  to_combine_options(options);
}

std::shared_ptr<const Adapter> ModuleSet::compose(const std::vector<double>& w,
                                                  const ComposeOptions& options) const {
  check(w.size() == size(), "compose: {} weights for {} modules", w.size(), size());
  return make_adapter("composition", combine_modules(impl_->set, w, to_combine_options(options)));
}

std::shared_ptr<const Adapter> ModuleSet::route(const ArrowOptions& options,
                                                const ModuleSet* general) const {
  auto impl = std::make_shared<Adapter::Impl>();
  impl->name = "arrow";
  impl->router = std::make_shared<const LoraRouterMap>(arrow_router(
      impl_->set, general != nullptr ? &general->impl_->set : nullptr,
      lorahub::ArrowOptions{.top_k = options.top_k, .temperature = options.temperature}));
  return std::make_shared<const Adapter>(std::move(impl));
}

// ------------------------------------------------------------------------------ hub

namespace {

std::string required_endpoint(const HubOptions& options) {
  const std::string endpoint = endpoint_or_env(options.endpoint);
  check(!endpoint.empty(), "hub: no endpoint (give one in the options or set LORAHUB_ENDPOINT)");
  return endpoint;
}

std::string token_or_env(const std::string& token) {
  if (!token.empty()) return token;
  const char* env = std::getenv("HF_TOKEN");
  return env != nullptr ? env : "";
}

}  // namespace

std::vector<std::string> hub_fetch(const std::vector<std::string>& ids, const HubOptions& options) {
  const std::string cache =
      options.cache_dir.empty() ? hub::default_cache_dir() : options.cache_dir;
  return hub::fetch_module_ids(required_endpoint(options), token_or_env(options.token), ids, cache);
}

std::string hub_push(const std::string& dir, const std::string& id, const HubOptions& options) {
  check(fs::is_directory(dir), "hub push: {} is not a directory", dir);
  hub::HubClient client(required_endpoint(options), token_or_env(options.token));
  hub::PushOptions push;
  push.repo = id;
  return client.push(dir, push);
}

}  // namespace lorahub::api
