// The products of one decoding step of SmolLM2-135M on the bf16 path, through each
// implementation of matmul_abt_bf16 (kernels/matmul.h): oneDNN ("library") and our AVX512-BF16
// small-rows kernel. Per layer q, k, v, o, gate, up, down for 30 layers, then the tied LM head,
// each layer with its own weights (270 MB in all, so they stream from memory as in a real step);
// m rows of A = the batch of sequences being decoded. Best of several timed steps.
//
// Usage: bench_matmul_small_rows [--rows 1,4,10,16] [--seconds S] [--threads T]  (JSON on stdout)
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/half.h"
#include "kernels/matmul.h"
#include "kernels/small_rows_bf16.h"
#include "step_bench.h"

namespace {
using lorahub::Bf16Path;

struct Product {
  int64_t n, k;
  std::vector<uint16_t> weight;
};

std::vector<Product> smollm2_step_products() {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
  std::vector<Product> products;
  for (auto [n, k] : lorahub::bench::smollm2_step_shapes()) {
    std::vector<float> w(static_cast<size_t>(n * k));
    for (float& x : w) x = dist(rng);
    products.push_back({n, k, std::vector<uint16_t>(w.size())});
    lorahub::f32_to_bf16(w.data(), products.back().weight.data(), w.size());
  }
  return products;
}

double step_seconds(const std::vector<Product>& products, int64_t rows, Bf16Path path,
                    double budget) {
  using lorahub::bench::kMlp, lorahub::bench::kVocab;
  std::vector<float> a(static_cast<size_t>(rows * kMlp), 0.01f),
      c(static_cast<size_t>(rows * kVocab));
  return lorahub::bench::best_step(
             [&] {
               for (const Product& p : products)
                 lorahub::matmul_abt_bf16(a.data(), p.weight.data(), c.data(), rows, p.n, p.k, 0.0f,
                                          path);
             },
             budget)
      .wall;
}

}  // namespace

int main(int argc, char** argv) {
  lorahub::bench::StepArgs args{.rows = {1, 4, 10, 16}};
  if (!lorahub::bench::parse_step_args(argc, argv, args)) return 2;
  if (args.threads > 0) lorahub::set_compute_threads(args.threads);
  const std::vector<Product> products = smollm2_step_products();
  double bytes = 0;
  for (const Product& p : products) bytes += 2.0 * p.n * p.k;
  nlohmann::json runs = nlohmann::json::array();
  for (int64_t m : args.rows)
    for (auto [name, path] : {std::pair{"library", Bf16Path::kLibrary},
                              std::pair{"small-rows", Bf16Path::kSmallRows}}) {
      if (path == Bf16Path::kSmallRows && !lorahub::small_rows_bf16_available()) continue;
      const double s = step_seconds(products, m, path, args.seconds);
      runs.push_back({{"rows", m},
                      {"path", name},
                      {"step_ms", 1e3 * s},
                      {"weight_gb_per_s", bytes / s / 1e9}});
    }
  std::printf("%s\n", nlohmann::json{{"weights_mb", bytes / 1e6},
                                     {"threads", lorahub::compute_threads()},
                                     {"runs", runs}}
                          .dump(2)
                          .c_str());
}
