// A module's retrieval embedding as a hub stores it (issue 18): `lorahub_embedding.json` in the
// module's folder / repo, so that `lorahub learn --hub --select retrieval:K` ranks a hub's modules
// from these small files and downloads only the K it keeps. The vector is what retrieval computes
// locally for the module (eval/selection.h: the mean over the module's examples.jsonl inputs of
// the base model's mean last hidden state), under the base model named by its SHA-256:
//   {"format": "lorahub.module-embedding.v1", "method": "mean-hidden-state", "examples": 20,
//    "base_model": "<adapter_config's base_model_name_or_path>", "model_sha256": "<64 hex>",
//    "engine": "0.1.0+numerics.3", "vector": [f32, ...]}
// The file comes from untrusted uploaders: parsing bounds its size and checks every field.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lorahub {

inline constexpr const char* kModuleEmbeddingFile = "lorahub_embedding.json";
inline constexpr const char* kModuleEmbeddingFormat = "lorahub.module-embedding.v1";
inline constexpr const char* kModuleEmbeddingMethod = "mean-hidden-state";
inline constexpr size_t kMaxModuleEmbeddingBytes = 2u << 20;  // a 65536-wide vector fits
inline constexpr size_t kMaxModuleEmbeddingDim = 65536;       // wider than any model's hidden size

struct ModuleEmbedding {
  std::vector<float> vector;
  std::string base_model;    // the module's declared base model (adapter_config.json)
  std::string model_sha256;  // content_sha256_hex of the model file / folder it was computed with
  std::string engine;        // the engine version that computed it
  std::string method = kModuleEmbeddingMethod;
  int64_t examples = 0;  // how many of the module's example inputs were averaged
};

// Throws Error ("lorahub_embedding.json: ...") for a file over kMaxModuleEmbeddingBytes, invalid
// JSON or UTF-8, an unknown format or method, a missing or wrongly typed field, a vector that is
// empty, wider than kMaxModuleEmbeddingDim, all zeros, or holds a value that is not a finite f32.
ModuleEmbedding parse_module_embedding(std::string_view text);
// The file's text (floats written so that parsing gives the same f32 values back).
std::string module_embedding_json(const ModuleEmbedding& embedding);

}  // namespace lorahub
