// Any byte string given to the restricted pickle machine either throws lorahub::Error or yields
// tensors whose bytes lie inside their storages; storages are zero-filled buffers of the size
// the pickle asks for (capped, so the fuzzer explores parsing rather than allocation).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "formats/torch_pickle.h"

namespace {
lorahub::TorchStorage zero_storage(const std::string& key, lorahub::DType dtype, uint64_t numel) {
  constexpr uint64_t kMaxElements = 1 << 16;
  lorahub::check(numel <= kMaxElements, "storage '{}' too large for fuzzing", key);
  return {dtype, std::make_shared<std::vector<std::byte>>(numel * lorahub::dtype_size(dtype))};
}
}  // namespace

// Where the checksum of the touched bytes goes, so that reading them is not optimised away.
volatile uint8_t g_sink;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const auto dict = lorahub::parse_torch_pickle(bytes, "fuzz.pkl", zero_storage);
    uint8_t sum = 0;
    for (const auto& name : dict.names()) {
      const auto& t = dict.get(name);
      for (size_t i = 0; i < t.nbytes(); ++i) sum ^= static_cast<uint8_t>(t.data[i]);
    }
    g_sink = sum;
  } catch (const lorahub::Error&) {
  }
  return 0;
}
