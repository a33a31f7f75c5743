// GGUF reader: parses the header, metadata and tensor table of a mapped file.
//
// Layout (v2/v3, little-endian): magic "GGUF", u32 version, u64 n_tensors, u64 n_kv,
// n_kv x (string key, u32 type, value), n_tensors x (string name, u32 n_dims, u64 ne[n_dims],
// u32 ggml type, u64 offset), padding to `general.alignment`, tensor data.
// Strings are u64 length + bytes. Arrays are u32 element type + u64 count + elements.
//
// Every read goes through Cursor, which checks the bytes exist before touching them; sizes are
// combined with overflow-checked arithmetic. Nothing is allocated from a count read from the
// file before the file is known to hold that many elements.
#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "diffgemma/gguf.h"
#include "diffgemma/utf8.h"
#include "util/mapped_file.h"

namespace dg {
namespace {

constexpr uint32_t kMaxArrayDepth = 8;  // gguf-py nests arrays; nobody nests deeper than 2
constexpr uint32_t kMaxDims = 4;        // GGML_MAX_DIMS

std::string fmt_u64(uint64_t v) { return std::to_string(v); }

bool mul_overflow(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }
bool add_overflow(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_add_overflow(a, b, out); }

class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size) : base_(base), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  // Throws unless n more bytes exist; `what` names the thing being read.
  void need(uint64_t n, const std::string& what) const {
    if (n > remaining()) {
      throw GGUFError("unexpected end of file while reading " + what + " (at offset " +
                      fmt_u64(pos_) + ", need " + fmt_u64(n) + " bytes, file size " +
                      fmt_u64(size_) + ")");
    }
  }

  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  const uint8_t* take(uint64_t n, const std::string& what) {
    need(n, what);
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }

  std::string_view read_string(const std::string& what) {
    uint64_t len = read<uint64_t>(what + " length");
    if (len > remaining()) {
      throw GGUFError(what + ": string length " + fmt_u64(len) + " runs past end of file (at offset " +
                      fmt_u64(pos_) + ", file size " + fmt_u64(size_) + ")");
    }
    const uint8_t* p = take(len, what);
    return std::string_view(reinterpret_cast<const char*>(p), len);
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GGUFValueType::FLOAT64); }

// Quote a name read from the file for an error message: short, printable, valid UTF-8
// (control characters and invalid bytes become \xNN).
std::string quoted(std::string_view s) {
  std::string out = "'";
  size_t shown = 0;
  for (size_t i = 0; i < s.size();) {
    if (++shown > 80) {
      out += "...";
      break;
    }
    const unsigned char u = static_cast<unsigned char>(s[i]);
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0 || u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
      ++i;
    } else {
      out.append(s.data() + i, n);
      i += n;
    }
  }
  return out + "'";
}

void read_value(Cursor& cur, GGUFValueType type, GGUFValue& out, const std::string& what,
                uint32_t depth) {
  out.type = type;
  switch (type) {
    case GGUFValueType::STRING:
      out.str = cur.read_string(what);
      return;
    case GGUFValueType::ARRAY: {
      if (depth >= kMaxArrayDepth) {
        throw GGUFError(what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      }
      uint32_t et = cur.read<uint32_t>(what + " element type");
      if (!valid_value_type(et)) {
        throw GGUFError(what + ": unknown array element type " + std::to_string(et));
      }
      out.elem_type = static_cast<GGUFValueType>(et);
      out.count = cur.read<uint64_t>(what + " element count");
      const std::string elems_what = what + " elements";
      if (out.elem_type == GGUFValueType::STRING) {
        // Each string needs at least its 8-byte length, so the count is bounded by the file.
        uint64_t min_bytes;
        if (mul_overflow(out.count, 8, &min_bytes) || min_bytes > cur.remaining()) {
          throw GGUFError(what + ": array of " + fmt_u64(out.count) +
                          " strings runs past end of file (at offset " + fmt_u64(cur.pos()) + ")");
        }
        out.strings.resize(out.count);
        for (uint64_t i = 0; i < out.count; ++i) out.strings[i] = cur.read_string(elems_what);
      } else if (out.elem_type == GGUFValueType::ARRAY) {
        uint64_t min_bytes;  // element type + count of each nested array
        if (mul_overflow(out.count, 12, &min_bytes) || min_bytes > cur.remaining()) {
          throw GGUFError(what + ": array of " + fmt_u64(out.count) +
                          " arrays runs past end of file (at offset " + fmt_u64(cur.pos()) + ")");
        }
        out.arrays.resize(out.count);
        for (uint64_t i = 0; i < out.count; ++i) {
          read_value(cur, GGUFValueType::ARRAY, out.arrays[i], what + "[" + fmt_u64(i) + "]",
                     depth + 1);
        }
      } else {
        uint64_t bytes;
        if (mul_overflow(out.count, gguf_value_type_size(out.elem_type), &bytes) ||
            bytes > cur.remaining()) {
          throw GGUFError(what + ": array of " + fmt_u64(out.count) + " " +
                          gguf_value_type_name(out.elem_type) +
                          " runs past end of file (at offset " + fmt_u64(cur.pos()) +
                          ", file size " + fmt_u64(cur.pos() + cur.remaining()) + ")");
        }
        out.elems = cur.take(bytes, elems_what);
      }
      return;
    }
    default: {
      uint32_t n = gguf_value_type_size(type);
      const uint8_t* p = cur.take(n, what);
      out.bits = 0;
      std::memcpy(&out.bits, p, n);  // little-endian host: low bytes
      return;
    }
  }
}

}  // namespace

const char* gguf_value_type_name(GGUFValueType t) {
  switch (t) {
    case GGUFValueType::UINT8: return "UINT8";
    case GGUFValueType::INT8: return "INT8";
    case GGUFValueType::UINT16: return "UINT16";
    case GGUFValueType::INT16: return "INT16";
    case GGUFValueType::UINT32: return "UINT32";
    case GGUFValueType::INT32: return "INT32";
    case GGUFValueType::FLOAT32: return "FLOAT32";
    case GGUFValueType::BOOL: return "BOOL";
    case GGUFValueType::STRING: return "STRING";
    case GGUFValueType::ARRAY: return "ARRAY";
    case GGUFValueType::UINT64: return "UINT64";
    case GGUFValueType::INT64: return "INT64";
    case GGUFValueType::FLOAT64: return "FLOAT64";
  }
  return "?";
}

uint32_t gguf_value_type_size(GGUFValueType t) {
  switch (t) {
    case GGUFValueType::UINT8: case GGUFValueType::INT8: case GGUFValueType::BOOL: return 1;
    case GGUFValueType::UINT16: case GGUFValueType::INT16: return 2;
    case GGUFValueType::UINT32: case GGUFValueType::INT32: case GGUFValueType::FLOAT32: return 4;
    case GGUFValueType::UINT64: case GGUFValueType::INT64: case GGUFValueType::FLOAT64: return 8;
    default: return 0;
  }
}

// ---- GGUFValue ---------------------------------------------------------------------------

bool GGUFValue::is_integer() const {
  switch (type) {
    case GGUFValueType::UINT8: case GGUFValueType::INT8: case GGUFValueType::UINT16:
    case GGUFValueType::INT16: case GGUFValueType::UINT32: case GGUFValueType::INT32:
    case GGUFValueType::UINT64: case GGUFValueType::INT64:
      return true;
    default:
      return false;
  }
}

namespace {

int64_t widen_int(GGUFValueType t, uint64_t bits) {
  switch (t) {
    case GGUFValueType::INT8: return static_cast<int8_t>(bits);
    case GGUFValueType::INT16: return static_cast<int16_t>(bits);
    case GGUFValueType::INT32: return static_cast<int32_t>(bits);
    case GGUFValueType::INT64: return static_cast<int64_t>(bits);
    default: return static_cast<int64_t>(bits);  // unsigned: zero-extended already
  }
}

double widen_float(GGUFValueType t, uint64_t bits) {
  if (t == GGUFValueType::FLOAT32) {
    float f;
    uint32_t b = static_cast<uint32_t>(bits);
    std::memcpy(&f, &b, 4);
    return f;
  }
  double d;
  std::memcpy(&d, &bits, 8);
  return d;
}

uint64_t load_elem_bits(const uint8_t* elems, GGUFValueType t, uint64_t i) {
  uint32_t n = gguf_value_type_size(t);
  uint64_t bits = 0;
  std::memcpy(&bits, elems + i * n, n);
  return bits;
}

}  // namespace

int64_t GGUFValue::as_int() const { return widen_int(type, bits); }
uint64_t GGUFValue::as_uint() const { return static_cast<uint64_t>(widen_int(type, bits)); }
double GGUFValue::as_float() const { return widen_float(type, bits); }

int64_t GGUFValue::elem_int(uint64_t i) const {
  return widen_int(elem_type, load_elem_bits(elems, elem_type, i));
}

double GGUFValue::elem_float(uint64_t i) const {
  return widen_float(elem_type, load_elem_bits(elems, elem_type, i));
}

std::string GGUFValue::type_string() const {
  if (type != GGUFValueType::ARRAY) return gguf_value_type_name(type);
  if (elem_type != GGUFValueType::ARRAY) {
    return std::string("ARRAY[") + gguf_value_type_name(elem_type) + "]";
  }
  // Nested: describe by the first inner array (they may differ; the first is representative).
  if (!arrays.empty()) return "ARRAY[" + arrays[0].type_string() + "]";
  return "ARRAY[ARRAY]";
}

// ---- GGUFFile ----------------------------------------------------------------------------

GGUFFile::~GGUFFile() = default;

uint64_t GGUFFile::file_size() const { return file_->size(); }

void GGUFFile::release_pages(const uint8_t* p, uint64_t n) const { file_->release(p, n); }

std::shared_ptr<GGUFFile> GGUFFile::open(const std::string& path) {
  std::shared_ptr<GGUFFile> f(new GGUFFile());
  f->path_ = path;
  f->file_ = std::make_unique<MappedFile>(path);
  try {
    f->parse();
  } catch (const GGUFError& e) {
    throw GGUFError(path + ": " + e.what());
  }
  return f;
}

void GGUFFile::parse() {
  const uint64_t size = file_->size();
  Cursor cur(file_->data(), size);

  const uint8_t* magic = cur.take(4, "magic");
  if (std::memcmp(magic, "GGUF", 4) != 0) {
    throw GGUFError("not a GGUF file (bad magic)");
  }
  version_ = cur.read<uint32_t>("version");
  if (version_ == 1) {
    throw GGUFError("GGUF version 1 is not supported (32-bit counts); re-convert the model");
  }
  if (version_ != 2 && version_ != 3) {
    uint32_t swapped = __builtin_bswap32(version_);
    if (swapped == 2 || swapped == 3) {
      throw GGUFError("big-endian GGUF files are not supported");
    }
    throw GGUFError("unsupported GGUF version " + std::to_string(version_) +
                    " (this build reads versions 2 and 3)");
  }
  const uint64_t n_tensors = cur.read<uint64_t>("tensor count");
  const uint64_t n_kv = cur.read<uint64_t>("metadata count");

  // Each KV needs at least key length (8) + type (4) + 1 byte; each tensor info at least
  // name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
  uint64_t min_bytes;
  if (mul_overflow(n_kv, 13, &min_bytes) || min_bytes > cur.remaining()) {
    throw GGUFError("metadata count " + fmt_u64(n_kv) + " is larger than the file can hold");
  }
  if (mul_overflow(n_tensors, 32, &min_bytes) || min_bytes > cur.remaining()) {
    throw GGUFError("tensor count " + fmt_u64(n_tensors) + " is larger than the file can hold");
  }

  kvs_.resize(n_kv);
  kv_index_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    KV& kv = kvs_[i];
    kv.key = cur.read_string("metadata key #" + fmt_u64(i));
    const std::string what = "metadata key " + quoted(kv.key);
    uint32_t t = cur.read<uint32_t>(what + " type");
    if (!valid_value_type(t)) {
      throw GGUFError(what + ": unknown value type " + std::to_string(t));
    }
    read_value(cur, static_cast<GGUFValueType>(t), kv.value, what, 0);
    if (!kv_index_.emplace(kv.key, i).second) {
      throw GGUFError("duplicate metadata key " + quoted(kv.key));
    }
  }

  if (const GGUFValue* a = find("general.alignment")) {
    if (a->type != GGUFValueType::UINT32) {
      throw GGUFError(std::string("general.alignment has type ") + gguf_value_type_name(a->type) +
                      ", expected UINT32");
    }
    uint64_t v = a->as_uint();
    if (v == 0 || (v & (v - 1)) != 0) {
      throw GGUFError("general.alignment " + fmt_u64(v) + " is not a power of two");
    }
    alignment_ = v;
  }

  tensors_.resize(n_tensors);
  tensor_index_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GGUFTensor& t = tensors_[i];
    t.name = cur.read_string("tensor info #" + fmt_u64(i) + " name");
    const std::string what = "tensor " + quoted(t.name);
    t.n_dims = cur.read<uint32_t>(what + " dimension count");
    if (t.n_dims == 0 || t.n_dims > kMaxDims) {
      throw GGUFError(what + ": " + std::to_string(t.n_dims) + " dimensions (must be 1 to " +
                      std::to_string(kMaxDims) + ")");
    }
    uint64_t n_elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      uint64_t ne = cur.read<uint64_t>(what + " shape");
      if (ne > static_cast<uint64_t>(INT64_MAX) || mul_overflow(n_elements, ne, &n_elements) ||
          n_elements > static_cast<uint64_t>(INT64_MAX)) {
        throw GGUFError(what + ": shape overflows (dimension " + std::to_string(d) + " is " +
                        fmt_u64(ne) + ")");
      }
      t.ne[d] = static_cast<int64_t>(ne);
    }
    t.n_elements = n_elements;
    uint32_t type_id = cur.read<uint32_t>(what + " type");
    std::optional<GGMLTypeTraits> traits = ggml_type_traits(type_id);
    if (!traits) throw GGUFError(what + ": unknown ggml type " + std::to_string(type_id));
    t.type = static_cast<GGMLType>(type_id);
    if (static_cast<uint64_t>(t.ne[0]) % traits->block_size != 0) {
      throw GGUFError(what + ": row length " + std::to_string(t.ne[0]) +
                      " is not a multiple of the " + std::string(traits->name) + " block size " +
                      std::to_string(traits->block_size));
    }
    // nbytes = ne0/block * type_size * (ne1 * ne2 * ne3), each product overflow-checked.
    uint64_t rows = 1;
    for (uint32_t d = 1; d < t.n_dims; ++d) {
      if (mul_overflow(rows, static_cast<uint64_t>(t.ne[d]), &rows)) {
        throw GGUFError(what + ": shape overflows");
      }
    }
    uint64_t row_bytes = static_cast<uint64_t>(t.ne[0]) / traits->block_size * traits->type_size;
    if (mul_overflow(row_bytes, rows, &t.nbytes)) {
      throw GGUFError(what + ": data size overflows");
    }
    t.offset = cur.read<uint64_t>(what + " data offset");
    if (t.offset % alignment_ != 0) {
      throw GGUFError(what + ": data offset " + fmt_u64(t.offset) + " is not a multiple of the alignment " +
                      fmt_u64(alignment_));
    }
    if (!tensor_index_.emplace(t.name, i).second) {
      throw GGUFError("duplicate tensor name " + quoted(t.name));
    }
  }

  // Tensor data starts at the next multiple of the alignment after the tensor table.
  uint64_t pad = (alignment_ - cur.pos() % alignment_) % alignment_;
  if (add_overflow(cur.pos(), pad, &data_offset_)) throw GGUFError("data offset overflows");

  for (GGUFTensor& t : tensors_) {
    uint64_t start, end;
    if (add_overflow(data_offset_, t.offset, &start) || add_overflow(start, t.nbytes, &end) ||
        end > size) {
      throw GGUFError("tensor " + quoted(t.name) + ": data runs past end of file (offset " +
                      fmt_u64(data_offset_) + "+" + fmt_u64(t.offset) + ", size " + fmt_u64(t.nbytes) +
                      ", file " + fmt_u64(size) + ")");
    }
    t.data = file_->data() + start;
  }

  // No two tensors may share bytes: a writer never does that, and a view that aliases another
  // tensor would let one corrupt file confuse two weights.
  std::vector<const GGUFTensor*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const GGUFTensor& t : tensors_) {
    if (t.nbytes > 0) by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GGUFTensor* a, const GGUFTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GGUFTensor* a = by_offset[i - 1];
    const GGUFTensor* b = by_offset[i];
    if (a->offset + a->nbytes > b->offset) {
      throw GGUFError("tensors " + quoted(a->name) + " and " + quoted(b->name) + " overlap");
    }
  }
}

const GGUFValue* GGUFFile::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

const GGUFTensor* GGUFFile::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

// ---- typed metadata access -----------------------------------------------------------------

namespace {

[[noreturn]] void wrong_type(std::string_view key, const GGUFValue& v, const char* expected) {
  throw GGUFError("metadata key '" + std::string(key) + "' has type " + v.type_string() +
                  ", expected " + expected);
}

}  // namespace

static const GGUFValue& must_find(const GGUFFile& f, std::string_view key) {
  const GGUFValue* v = f.find(key);
  if (!v) throw GGUFError("missing metadata key '" + std::string(key) + "'");
  return *v;
}

uint64_t GGUFFile::get_uint(std::string_view key) const {
  const GGUFValue& v = must_find(*this, key);
  if (!v.is_integer()) wrong_type(key, v, "an integer");
  if (v.as_int() < 0 && v.type != GGUFValueType::UINT64) {
    throw GGUFError("metadata key '" + std::string(key) + "' is negative (" +
                    std::to_string(v.as_int()) + ")");
  }
  return v.as_uint();
}

int64_t GGUFFile::get_int(std::string_view key) const {
  const GGUFValue& v = must_find(*this, key);
  if (!v.is_integer()) wrong_type(key, v, "an integer");
  if (v.type == GGUFValueType::UINT64 && v.bits > static_cast<uint64_t>(INT64_MAX)) {
    throw GGUFError("metadata key '" + std::string(key) + "' is too large");
  }
  return v.as_int();
}

double GGUFFile::get_float(std::string_view key) const {
  const GGUFValue& v = must_find(*this, key);
  if (v.is_float()) return v.as_float();
  if (v.is_integer()) return static_cast<double>(v.as_int());
  wrong_type(key, v, "a number");
}

bool GGUFFile::get_bool(std::string_view key) const {
  const GGUFValue& v = must_find(*this, key);
  if (v.type != GGUFValueType::BOOL) wrong_type(key, v, "BOOL");
  return v.as_bool();
}

std::string GGUFFile::get_string(std::string_view key) const {
  const GGUFValue& v = must_find(*this, key);
  if (v.type != GGUFValueType::STRING) wrong_type(key, v, "STRING");
  return std::string(v.str);
}

const GGUFValue& GGUFFile::get_array(std::string_view key) const {
  const GGUFValue& v = must_find(*this, key);
  if (v.type != GGUFValueType::ARRAY) wrong_type(key, v, "ARRAY");
  return v;
}

uint64_t GGUFFile::get_uint_or(std::string_view key, uint64_t fallback) const {
  return find(key) ? get_uint(key) : fallback;
}

double GGUFFile::get_float_or(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : fallback;
}

bool GGUFFile::get_bool_or(std::string_view key, bool fallback) const {
  return find(key) ? get_bool(key) : fallback;
}

std::string GGUFFile::get_string_or(std::string_view key, std::string fallback) const {
  return find(key) ? get_string(key) : fallback;
}

}  // namespace dg
