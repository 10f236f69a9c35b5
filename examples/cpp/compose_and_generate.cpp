// Loads a model, composes LoRA modules with weights, scores (input, output) pairs and generates
// from the inputs with the composition, printing one JSON-like line per result:
//   compose_and_generate MODEL W1,W2,... INPUTS_FILE OUTPUTS_FILE MODULE...
// INPUTS_FILE/OUTPUTS_FILE: one text per line. Exits 1 with the library's message on any error.
#include <lorahub/check.h>  // lorahub::check over {fmt}, which find_package(lorahub) brings
#include <lorahub/lorahub.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  lorahub::check(in.good(), "{}: cannot open", path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<double> parse_weights(const std::string& list) {
  std::vector<double> w;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    char* end = nullptr;
    const double value = std::strtod(item.c_str(), &end);
    lorahub::check(!item.empty() && *end == '\0', "weight '{}' of '{}' is not a number", item,
                   list);
    w.push_back(value);
  }
  return w;
}

// The text as a JSON string (the example's output is parsed by its test).
std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

}  // namespace

int main(int argc, char** argv) try {
  if (argc < 6) {
    std::fprintf(stderr, "usage: %s MODEL W1,W2,... INPUTS OUTPUTS MODULE...\n", argv[0]);
    return 2;
  }
  namespace api = lorahub::api;
  api::init_runtime({.threads = 0, .tune_allocator = true, .spin_wait = false});
  const auto model = api::Model::load(argv[1]);
  const api::ModuleSet modules = api::ModuleSet::load({argv + 5, argv + argc});
  const auto adapter = modules.compose(parse_weights(argv[2]));
  const std::vector<std::string> inputs = read_lines(argv[3]);
  const std::vector<std::string> outputs = read_lines(argv[4]);

  api::Session session(model, adapter);
  for (const api::ExampleScore& s : session.score(inputs, outputs))
    std::printf("{\"loss\": %.9g, \"tokens\": %lld}\n", s.loss_sum / static_cast<double>(s.tokens),
                static_cast<long long>(s.tokens));
  api::GenerationOptions options;
  options.max_new_tokens = 8;
  for (const api::Generation& g : session.generate(inputs, options))
    std::printf("{\"text\": %s, \"finish\": \"%s\"}\n", quoted(g.text).c_str(),
                g.finish_reason.c_str());
  std::printf("{\"version\": \"%s\"}\n", api::version().c_str());
  return 0;
} catch (const lorahub::Error& e) {
  std::fprintf(stderr, "compose_and_generate: error: %s\n", e.what());
  return 1;
}
