// lorahub inspect PATH [--json] [--sha256]: what a weights file, model directory or PEFT adapter
// directory holds. One small function per kind of input; `inspect_path` picks by what is there.
//   --json     exactly one JSON object on stdout:
//              {"path", "kind", "tensors": [{"name", "dtype", "shape"[, "sha256"]}],
//               "metadata": {..} (safetensors header), "adapter": {...} | null,
//               "end_of_generation_ids": [...] (GGUF models: what generation stops at) | null}
//   --sha256   hash each tensor's raw bytes (as stored), to compare files bit for bit
//   GGUF files only (to compare our dequantization with gguf-py's, bit for bit):
//   --f32-sha256       hash each tensor's values as f32 (little-endian), dequantized
//   --dequantize OUT   write every tensor as f32 to the safetensors file OUT (GGUF names and
//                      PyTorch-order shapes)
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <string>

#include "cli/command.h"
#include "lorahub/lorahub.h"

namespace lorahub::cli {
namespace {

struct InspectOptions {
  std::string path;
  bool json = false;
  bool sha256 = false;
  bool f32_sha256 = false;
  std::string dequantize_to;
};

void print_json(const std::string& path, const api::Inspection& in) {
  nlohmann::ordered_json out;
  out["path"] = path;
  out["kind"] = in.kind;
  out["tensors"] = nlohmann::ordered_json::array();
  for (const auto& t : in.tensors) {
    nlohmann::ordered_json row{{"name", t.name}, {"dtype", t.dtype}, {"shape", t.shape}};
    if (!t.sha256.empty()) row["sha256"] = t.sha256;
    if (!t.f32_sha256.empty()) row["f32_sha256"] = t.f32_sha256;
    out["tensors"].push_back(std::move(row));
  }
  out["metadata"] = nlohmann::ordered_json::parse(in.metadata_json);
  out["adapter"] = in.adapter_json.empty() ? nlohmann::ordered_json()
                                           : nlohmann::ordered_json::parse(in.adapter_json);
  out["end_of_generation_ids"] = in.end_of_generation_ids
                                     ? nlohmann::ordered_json(*in.end_of_generation_ids)
                                     : nlohmann::ordered_json();
  std::cout << out.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << '\n';
}

std::string or_unset(const std::string& text) {
  return text.empty() ? "(unset)" : text;
}

void print_adapter_text(const nlohmann::json& c) {
  const nlohmann::json& t = c["target_modules"];
  const std::string targets =
      t.is_string() ? fmt::format("regex {}", t.get<std::string>())
                    : fmt::format("{}", fmt::join(t.get<std::vector<std::string>>(), ", "));
  fmt::print("PEFT {} adapter: r={} lora_alpha={} rslora={} targets: {} ({} modules adapted)\n",
             c["peft_type"].get<std::string>(), c["r"].get<int64_t>(),
             c["lora_alpha"].get<double>(), c["use_rslora"].get<bool>(), targets,
             c["num_targets"].get<size_t>());
  fmt::print("  base model: {}\n  task type: {}\n",
             or_unset(c["base_model_name_or_path"].get<std::string>()),
             or_unset(c["task_type"].get<std::string>()));
  if (!c["rank_pattern"].empty() || !c["alpha_pattern"].empty())
    fmt::print("  rank_pattern: {}  alpha_pattern: {}\n", c["rank_pattern"].dump(),
               c["alpha_pattern"].dump());
}

void print_text(const std::string& path, const api::Inspection& in) {
  fmt::print("{} ({}): {} tensors\n", path, in.kind, in.tensors.size());
  if (!in.adapter_json.empty()) print_adapter_text(nlohmann::json::parse(in.adapter_json));
  const auto metadata = nlohmann::ordered_json::parse(in.metadata_json);
  for (const auto& [key, value] : metadata.items())
    fmt::print("  metadata {} = {}\n", key,
               value.is_string() ? value.get<std::string>() : value.dump().substr(0, 200));
  int64_t params = 0;
  for (const auto& t : in.tensors) {
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    params += numel;
    fmt::print("  {:<60} {:<5} [{}]{}\n", t.name, t.dtype, fmt::join(t.shape, ", "),
               t.sha256.empty() ? "" : "  " + t.sha256);
  }
  fmt::print("{} parameters\n", params);
}

void run(const InspectOptions& o) {
  if (!o.dequantize_to.empty()) {
    check(api::is_gguf_file(o.path), "{}: --dequantize is for GGUF files", o.path);
    api::dequantize_gguf(o.path, o.dequantize_to);
    fmt::print(stderr, "wrote {} (every tensor of {} as f32)\n", o.dequantize_to, o.path);
    return;
  }
  api::Inspection in;
  try {
    in = api::inspect(o.path, {.sha256 = o.sha256, .f32_sha256 = o.f32_sha256});
  } catch (const api::OptionError& e) {
    if (e.option() != "f32_sha256") throw;
    fail("{}: --f32-sha256 is for GGUF files", o.path);
  }
  if (o.json)
    print_json(o.path, in);
  else
    print_text(o.path, in);
}

const Registrar reg("inspect", 10, [](CLI::App& app) {
  auto opts = std::make_shared<InspectOptions>();
  auto* cmd = app.add_subcommand(
      "inspect",
      "List the tensors of a safetensors / .bin / GGUF file, model dir or PEFT adapter dir");
  cmd->add_option("path", opts->path, "File or directory")->required();
  cmd->add_flag("--json", opts->json, "Print one JSON object");
  cmd->add_flag("--sha256", opts->sha256, "Add the SHA-256 of each tensor's raw bytes");
  cmd->add_flag("--f32-sha256", opts->f32_sha256,
                "GGUF: add the SHA-256 of each tensor dequantized to f32 (as gguf-py does)");
  cmd->add_option("--dequantize", opts->dequantize_to,
                  "GGUF: write every tensor dequantized to f32 into this safetensors file");
  cmd->callback([opts] { run(*opts); });
});

}  // namespace
}  // namespace lorahub::cli
