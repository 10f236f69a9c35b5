// llama.cpp's LoRA adapter files (what its convert_lora_to_gguf.py writes and
// llama_adapter_lora_init reads): a GGUF with general.type = "adapter", adapter.type = "lora",
// adapter.lora.alpha (f32; 0 means scale 1) and general.architecture = the base model's. For each
// adapted weight W of the base GGUF, "<W's name>.lora_a" with ne [in, r] and "<W's name>.lora_b"
// with ne [r, out]: as PyTorch sees them [r, in] and [out, r], PEFT's lora_A and lora_B unchanged,
// except that the rows of B for Llama's q/k projections are permuted like the base's q/k
// (models/gguf_weights.h). llama.cpp scales by alpha / r, with r = lora_b's ne[0].
#pragma once
#include <string>

#include "lora/module_set.h"

namespace lorahub {

// Whether a module path names a GGUF LoRA file rather than a PEFT directory.
bool is_gguf_lora_path(const std::string& path);

// Loads a GGUF LoRA as a module under transformers' names (through the DecoderSpec name
// tables), keyed like a PEFT adapter of the same targets, so that it composes with PEFT modules.
// base_model (a GGUF file or HF directory) may be empty, except for a Llama adapter of q/k
// projections: undoing llama.cpp's row permutation needs the base's head counts. Throws Error
// naming the file and tensor for a model GGUF, a non-LoRA adapter, a tensor that is not a
// .lora_a/.lora_b pair, shapes that disagree, an architecture other than the base's.
LoraModule load_gguf_lora(const std::string& path, const std::string& base_model = "");

// Writes `module` as a GGUF LoRA for `base_model` (a GGUF file or HF directory of a decoder
// model) that llama.cpp loads with lora_path / --lora: F32 tensors under the base's GGUF names,
// adapter.lora.alpha = the module's scaling × r (a layer whose scaling differs has it folded into
// its B). With a GGUF base, every target must be a tensor of that file, shapes matching.
void save_gguf_lora(const LoraModule& module, const std::string& path,
                    const std::string& base_model);

}  // namespace lorahub
