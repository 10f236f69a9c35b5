// Validation of an uploaded LoRA module before anything is stored. The adapter files are laid
// out in a private scratch folder and read with the formats layer's PEFT reader, exactly as
// `lorahub learn` will read them: adapter_config.json must parse as a LoRA config and the
// weights (adapter_model.safetensors, or the legacy torch adapter_model.bin) must parse and pair
// up with shapes that agree with r. Returns what the hub records about the module.
#pragma once
#include <string>
#include <vector>

#include "hub/meta_store.h"

namespace lorahub::hub {

struct UploadedFile {
  std::string path;
  std::string content;
};

// Throws Error naming the uploaded file and the field or tensor at fault. Fills base_model,
// rank, alpha and targets. `scratch_root` is a folder the caller owns (ROOT/uploads).
ModuleMeta inspect_module(const std::vector<UploadedFile>& files, const std::string& scratch_root);

// Removes scratch folders that a crashed server left in `scratch_root` (older than an hour, so
// that other servers sharing the root keep theirs).
void remove_stale_scratch(const std::string& scratch_root);

}  // namespace lorahub::hub
