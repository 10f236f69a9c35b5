// What the decoding-step benchmarks (matmul_small_rows.cpp, decode_quant_step.cpp) share: the
// products of one SmolLM2-135M decoding step, the best-of timing loop, comma-separated lists.
#pragma once
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace lorahub::bench {

// SmolLM2-135M: hidden 576, 9 query heads and 3 key/value heads of 64, MLP 1536, 30 layers,
// vocabulary 49152. One {n, k} (output features, input features) per product: q, k, v, o, gate,
// up, down for each layer, then the tied LM head.
inline constexpr int64_t kHidden = 576, kMlp = 1536, kVocab = 49152;
inline std::vector<std::pair<int64_t, int64_t>> smollm2_step_shapes() {
  const int64_t kv = 192, layers = 30;
  std::vector<std::pair<int64_t, int64_t>> shapes;
  for (int64_t l = 0; l < layers; ++l)
    for (auto s : {std::pair{kHidden, kHidden},
                   {kv, kHidden},
                   {kv, kHidden},
                   {kHidden, kHidden},
                   {kMlp, kHidden},
                   {kMlp, kHidden},
                   {kHidden, kMlp}})
      shapes.push_back(s);
  shapes.push_back({kVocab, kHidden});
  return shapes;
}

inline double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

struct Timing {
  double wall, cpu;  // best of the timed steps, each (CPU: all threads, spinning included)
};

// Runs step once to warm up (page faults, thread pool, oneDNN primitives), then at least 3 times
// and until `budget` seconds have passed; the best of those.
template <typename F>
Timing best_step(F step, double budget) {
  step();
  Timing best{1e30, 1e30};
  double total = 0;
  for (int runs = 0; runs < 3 || total < budget; ++runs) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_seconds();
    step();
    const double cpu = cpu_seconds() - c0;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best.wall = std::min(best.wall, s);
    best.cpu = std::min(best.cpu, cpu);
    total += s;
  }
  return best;
}

// "1,8,16" -> {"1", "8", "16"}; empty items are skipped.
inline std::vector<std::string> split_list(const char* text) {
  std::vector<std::string> out;
  std::string cur;
  for (const char* p = text;; ++p) {
    if (*p == ',' || *p == 0) {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (*p == 0) break;
    } else {
      cur += *p;
    }
  }
  return out;
}

// The flags both take: --rows 1,8,... (how many sequences decode together), --seconds S (the
// timing budget per run), --threads T (0: the engine's default).
struct StepArgs {
  std::vector<int64_t> rows;
  double seconds = 2.0;
  int threads = 0;
};
// Reads those, and --NAME A,B,... into each of `lists`; false (with a message) for another flag.
inline bool parse_step_args(
    int argc, char** argv, StepArgs& args,
    const std::vector<std::pair<const char*, std::vector<std::string>*>>& lists = {}) {
  for (int i = 1; i < argc; i += 2) {
    const char* flag = argv[i];
    if (i + 1 == argc) {  // a flag without its value (or --help): not silently ignored
      std::fprintf(stderr, "option %s needs a value (usage: the bench source's first lines)\n",
                   flag);
      return false;
    }
    const char* value = argv[i + 1];
    auto list = std::find_if(lists.begin(), lists.end(), [&](const auto& l) {
      return flag[0] == '-' && flag[1] == '-' && !std::strcmp(flag + 2, l.first);
    });
    if (!std::strcmp(flag, "--rows")) {
      args.rows.clear();
      for (const std::string& r : split_list(value)) args.rows.push_back(std::atoll(r.c_str()));
    } else if (!std::strcmp(flag, "--seconds")) {
      args.seconds = std::atof(value);
    } else if (!std::strcmp(flag, "--threads")) {
      args.threads = std::atoi(value);
    } else if (list != lists.end()) {
      *list->second = split_list(value);
    } else {
      std::fprintf(stderr, "unknown option %s\n", flag);
      return false;
    }
  }
  return true;
}

}  // namespace lorahub::bench
