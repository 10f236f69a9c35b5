// The combination options learn, score, generate and compose share (lora/combine.h):
// --compose METHOD [--density D] [--majority-sign total|frequency] [--svd-rank R]
// [--svd-clamp Q] [--dare-masks FILE], and the --weights list parser.
#pragma once
#include <CLI/CLI.hpp>

#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "lorahub/lorahub.h"

namespace lorahub::cli {

struct ComposeArgs {
  std::string method = "lorahub";
  // NaN: not given (any number given, negative ones too, is checked by the library).
  double density = std::numeric_limits<double>::quiet_NaN();
  std::string majority_sign = "total";
  int64_t svd_rank = 0;
  double svd_clamp = std::numeric_limits<double>::quiet_NaN();  // NaN: no clamping
  std::string dare_masks;                 // test hook: safetensors of 0/1 masks "<tensor>.<module>"
  std::string method_flag = "--compose";  // as add_options named it, for errors

  // `flag`, the method's: "--compose" (learn, score, generate) or "--method" (compose).
  void add_options(CLI::App* cmd, const std::string& flag = "--compose");
  // The library options, DARE seeded with `seed`; loads --dare-masks. Throws Error for
  // options that do not fit the method, naming the flag.
  api::ComposeOptions options(uint64_t seed) const;
};

// "0.1,-0.3,1" -> values; every entry must be a finite number.
std::vector<double> parse_weight_list(const std::string& text);

}  // namespace lorahub::cli
