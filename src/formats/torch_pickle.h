// PyTorch checkpoints (torch.save, the legacy pytorch_model.bin / adapter_model.bin): a zip
// archive holding <prefix>/data.pkl (a pickle of the state dict) and <prefix>/data/<key> (raw
// storages). The pickle is read by a restricted machine that knows only what a state dict
// needs: dicts / OrderedDict, torch._utils._rebuild_tensor_v2 (and _rebuild_parameter),
// torch.*Storage types in persistent ids, and the opcodes these use. Any other global
// (os.system, builtins.eval, ...) is refused when it is named; nothing is ever called.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "formats/state_dict.h"

namespace lorahub {

// Raw bytes of one storage, shared by every tensor that views it.
struct TorchStorage {
  DType dtype = DType::U8;
  std::shared_ptr<const std::vector<std::byte>> bytes;
};

// Fetches storage `key` holding `numel` elements of `dtype` (from the zip, or a test double).
using TorchStorageLoader =
    std::function<TorchStorage(const std::string& key, DType dtype, uint64_t numel)>;

// Runs the restricted pickle machine over `pickle`; the result must be a dict of tensors.
// `source` names the file in errors. Exposed for the unit tests and the fuzzer.
StateDict parse_torch_pickle(std::span<const std::byte> pickle, const std::string& source,
                             const TorchStorageLoader& load_storage);

// A torch.save zip archive in memory (e.g. an mmap'd file). Storages are copied out, so the
// archive bytes need not outlive the result.
StateDict load_torch_zip(std::span<const std::byte> archive, const std::string& source);

// A torch.save file (zip format, PyTorch >= 1.6).
StateDict load_torch_bin(const std::string& path);

}  // namespace lorahub
