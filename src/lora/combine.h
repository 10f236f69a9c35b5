// Every way to combine a pool of LoRA modules with weights w into one adapter:
//   * lorahub (the default): Σ wᵢAᵢ, Σ wᵢBᵢ (compose.h, DESIGN §1.2), unchanged;
//   * PEFT 0.21's LoraModel.add_weighted_adapter combination types, with PEFT's semantics
//     (peft/tuners/lora/model.py, peft/utils/merge_utils.py):
//       linear, ties, dare_linear, dare_ties, magnitude_prune    per tensor, on A and B apart,
//           with A weighted by sign(wᵢsᵢ)·√|wᵢsᵢ| and B by √|wᵢsᵢ| (sᵢ = the module's scaling);
//       cat      A = [w₁s₁A₁; w₂s₂A₂; ...], B = [B₁ B₂ ...]: exactly Σ wᵢsᵢBᵢAᵢ at rank Σ rᵢ;
//       svd, ties_svd, dare_linear_svd, dare_ties_svd, magnitude_prune_svd   on the full
//           deltas sᵢBᵢAᵢ with weights wᵢ, then a truncated SVD to rank svd_rank: float64, only
//           the leading singular vectors (the Gram matrix's eigenpairs, LAPACK dsyevr); with
//           svd_clamp (a quantile clamp, which depends on each singular pair's sign) LAPACK's
//           f32 sgesdd, as torch's CPU torch.linalg.svd calls it.
//     The result has r = lora_alpha = the new rank (so scaling 1, or √r with use_rslora), as
//     PEFT configures the new adapter. With a single module PEFT falls back to linear; so do we.
//
// DARE's random drop masks: PEFT draws them with torch.bernoulli, whose stream we cannot
// reproduce. Ours come from a seeded std::mt19937_64 per (tensor, module), so a seed gives the
// same composition on every call (which the weight search needs: the objective stays a function
// of w); `drop_mask` injects masks instead (the PEFT parity test passes torch's).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lora/module_set.h"

namespace lorahub {

enum class CombineMethod {
  kLoraHub,
  kLinear,
  kCat,
  kSvd,
  kTies,
  kTiesSvd,
  kDareLinear,
  kDareLinearSvd,
  kDareTies,
  kDareTiesSvd,
  kMagnitudePrune,
  kMagnitudePruneSvd,
};

// The PEFT names ("lorahub", "linear", "cat", "svd", "ties", "ties_svd", ...), in that order.
const std::vector<std::string>& combine_method_names();
CombineMethod parse_combine_method(const std::string& name);  // throws naming the known ones
const std::string& combine_method_name(CombineMethod method);

enum class MajoritySign { kTotal, kFrequency };  // merge_utils.calculate_majority_sign_mask
MajoritySign parse_majority_sign(const std::string& name);  // "total" | "frequency"

// A 0/1 keep-mask of n values for one task tensor of one module. `tensor` names it as
// "<layer>.lora_A", "<layer>.lora_B" (per-tensor methods) or "<layer>.delta" (the _svd ones).
using DropMaskFn = std::function<std::vector<float>(const std::string& tensor, size_t module,
                                                    size_t n, double density)>;

struct CombineOptions {
  CombineMethod method = CombineMethod::kLoraHub;
  // Fraction of values kept by ties/dare/magnitude_prune (required by them, as in PEFT).
  std::optional<double> density;
  MajoritySign majority_sign = MajoritySign::kTotal;
  int64_t svd_rank = 0;             // 0 = the largest module rank (PEFT's svd_rank=None)
  std::optional<double> svd_clamp;  // quantile in [0, 1]; none = no clamping
  uint64_t seed = 0;                // DARE's masks
  DropMaskFn drop_mask;             // empty = seeded Bernoulli(density)
};

// Throws Error when the options do not fit the method (density missing or outside [0, 1],
// svd_clamp outside [0, 1], negative svd_rank).
void check_combine_options(const CombineOptions& options);

// The combined adapter: the first module's path and keys, the new rank and config. Throws
// Error for a wrong number of weights, non-finite weights, or an svd_rank larger than a
// target's smaller side.
LoraModule combine_modules(const ModuleSet& set, const std::vector<double>& w,
                           const CombineOptions& options);

// A combination prepared for one module set, then composed for any w: what is the same for
// every w (the pruned task tensors, DARE's masks, TIES's elected signs, cat's concatenated B) is
// computed once (for the _svd methods that prune: their pruned full deltas, as nonzero values),
// so that the weight search's evaluations pay only for the weighted sums (and the _svd methods'
// SVDs). Equal, value for value, to combine_modules for every w. Keeps a
// reference to `set`. Throws Error as combine_modules does (the options at construction, the
// weights per call).
class Combiner {
 public:
  Combiner(const ModuleSet& set, const CombineOptions& options);
  LoraModule operator()(const std::vector<double>& w) const;
  const CombineOptions& options() const { return options_; }

 private:
  struct Prepared;
  const ModuleSet& set_;
  CombineOptions options_;
  std::shared_ptr<const Prepared> prepared_;
};

// The adapter that module directories name: a single module with no weights, combined by
// LoraHub's method, is that module as PEFT loads it; otherwise the modules combined with
// `weights` (one per module) by `options`. `base` (the model's path) reads GGUF LoRAs' names.
// Throws Error when the counts do not fit.
LoraModule adapter_from_modules(const std::vector<std::string>& dirs,
                                const std::vector<double>& weights, const CombineOptions& options,
                                const std::string& base = "");

// The default mask source: Bernoulli(density) from std::mt19937_64 seeded by (seed, tensor,
// module). Exposed for tests.
std::vector<float> seeded_drop_mask(uint64_t seed, const std::string& tensor, size_t module,
                                    size_t n, double density);

}  // namespace lorahub
