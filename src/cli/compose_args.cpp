#include "cli/compose_args.h"

#include <cmath>
#include <cstdlib>

#include "cli/command.h"

namespace lorahub::cli {

void ComposeArgs::add_options(CLI::App* cmd, const std::string& flag) {
  method_flag = flag;
  cmd->add_option(flag, method,
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

api::ComposeOptions ComposeArgs::options(uint64_t seed) const {
  api::ComposeOptions o;
  o.method = method;
  if (!std::isnan(density)) o.density = density;
  o.majority_sign = majority_sign;
  o.svd_rank = svd_rank;
  if (!std::isnan(svd_clamp)) o.svd_clamp = svd_clamp;
  o.seed = seed;
  o.drop_masks_file = dare_masks;
  try {
    api::validate(o);
  } catch (const api::OptionError& e) {
    // The method's checks (a name, or a value the method needs) are --compose's or --method's.
    if (e.option() == "method") fail("{}: {}", method_flag, e.what());
    if (e.option() == "majority_sign") fail("--majority-sign: {}", e.what());
    if (e.option() == "density") fail("--density: {}", e.what());
    if (e.option() == "svd_rank") fail("--svd-rank: {}", e.what());
    if (e.option() == "svd_clamp") fail("--svd-clamp: {}", e.what());
    throw Error(e.what());  // the masks file names itself
  }
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
