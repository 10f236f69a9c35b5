// lorahub: LoraHub in C++. Parses the command line, runs a subcommand, and turns any error into
// one clear line on stderr and a non-zero exit.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <string>

#include "cli/command.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
std::vector<CommandEntry>& command_registry() {
  static std::vector<CommandEntry> registry;
  return registry;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open: {}", path, std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace lorahub::cli

namespace {
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
  // Threads, allocator and OpenMP wait policy, as any user of the library sets them (this may
  // re-run the process once with a short OpenMP spin; see api::init_runtime).
  lorahub::api::init_runtime();
  CLI::App app{"lorahub: compose LoRA modules for unseen tasks from a few examples (LoraHub)"};
  app.set_version_flag("--version", "lorahub " + lorahub::api::version());
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
