// A state dict: tensors by name, in the order the file lists them, each keeping its storage
// (an mmap'd file or an owned buffer) alive. What model loaders and the lora layer consume.
#pragma once
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/tensor.h"

namespace lorahub {

class StateDict {
 public:
  explicit StateDict(std::string source = "state dict") : source_(std::move(source)) {}

  // Throws when the name is already present.
  void add(std::string name, Tensor tensor);

  // Throws "<source>: no tensor named 'name'".
  const Tensor& get(const std::string& name) const;
  const Tensor* find(const std::string& name) const;  // nullptr when absent
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }

  const std::vector<std::string>& names() const { return names_; }  // insertion order
  size_t size() const { return names_.size(); }
  bool empty() const { return names_.empty(); }
  const std::string& source() const { return source_; }  // file or directory, for messages

 private:
  std::string source_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, Tensor> tensors_;
};

// One weights file, by content: safetensors, or a PyTorch zip checkpoint (.bin, torch.save).
StateDict load_state_dict_file(const std::string& path);

// A Hugging Face model directory: model.safetensors, a sharded model.safetensors.index.json,
// pytorch_model.bin, or a sharded pytorch_model.bin.index.json, in that order of preference.
StateDict load_model_weights(const std::string& dir);

// Writes all tensors in order (see write_safetensors).
void save_safetensors(const std::string& path, const StateDict& dict,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace lorahub
