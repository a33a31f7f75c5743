// A whole file mapped read-only into memory. Tensors are views into it; nothing is copied.
#pragma once

#include <cstdint>
#include <string>

namespace dg {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws dg::Error with the OS reason
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  // Drops the whole pages inside [p, p + n) from this process's resident memory; a later read
  // maps them in again from the file (they are never written). No-op without mmap.
  void release(const uint8_t* p, uint64_t n) const;

 private:
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;  // false: data_ is a heap copy (platforms without mmap)
};

}  // namespace dg
