// Each subcommand lives in its own file and registers itself here with a static Registrar, so
// adding a subcommand never touches main.cpp.
#pragma once
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

#include "lorahub/check.h"
#include "lorahub/error.h"

namespace lorahub::cli {

// Adds the subcommand to `app`; the subcommand's callback does the work and may throw Error.
using CommandSetup = std::function<void(CLI::App& app)>;

struct CommandEntry {
  std::string name;
  int order;  // position in --help
  CommandSetup setup;
};

std::vector<CommandEntry>& command_registry();

struct Registrar {
  Registrar(std::string name, int order, CommandSetup setup) {
    command_registry().push_back({std::move(name), order, std::move(setup)});
  }
};

// Errors: lorahub::fail / lorahub::check (lorahub/check.h).

// A whole file's bytes; Error "<path>: cannot open: <reason>" when it cannot be read.
std::string read_file(const std::string& path);

// Runs f; an Error from it gets the flag whose value was at fault in front ("--sampler: ..."), so
// that the layers below never need to know the CLI's flag names.
template <typename F>
auto for_flag(const char* flag, F f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", flag, e.what()));
  }
}

}  // namespace lorahub::cli
