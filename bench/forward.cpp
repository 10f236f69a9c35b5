// W3 of issue 5: the engine's teacher-forced forward pass (Model::score, what every LoraHub
// objective evaluation runs) in GFLOP/s. FLOPs are counted for the real tokens only, so time
// spent on padding shows up as lost efficiency rather than as work done.
//
// Usage: bench_forward --model DIR --data FILE.jsonl [--bf16 | --int8] [--seconds S] [--threads T]
// Prints JSON on stdout: seconds per forward (best of the timed runs), FLOPs, GFLOP/s.
#include <algorithm>
#include <chrono>
#include <ctime>

#include <sys/resource.h>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/allocator.h"
#include "core/error.h"
#include "kernels/matmul.h"
#include "models/model.h"

namespace {

using nlohmann::json;

struct Options {
  std::string model, data;
  bool bf16 = false;
  bool int8 = false;  // linear layers as int8 per output channel (LoadOptions::int8)
  double seconds = 10.0;
  int threads = 0;
};

// The architecture numbers the FLOP count needs, from the model's config.json (T5 names).
struct Shape {
  double d_model, d_ff, inner, enc_layers, dec_layers, vocab, ffn_mats;
};

Shape read_shape(const std::string& model_dir) {
  std::ifstream in(model_dir + "/config.json");
  lorahub::check(bool(in), "bench_forward: cannot read {}/config.json", model_dir);
  json c = json::parse(in);
  std::string ffn = c.value("feed_forward_proj", std::string("relu"));
  double layers = c.at("num_layers").get<double>();
  return {c.at("d_model").get<double>(),
          c.at("d_ff").get<double>(),
          c.at("d_kv").get<double>() * c.at("num_heads").get<double>(),
          layers,
          c.value("num_decoder_layers", layers),
          c.at("vocab_size").get<double>(),
          ffn.rfind("gated-", 0) == 0 ? 3.0 : 2.0};
}

// Multiply-adds x 2 of one T5 forward on one example with `n` encoder and `m` decoder tokens.
// Attention counts only the keys a query really sees (bidirectional over n in the encoder and
// in cross-attention; causal, t + 1 keys at step t, in decoder self-attention).
double t5_flops(const Shape& s, double n, double m) {
  double proj = 2 * s.d_model * s.inner;  // one of q, k, v, o for one token
  double ffn = 2 * s.d_model * s.d_ff * s.ffn_mats;
  double encoder = s.enc_layers * n * (4 * proj + ffn + 4 * s.inner * n);
  double causal_keys = m * (m + 1) / 2;
  double decoder = s.dec_layers * (m * (6 * proj + ffn) + n * 2 * proj  // cross K, V
                                   + 4 * s.inner * causal_keys + 4 * s.inner * m * n);
  double lm_head = 2 * s.d_model * s.vocab * m;
  return encoder + decoder + lm_head;
}

std::vector<lorahub::Example> read_examples(const lorahub::Model& model, const std::string& path) {
  std::ifstream in(path);
  lorahub::check(bool(in), "bench_forward: cannot read {}", path);
  std::vector<lorahub::Example> examples;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    json row = json::parse(line, nullptr, false);
    lorahub::check(!row.is_discarded() && row.contains("input") && row.contains("output"),
                   "{}:{}: expected an object with \"input\" and \"output\"", path, number);
    examples.push_back(model.make_example(row["input"], row["output"]));
  }
  lorahub::check(!examples.empty(), "bench_forward: no examples in {}", path);
  return examples;
}

// CPU time of the whole process (all threads), seconds.
double process_cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

// Minor page faults of the process so far (fresh pages of new buffers, first touches).
long page_faults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

struct Timing {
  double seconds = 1e30;      // fastest wall time of one forward
  double cpu_seconds = 1e30;  // least CPU time of one forward (all threads together)
  long page_faults = 0;       // minor page faults of the last forward
  int runs = 0;
};

// Fastest of the timed runs (at least 3, until `budget` seconds): the least disturbed by the
// other processes of a shared machine. The CPU time beside it is what a shared machine measures
// best (with OMP_WAIT_POLICY=PASSIVE it excludes spinning; with a spin it includes it).
Timing best_seconds(lorahub::Model& model, const std::vector<lorahub::Example>& batch,
                    double budget) {
  model.score(batch);  // warm-up: page faults of mmapped weights, buffers, oneDNN JIT
  Timing t;
  double total = 0;
  for (t.runs = 0; t.runs < 3 || total < budget; ++t.runs) {
    const double c0 = process_cpu_seconds();
    const long f0 = page_faults();
    auto t0 = std::chrono::steady_clock::now();
    model.score(batch);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    t.cpu_seconds = std::min(t.cpu_seconds, process_cpu_seconds() - c0);
    t.page_faults = page_faults() - f0;
    t.seconds = std::min(t.seconds, s);
    total += s;
  }
  return t;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      lorahub::check(i + 1 < argc, "bench_forward: {} needs a value", arg);
      return argv[++i];
    };
    if (arg == "--model")
      o.model = value();
    else if (arg == "--data")
      o.data = value();
    else if (arg == "--bf16")
      o.bf16 = true;
    else if (arg == "--int8")
      o.int8 = true;
    else if (arg == "--seconds")
      o.seconds = std::stod(value());
    else if (arg == "--threads")
      o.threads = std::stoi(value());
    else
      lorahub::fail("bench_forward: unknown argument {}", arg);
  }
  lorahub::check(
      !o.model.empty() && !o.data.empty(),
      "usage: bench_forward --model DIR --data FILE.jsonl [--bf16 | --int8] [--seconds S]");
  lorahub::check(!(o.bf16 && o.int8), "bench_forward: --bf16 and --int8 are two paths; pick one");
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  Options o = parse(argc, argv);
  // As api::init_runtime sets them for the CLI (the bench links the models layer only).
  lorahub::keep_freed_memory_for_reuse();
  lorahub::set_compute_threads(o.threads);
  auto model = lorahub::load_model(o.model, {.bf16 = o.bf16, .int8 = o.int8});
  auto batch = read_examples(*model, o.data);
  Shape shape = read_shape(o.model);
  double flops = 0, input_tokens = 0, label_tokens = 0;
  for (const auto& e : batch) {
    flops += t5_flops(shape, double(e.input_ids.size()), double(e.label_ids.size()));
    input_tokens += double(e.input_ids.size());
    label_tokens += double(e.label_ids.size());
  }
  const Timing t = best_seconds(*model, batch, o.seconds);
  json out = {{"dtype", o.int8   ? "int8"
                        : o.bf16 ? "bf16"
                                 : "fp32"},
              {"examples", batch.size()},
              {"input_tokens", input_tokens},
              {"label_tokens", label_tokens},
              {"flops", flops},
              {"seconds", t.seconds},
              {"cpu_seconds", t.cpu_seconds},
              {"threads", lorahub::compute_threads()},
              {"page_faults", t.page_faults},
              {"runs", t.runs},
              {"gflops", flops / t.seconds / 1e9},
              // per thread's CPU second times the threads: the rate on unshared cores
              {"cpu_gflops", flops / (t.cpu_seconds / lorahub::compute_threads()) / 1e9}};
  std::printf("%s\n", out.dump(1).c_str());
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_forward: error: %s\n", e.what());
  return 1;
}
