// Module embeddings for retrieval over a hub (formats/module_embedding.h): computed for a module
// folder under a model, and read back from a hub's listing so that `learn --hub --select
// retrieval:K` downloads only the modules it keeps.
#include <filesystem>

#include "api/internal.h"
#include "core/mapped_file.h"
#include "eval/selection.h"
#include "formats/module_embedding.h"

namespace lorahub::api {

std::string write_module_embedding(const Model& model, const std::string& module_dir) {
  ensure_runtime();
  const ModuleEmbedding e = compute_module_embedding(engine(model), model.path(), module_dir);
  const std::string path = (std::filesystem::path(module_dir) / kModuleEmbeddingFile).string();
  write_file_atomic(path, module_embedding_json(e));
  return path;
}

std::vector<RemoteModule> hub_retrieval_pool(const std::string& endpoint,
                                             const hub::HubFilter& filter,
                                             const std::string& cache_dir) {
  std::vector<RemoteModule> pool;
  for (hub::ListedModule& m : hub::list_module_embeddings(endpoint, filter)) {
    RemoteModule r;
    r.name = m.repo + "@" + m.sha;
    r.embedding = std::move(m.embedding);
    r.fetch = [endpoint, cache_dir, repo = m.repo, sha = m.sha] {
      return hub::fetch_module(endpoint, repo, sha, cache_dir);
    };
    pool.push_back(std::move(r));
  }
  return pool;
}

}  // namespace lorahub::api
