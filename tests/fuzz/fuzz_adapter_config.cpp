// adapter_config.json text (and so the shared JSON guard and HfConfig getters): every input
// either parses or throws lorahub::Error; parsed configs can be asked for any module's scaling.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "formats/peft_adapter.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto config = lorahub::parse_adapter_config(text, "fuzz/adapter_config.json");
    volatile double s = config.scaling_for("encoder.block.0.layer.0.SelfAttention.q");
    (void)s;
    lorahub::parse_adapter_config(lorahub::adapter_config_to_json(config), "round trip");
  } catch (const lorahub::Error&) {
  }
  return 0;
}
