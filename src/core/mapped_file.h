// A read-only memory map of a whole file. Weights are viewed in place, never copied (gemma.cpp).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace lorahub {

class MappedFile {
 public:
  // Throws Error naming the path when the file cannot be opened or mapped.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::byte* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const std::byte> bytes() const { return {data_, size_}; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

// Drops the pages of [data, data + size) of a read-only file mapping from memory (madvise
// MADV_DONTNEED; they are read again from the file on the next access). Only for mappings made by
// MappedFile: on anonymous memory it would zero the data.
void release_file_pages(const void* data, size_t size);

// Reads a whole (small) file into a string; throws Error naming the path.
std::string read_text_file(const std::string& path);

// Writes a file atomically: temp file in the same folder, fsync, rename. Never leaves a partial
// file.
void write_file_atomic(const std::string& path, std::span<const std::byte> data);
void write_file_atomic(const std::string& path, const std::string& text);

// Whether `name` is one of write_file_atomic's temp files (".<name>.tmp<random>").
bool is_temp_file_name(const std::string& name);
// Whether no live writer holds the temp file at `path` (its writer died, e.g. by kill -9).
// write_file_atomic holds a lock on its temp file until the rename.
bool is_abandoned_temp_file(const std::string& path);

}  // namespace lorahub
