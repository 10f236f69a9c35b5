// lorahub: LoraHub in C++. Parses the command line, runs a subcommand, and turns any error into
// one clear line on stderr and a non-zero exit.
#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "cli/command.h"
#include "core/allocator.h"
#include "core/error.h"

namespace lorahub::cli {
std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}
}  // namespace lorahub::cli

namespace {
// libgomp reads its wait policy once, when it is loaded (before main). Its default lets idle
// threads spin for ~300k rounds, which on a busy 2-core machine made a forward pass up to 75x
// slower (bench/README.md); OMP_WAIT_POLICY=PASSIVE (sleep at once) fixes that but costs a
// wake-up per parallel region: SmolLM2 generation took 7.9 s instead of 6.5 s on a quiet machine.
// A short spin (GOMP_SPINCOUNT=30000, some microseconds) keeps the speed of spinning without
// burning a busy machine. When the user has chosen neither, re-run ourselves once with it.
void prefer_short_omp_spin(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  ::setenv("GOMP_SPINCOUNT", "30000", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: carry on with the default policy
}
// CLI11 answers a mistyped command with "A subcommand is required"; name it instead.
void check_command_name(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return;
  std::string known;
  for (const auto& entry : lorahub::cli::command_registry()) {
    if (entry.name == argv[1]) return;
    known += (known.empty() ? "" : ", ") + entry.name;
  }
  lorahub::fail("unknown command '{}' (commands: {})", argv[1], known);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace lorahub::cli;
  prefer_short_omp_spin(argv);
  lorahub::keep_freed_memory_for_reuse();
  CLI::App app{"lorahub: compose LoRA modules for unseen tasks from a few examples (LoraHub)"};
  app.set_version_flag("--version", std::string("lorahub ") + LORAHUB_VERSION);
  app.require_subcommand(1);
  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const auto& a, const auto& b) { return a.order < b.order; });
  for (auto& entry : registry) entry.setup(app);
  try {
    check_command_name(argc, argv);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version print and exit 0; any other option error is one line and exit 1,
    // like every other error (CLI11 would add a second line and exit with its own codes).
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "lorahub: error: %s (see --help)\n", e.what());
    return 1;
  } catch (const lorahub::Error& e) {
    std::fprintf(stderr, "lorahub: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "lorahub: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lorahub: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
