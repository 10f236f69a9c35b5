// Decoder-only architectures as configuration of one decoder (models/llama.cpp): what differs
// between Llama, Mistral, Qwen2, Qwen3, Phi-3, SmolLM2 and Gemma 3 is data here — norm placement
// and offset, q/k norms, embedding scale, sliding/global layers with their RoPE bases, attention
// scale, soft-capping, activation, fused projections, biases, tied head — read from an HF
// config.json or from GGUF metadata, plus one table per architecture naming each tensor of a
// block in transformers and in llama.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "formats/hf_config.h"
#include "kernels/ops.h"
#include "kernels/rope.h"

namespace lorahub {

// The tensors of one decoder block, by what they do.
enum class BlockTensor {
  AttnNorm,      // before attention (all)
  PostAttnNorm,  // on the attention output, before the residual add (Gemma)
  FfnNorm,       // before the feed-forward (all)
  PostFfnNorm,   // on the feed-forward output (Gemma)
  QNorm,         // RMSNorm over each query head (Qwen3, Gemma 3)
  KNorm,
  Q,
  K,
  V,
  Qkv,  // q, k, v in one projection (Phi-3)
  O,
  Gate,
  Up,
  GateUp,  // gate and up in one projection (Phi-3)
  Down,
};

struct BlockTensorName {
  BlockTensor tensor;
  const char* hf;    // module under model.layers.<i>.
  const char* gguf;  // tensor under blk.<i>.
};

struct RopeSpec {
  double theta = 10000.0;
  RopeScaling scaling;
};

struct DecoderSpec {
  std::string architecture = "llama";  // llama, mistral, qwen2, qwen3, phi3, gemma3_text
  int64_t vocab_size = 0, hidden = 0, intermediate = 0, layers = 0;
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  float eps = 1e-6f;

  bool sandwich_norms = false;  // Gemma: PostAttnNorm and PostFfnNorm around both sub-layers
  bool norm_plus_one = false;   // Gemma: RMSNorm scales by (1 + w); HF files hold w
  bool qk_norm = false;         // Qwen3, Gemma 3
  bool qkv_bias = false;        // Qwen2, or attention_bias
  bool o_bias = false;          // attention_bias (Llama), which Qwen2 does not have
  bool fused_qkv = false, fused_gate_up = false;  // Phi-3
  Activation act = Activation::Silu;              // Gemma: GELU (tanh)
  float embed_scale = 1.0f;                       // Gemma: sqrt(hidden)
  float attn_scale = 0.0f;                        // 1/sqrt(head_dim), Gemma: query_pre_attn_scalar
  float final_softcap = 0.0f;                     // > 0: logits become cap·tanh(logits/cap)
  bool tied_embeddings = false;

  RopeSpec rope;            // global (full-attention) layers, and every layer by default
  bool local_rope = false;  // sliding layers use rope_local instead (Gemma 3)
  RopeSpec rope_local;
  int64_t sliding_window = 0;    // > 0 on sliding layers: keys within this many positions
  std::vector<bool> sliding;     // [layers]
  std::vector<int32_t> eos_ids;  // generation stops at any of these

  const std::vector<BlockTensorName>& names() const;
  // The module name (under model.layers.<i>.) of a block tensor; throws if the architecture has
  // none.
  std::string hf_name(BlockTensor tensor) const;
  const RopeSpec& rope_of(int64_t layer) const {
    return local_rope && sliding[layer] ? rope_local : rope;
  }
  int64_t window_of(int64_t layer) const { return sliding[layer] ? sliding_window : 0; }

  static DecoderSpec from_hf(const HfConfig& config);
  static DecoderSpec from_gguf(const GgufFile& gguf);
  void validate(const std::string& source) const;
};

// The ids generation stops at in a GGUF model, as llama.cpp's llama_vocab_is_eog decides (eos
// first; empty when the file names none).
std::vector<int32_t> end_of_generation_ids(const GgufFile& gguf);

// config.json model_type values the decoder loads.
bool is_decoder_architecture(const std::string& model_type);

// The transformers name of a llama.cpp tensor ("blk.3.attn_q.weight" ->
// "model.layers.3.self_attn.q_proj.weight") in this architecture; throws naming the file.
std::string hf_name_for_gguf(const std::string& gguf_name, const DecoderSpec& spec,
                             const std::string& path);
// The inverse: llama.cpp's name of a transformers tensor ("model.layers.3.self_attn.q_proj.weight"
// -> "blk.3.attn_q.weight"); throws naming `source` for a tensor llama.cpp has no name for.
std::string gguf_name_for_hf(const std::string& hf_name, const DecoderSpec& spec,
                             const std::string& source);
// general.architecture in llama.cpp's files for a spec's architecture (gemma3_text -> gemma3;
// Mistral is converted as llama).
std::string gguf_architecture(const DecoderSpec& spec);
// The inverse of the mapping above (gemma3 -> gemma3_text); throws naming `source` for an
// architecture the decoder does not know.
std::string architecture_from_gguf(const std::string& gguf_arch, const std::string& source);

}  // namespace lorahub
