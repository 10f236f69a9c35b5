// Which adapters count as made for the model they are applied to (a mismatch is warned about).
#include <gtest/gtest.h>

#include "lora/base_model.h"

namespace lorahub {
namespace {

TEST(BaseModel, HubIdMatchesTheModelFolderOrFile) {
  EXPECT_TRUE(base_model_matches("google/flan-t5-large", "/models/flan-t5-large"));
  EXPECT_TRUE(base_model_matches("google/flan-t5-large", "models/FLAN-T5-large/"));
  EXPECT_TRUE(base_model_matches("HuggingFaceTB/SmolLM2-135M-Instruct",
                                 "/m/SmolLM2-135M-Instruct-Q8_0.gguf"));
  EXPECT_TRUE(base_model_matches("", "/models/anything"));  // the adapter does not say
}

TEST(BaseModel, OtherModelsDoNotMatch) {
  EXPECT_FALSE(base_model_matches("google/flan-t5-large", "/m/SmolLM2-135M-Instruct-Q8_0.gguf"));
  EXPECT_FALSE(base_model_matches("google/flan-t5-large", "/models/t5-small"));
  EXPECT_FALSE(base_model_matches("HuggingFaceTB/SmolLM2-135M", "/models/flan-t5-large"));
}

}  // namespace
}  // namespace lorahub
