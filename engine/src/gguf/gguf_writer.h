// GGUF v3 writer for tools that produce model files (diffgemma-quantize). Streaming: the header,
// metadata and tensor table are written first, then each tensor's data in table order, so only
// one tensor (or a chunk of it) needs to be in memory.
//
// The file is written under a temporary name next to the target and renamed by finish(); a
// writer destroyed before finish() removes the partial file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include "diffgemma/gguf.h"

namespace dg {

class GGUFWriter {
 public:
  GGUFWriter(std::string path, uint64_t alignment = GGUFFile::kDefaultAlignment);
  ~GGUFWriter();
  GGUFWriter(const GGUFWriter&) = delete;
  GGUFWriter& operator=(const GGUFWriter&) = delete;

  // Metadata, in the order added. A value's views (strings, array elements) must stay valid
  // until write_header() (values taken from an open GGUFFile do).
  void add_kv(std::string_view key, const GGUFValue& value);
  void add_uint32(std::string_view key, uint32_t v);

  // Tensor table entry; offsets follow from the sizes, each tensor aligned.
  void add_tensor(std::string_view name, GGMLType type, uint32_t n_dims, const int64_t ne[4]);

  void write_header();  // magic, counts, metadata, tensor table, padding to the data section

  // Data of the next tensor in table order, in any number of pieces; end_tensor() checks the
  // byte count against the table and pads to the alignment.
  void write_data(const void* data, size_t n);
  void end_tensor();

  void finish();  // after the last tensor: flush, close, rename to the target path

 private:
  struct Entry {
    std::string name;
    GGMLType type;
    uint32_t n_dims;
    int64_t ne[4];
    uint64_t nbytes;
    uint64_t offset;
  };
  void put(const void* p, size_t n);
  void put_string(std::string_view s);
  void put_value(const GGUFValue& v);
  void put_array_body(const GGUFValue& v);
  void pad();

  std::string path_, tmp_path_;
  uint64_t alignment_;
  std::FILE* f_ = nullptr;
  uint64_t written_ = 0;  // bytes written so far (file position)
  std::deque<std::string> keys_;
  std::vector<std::pair<const std::string*, GGUFValue>> kvs_;
  std::vector<Entry> tensors_;
  uint64_t data_size_ = 0;
  size_t current_ = 0;           // tensor whose data is being written
  uint64_t current_written_ = 0;
  uint64_t data_start_ = 0;
  bool header_done_ = false, finished_ = false;
};

}  // namespace dg
