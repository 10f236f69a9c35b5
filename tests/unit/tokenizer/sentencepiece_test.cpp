// Bad SentencePiece model files give an Error naming the file (the ids themselves are checked
// against transformers in tests/parity/test_spm_tokenizer.py).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/error.h"
#include "tokenizer/sentencepiece.h"

namespace lorahub {
namespace {

std::string expect_error(const std::string& path) {
  try {
    SentencePieceTokenizer::load(path);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error for " << path;
  return "";
}

TEST(SentencePieceMalformed, MissingFile) {
  const std::string path = "/nonexistent/dir/spiece.model";
  EXPECT_NE(expect_error(path).find(path), std::string::npos);
}

TEST(SentencePieceMalformed, GarbageFile) {
  const auto path = std::filesystem::temp_directory_path() / "lorahub_garbage_spiece.model";
  for (const std::string& bytes :
       {std::string("not a model"), std::string(""), std::string("\x0a\xff\xff\xff\xff\x0f", 6)}) {
    std::ofstream(path, std::ios::binary) << bytes;
    EXPECT_NE(expect_error(path.string()).find(path.string()), std::string::npos);
  }
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace lorahub
