// The combination options learn, score, generate and compose share (lora/combine.h):
// --compose METHOD [--density D] [--majority-sign total|frequency] [--svd-rank R]
// [--svd-clamp Q] [--dare-masks FILE], and the --weights list parser.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "lorahub/lorahub.h"

namespace lorahub::cli {

struct ComposeArgs {
  std::string method = "lorahub";
  double density = -1;  // < 0: not given
  std::string majority_sign = "total";
  int64_t svd_rank = 0;
  double svd_clamp = -1;   // < 0: no clamping
  std::string dare_masks;  // test hook: safetensors of 0/1 masks "<tensor>.<module>"

  // `method_flag` is "--compose" (learn, score, generate) or "--method" (compose).
  void add_options(CLI::App* cmd, const std::string& method_flag = "--compose");
  // The library options, DARE seeded with `seed`; loads --dare-masks. Throws Error for
  // options that do not fit the method, naming the flag.
  api::ComposeOptions options(uint64_t seed) const;
};

// "0.1,-0.3,1" -> values; every entry must be a finite number.
std::vector<double> parse_weight_list(const std::string& text);

}  // namespace lorahub::cli
