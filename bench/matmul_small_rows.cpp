// The products of one decoding step of SmolLM2-135M on the bf16 path, through each
// implementation of matmul_abt_bf16 (kernels/matmul.h): oneDNN ("library") and our AVX512-BF16
// small-rows kernel. Per layer q, k, v, o, gate, up, down for 30 layers, then the tied LM head,
// each layer with its own weights (270 MB in all, so they stream from memory as in a real step);
// m rows of A = the batch of sequences being decoded. Best of several timed steps.
//
// Usage: bench_matmul_small_rows [--rows 1,4,10,16] [--seconds S] [--threads T]  (JSON on stdout)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/half.h"
#include "kernels/matmul.h"
#include "kernels/small_rows_bf16.h"

namespace {
using lorahub::Bf16Path;

struct Product {
  int64_t n, k;
  std::vector<uint16_t> weight;
};

// SmolLM2-135M: hidden 576, 9 query heads and 3 key/value heads of 64, MLP 1536, 30 layers,
// vocabulary 49152.
std::vector<Product> smollm2_step_products() {
  const int64_t hidden = 576, kv = 192, mlp = 1536, layers = 30, vocab = 49152;
  std::vector<Product> products;
  for (int64_t l = 0; l < layers; ++l)
    for (auto [n, k] : {std::pair{hidden, hidden},
                        {kv, hidden},
                        {kv, hidden},
                        {hidden, hidden},
                        {mlp, hidden},
                        {mlp, hidden},
                        {hidden, mlp}})
      products.push_back({n, k, {}});
  products.push_back({vocab, hidden, {}});
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
  for (Product& p : products) {
    std::vector<float> w(static_cast<size_t>(p.n * p.k));
    for (float& x : w) x = dist(rng);
    p.weight.resize(w.size());
    lorahub::f32_to_bf16(w.data(), p.weight.data(), w.size());
  }
  return products;
}

double step_seconds(const std::vector<Product>& products, int64_t rows, Bf16Path path,
                    double budget) {
  std::vector<float> a(static_cast<size_t>(rows * 1536), 0.01f),
      c(static_cast<size_t>(rows * 49152));
  auto step = [&] {
    for (const Product& p : products)
      lorahub::matmul_abt_bf16(a.data(), p.weight.data(), c.data(), rows, p.n, p.k, 0.0f, path);
  };
  step();  // warm-up: oneDNN primitive creation, page faults
  double best = 1e30, total = 0;
  for (int runs = 0; runs < 3 || total < budget; ++runs) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::min(best, s);
    total += s;
  }
  return best;
}

std::vector<int64_t> parse_rows(const char* text) {
  std::vector<int64_t> rows;
  for (const char* p = text; *p;) {
    char* end = nullptr;
    rows.push_back(std::strtoll(p, &end, 10));
    p = *end == ',' ? end + 1 : end;
    if (end == p && *p) break;
  }
  return rows;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> rows = {1, 4, 10, 16};
  double seconds = 2.0;
  int threads = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--rows"))
      rows = parse_rows(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--seconds"))
      seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (threads > 0) lorahub::set_compute_threads(threads);
  const std::vector<Product> products = smollm2_step_products();
  double bytes = 0;
  for (const Product& p : products) bytes += 2.0 * p.n * p.k;
  nlohmann::json runs = nlohmann::json::array();
  for (int64_t m : rows)
    for (auto [name, path] : {std::pair{"library", Bf16Path::kLibrary},
                              std::pair{"small-rows", Bf16Path::kSmallRows}}) {
      if (path == Bf16Path::kSmallRows && !lorahub::small_rows_bf16_available()) continue;
      const double s = step_seconds(products, m, path, seconds);
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
