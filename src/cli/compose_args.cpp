#include "cli/compose_args.h"

#include <cmath>
#include <cstdlib>

#include "core/error.h"

namespace lorahub::cli {

void ComposeArgs::add_options(CLI::App* cmd, const std::string& method_flag) {
  cmd->add_option(method_flag, method,
                  "How the modules combine: lorahub (Σ wA, Σ wB) or a PEFT add_weighted_adapter "
                  "type: linear, cat, svd, ties, ties_svd, dare_linear, dare_linear_svd, "
                  "dare_ties, dare_ties_svd, magnitude_prune, magnitude_prune_svd")
      ->capture_default_str();
  cmd->add_option("--density", density,
                  "Fraction of values kept by ties/dare/magnitude_prune (required by them)");
  cmd->add_option("--majority-sign", majority_sign, "TIES sign election: total or frequency")
      ->capture_default_str();
  cmd->add_option("--svd-rank", svd_rank, "Rank of the _svd methods' result (0 = module rank)")
      ->capture_default_str();
  cmd->add_option("--svd-clamp", svd_clamp, "Quantile at which the _svd methods clamp (PEFT)");
  cmd->add_option("--dare-masks", dare_masks,
                  "Testing: DARE keep-masks from a safetensors file ('<layer>.lora_A.<i>', "
                  "'<layer>.lora_B.<i>' or '<layer>.delta.<i>') instead of the seeded draw")
      ->group("");
}

CombineOptions ComposeArgs::options(uint64_t seed) const {
  CombineOptions o;
  o.method = parse_combine_method(method);
  if (density >= 0) o.density = density;
  o.majority_sign = parse_majority_sign(majority_sign);
  o.svd_rank = svd_rank;
  if (svd_clamp >= 0) o.svd_clamp = svd_clamp;
  o.seed = seed;
  if (!dare_masks.empty()) {
    auto masks = std::make_shared<StateDict>(load_state_dict_file(dare_masks));
    o.drop_mask = [masks](const std::string& tensor, size_t module, size_t n, double) {
      const std::string name = tensor + "." + std::to_string(module);
      const Tensor* t = masks->find(name);
      check(t != nullptr, "{}: no mask '{}'", masks->source(), name);
      std::vector<float> mask = t->to_f32();
      check(mask.size() == n, "{}: mask '{}' has {} values, not {}", masks->source(), name,
            mask.size(), n);
      return mask;
    };
  }
  check_combine_options(o);
  return o;
}

std::vector<double> parse_weight_list(const std::string& text) {
  std::vector<double> w;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string::npos) end = text.size();
    const std::string item = text.substr(begin, end - begin);
    char* stop = nullptr;
    const double v = std::strtod(item.c_str(), &stop);
    check(!item.empty() && stop && *stop == '\0', "--weights: '{}' is not a number", item);
    check(std::isfinite(v), "--weights: weight {} is {} (weights must be finite numbers)", w.size(),
          item);
    w.push_back(v);
    begin = end + 1;
  }
  return w;
}

}  // namespace lorahub::cli
