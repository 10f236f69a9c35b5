// The process-wide compute settings (threads, allocator, OpenMP wait policy), made once by
// whoever uses the engine: the CLI's main calls init_runtime() as any library user does.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "api/internal.h"
#include "core/allocator.h"
#include "core/version.h"
#include "kernels/dispatch.h"
#include "kernels/matmul.h"

namespace lorahub::api {

namespace {

std::atomic<bool> initialized{false};

// libgomp reads its wait policy once, when it is loaded (before main). Its default lets idle
// threads spin for ~300k rounds, which on a busy 2-core machine made a forward pass up to 75x
// slower (bench/README.md); OMP_WAIT_POLICY=PASSIVE (sleep at once) fixes that but costs a
// wake-up per parallel region: SmolLM2 generation took 7.9 s instead of 6.5 s on a quiet machine.
// A short spin keeps the speed of spinning without burning a busy machine. 3000 rounds (tens of
// µs: more than the serial gap between a decoding step's parallel regions): at 30000 (about a
// millisecond of PAUSE per wait) a 2-thread SmolLM2 decode at load 12 on 2 cores spent 213 ms
// of CPU and 553 ms per token spinning, against 27 ms and 87 ms at 3000 (session 11, AMD EPYC).
// When the user has chosen neither, the process re-runs itself once with it (its command line from
// /proc/self/cmdline); if that fails it carries on with the default.
void prefer_short_omp_spin() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string cmdline{std::istreambuf_iterator<char>(in), {}};
  ::setenv("GOMP_SPINCOUNT", "3000", 1);
  if (cmdline.empty()) return;
  std::vector<char*> argv;
  for (size_t at = 0; at < cmdline.size(); at = cmdline.find('\0', at) + 1) {
    argv.push_back(const_cast<char*>(cmdline.c_str() + at));
    if (cmdline.find('\0', at) == std::string::npos) break;
  }
  argv.push_back(nullptr);
  ::execv("/proc/self/exe", argv.data());  // returns only on failure
}

}  // namespace

void init_runtime(const RuntimeOptions& options) {
  const bool first = !initialized.exchange(true);
  if (first && options.spin_wait) prefer_short_omp_spin();
  if (first && options.tune_allocator) keep_freed_memory_for_reuse();
  set_compute_threads(options.threads);
}

// The implicit call never re-executes the process: a library user (Python, a server) did not
// ask for it, and only an explicit init_runtime(spin_wait = true) does.
void ensure_runtime() {
  if (initialized.load()) return;
  RuntimeOptions defaults;
  defaults.spin_wait = false;
  init_runtime(defaults);
}

std::string version() {
  return kEngineVersion;  // the one version: what cached results are keyed by
}

std::string cpu_dispatch() {
  return simd_dispatch();
}

}  // namespace lorahub::api
