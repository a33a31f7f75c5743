// GGUF v2/v3 reader. The file is mapped read-only; metadata strings, primitive arrays and
// tensor data are views into the mapping. Every count, length, offset and size is checked
// against the file before use, so a malformed file is a dg::GGUFError, never a crash.
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "diffgemma/error.h"
#include "diffgemma/ggml_type.h"

namespace dg {

class MappedFile;

enum class GGUFValueType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};

const char* gguf_value_type_name(GGUFValueType t);
uint32_t gguf_value_type_size(GGUFValueType t);  // bytes of a scalar; 0 for STRING and ARRAY

// One metadata value. Scalars keep their raw little-endian bits; strings and primitive array
// elements point into the mapping (they are not NUL-terminated and may be unaligned).
struct GGUFValue {
  GGUFValueType type = GGUFValueType::UINT8;
  uint64_t bits = 0;      // scalar payload, zero-extended
  std::string_view str;   // STRING

  // ARRAY
  GGUFValueType elem_type = GGUFValueType::UINT8;
  uint64_t count = 0;
  const uint8_t* elems = nullptr;        // primitive elements, packed
  std::vector<std::string_view> strings; // elem_type == STRING
  std::vector<GGUFValue> arrays;         // elem_type == ARRAY (nested arrays)

  bool is_array() const { return type == GGUFValueType::ARRAY; }
  bool is_integer() const;  // any of the eight integer scalar types
  bool is_float() const { return type == GGUFValueType::FLOAT32 || type == GGUFValueType::FLOAT64; }

  // Scalar as a wider type; the caller checks the type first (see GGUFFile::get_*).
  int64_t as_int() const;     // integer types, sign-extended where signed
  uint64_t as_uint() const;   // integer types; negative values are the caller's check
  double as_float() const;    // FLOAT32 / FLOAT64
  bool as_bool() const { return bits != 0; }

  // Element i of a primitive array, widened. i < count is the caller's check.
  int64_t elem_int(uint64_t i) const;
  double elem_float(uint64_t i) const;
  bool elem_bool(uint64_t i) const { return elems[i] != 0; }

  // "UINT32", "ARRAY[STRING]", "ARRAY[ARRAY[INT32]]", ...
  std::string type_string() const;
};

struct GGUFTensor {
  std::string_view name;
  GGMLType type = GGMLType::F32;
  uint32_t n_dims = 0;
  int64_t ne[4] = {1, 1, 1, 1};  // ggml order: ne[0] is the innermost (contiguous) dimension
  uint64_t n_elements = 0;
  uint64_t offset = 0;           // from the start of the data section
  uint64_t nbytes = 0;
  const uint8_t* data = nullptr; // into the mapping
};

class GGUFFile {
 public:
  static constexpr uint64_t kDefaultAlignment = 32;

  // Maps and validates the whole header and tensor table. Throws dg::GGUFError (bad file) or
  // dg::Error (cannot open).
  static std::shared_ptr<GGUFFile> open(const std::string& path);
  ~GGUFFile();

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute file offset of tensor data
  uint64_t file_size() const;
  // Drops the whole pages inside [p, p + n) of the mapping from resident memory (for tensor data
  // copied elsewhere); reading them again maps them back in from the file.
  void release_pages(const uint8_t* p, uint64_t n) const;

  struct KV {
    std::string_view key;
    GGUFValue value;
  };
  const std::vector<KV>& metadata() const { return kvs_; }  // in file order
  const GGUFValue* find(std::string_view key) const;       // nullptr if absent

  const std::vector<GGUFTensor>& tensors() const { return tensors_; }  // in file order
  const GGUFTensor* find_tensor(std::string_view name) const;        // nullptr if absent

  // Typed metadata access for loaders. `get_*` throw a GGUFError naming the key when it is
  // absent or of an incompatible type; `get_*_or` return the fallback when absent.
  uint64_t get_uint(std::string_view key) const;  // any integer type, value >= 0
  int64_t get_int(std::string_view key) const;    // any integer type
  double get_float(std::string_view key) const;   // FLOAT32/FLOAT64 (integers accepted)
  bool get_bool(std::string_view key) const;
  std::string get_string(std::string_view key) const;
  uint64_t get_uint_or(std::string_view key, uint64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;
  bool get_bool_or(std::string_view key, bool fallback) const;
  std::string get_string_or(std::string_view key, std::string fallback) const;
  const GGUFValue& get_array(std::string_view key) const;  // must be an ARRAY

 private:
  GGUFFile() = default;
  void parse();

  std::string path_;
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<KV> kvs_;
  std::vector<GGUFTensor> tensors_;
  std::unordered_map<std::string_view, size_t> kv_index_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace dg
