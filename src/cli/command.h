// Each subcommand lives in its own file and registers itself here with a static Registrar, so
// adding a subcommand never touches main.cpp.
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

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

}  // namespace lorahub::cli
