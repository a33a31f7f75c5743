// GGUF v3 layout (little-endian), as the reader documents it: magic "GGUF", u32 version,
// u64 n_tensors, u64 n_kv, n_kv x (string key, u32 type, value), n_tensors x (string name,
// u32 n_dims, u64 ne[n_dims], u32 type, u64 offset), zero padding to the alignment, data.
#include "gguf/gguf_writer.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "diffgemma/error.h"

namespace dg {
namespace {

std::string errno_text() { return std::strerror(errno); }

uint64_t tensor_bytes(GGMLType type, const int64_t ne[4]) {
  const GGMLTypeTraits tr = ggml_type_traits(type);
  if (ne[0] % tr.block_size != 0) {
    throw Error("row of " + std::to_string(ne[0]) + " values is not a multiple of the " +
                std::string(tr.name) + " block size");
  }
  return static_cast<uint64_t>(ne[0] / tr.block_size) * tr.type_size * ne[1] * ne[2] * ne[3];
}

}  // namespace

GGUFWriter::GGUFWriter(std::string path, uint64_t alignment) : path_(std::move(path)), alignment_(alignment) {
  if (alignment_ == 0 || (alignment_ & (alignment_ - 1))) throw Error("GGUF alignment must be a power of two");
  const size_t slash = path_.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "" : path_.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path_ : path_.substr(slash + 1);
  tmp_path_ = dir + "." + base + "." + std::to_string(::getpid()) + ".part";
  f_ = std::fopen(tmp_path_.c_str(), "wb");
  if (!f_) throw Error("cannot write " + path_ + ": " + errno_text());
}

GGUFWriter::~GGUFWriter() {
  if (f_) std::fclose(f_);
  if (!finished_) std::remove(tmp_path_.c_str());
}

void GGUFWriter::add_kv(std::string_view key, const GGUFValue& value) {
  if (header_done_) throw Error("GGUFWriter: metadata added after the header");
  keys_.emplace_back(key);
  kvs_.emplace_back(&keys_.back(), value);
}

void GGUFWriter::add_uint32(std::string_view key, uint32_t v) {
  GGUFValue value;
  value.type = GGUFValueType::UINT32;
  value.bits = v;
  add_kv(key, value);
}

void GGUFWriter::add_tensor(std::string_view name, GGMLType type, uint32_t n_dims, const int64_t ne[4]) {
  if (header_done_) throw Error("GGUFWriter: tensor added after the header");
  Entry e{std::string(name), type, n_dims, {ne[0], ne[1], ne[2], ne[3]}, tensor_bytes(type, ne), data_size_};
  data_size_ += (e.nbytes + alignment_ - 1) / alignment_ * alignment_;
  tensors_.push_back(std::move(e));
}

void GGUFWriter::put(const void* p, size_t n) {
  if (n && std::fwrite(p, 1, n, f_) != n) throw Error("cannot write " + path_ + ": " + errno_text());
  written_ += n;
}

void GGUFWriter::put_string(std::string_view s) {
  const uint64_t len = s.size();
  put(&len, 8);
  put(s.data(), s.size());
}

void GGUFWriter::put_array_body(const GGUFValue& v) {
  const auto elem = static_cast<uint32_t>(v.elem_type);
  put(&elem, 4);
  put(&v.count, 8);
  if (v.elem_type == GGUFValueType::STRING) {
    for (std::string_view s : v.strings) put_string(s);
  } else if (v.elem_type == GGUFValueType::ARRAY) {
    for (const GGUFValue& a : v.arrays) put_array_body(a);
  } else {
    put(v.elems, v.count * gguf_value_type_size(v.elem_type));
  }
}

void GGUFWriter::put_value(const GGUFValue& v) {
  const auto type = static_cast<uint32_t>(v.type);
  put(&type, 4);
  if (v.type == GGUFValueType::STRING) {
    put_string(v.str);
  } else if (v.type == GGUFValueType::ARRAY) {
    put_array_body(v);
  } else {
    put(&v.bits, gguf_value_type_size(v.type));  // little-endian: the low bytes of the payload
  }
}

void GGUFWriter::pad() {
  static const char zeros[256] = {};
  uint64_t n = (alignment_ - written_ % alignment_) % alignment_;
  while (n) {
    const uint64_t k = n < sizeof zeros ? n : sizeof zeros;
    put(zeros, k);
    n -= k;
  }
}

void GGUFWriter::write_header() {
  if (header_done_) throw Error("GGUFWriter: header written twice");
  put("GGUF", 4);
  const uint32_t version = 3;
  put(&version, 4);
  const uint64_t n_tensors = tensors_.size(), n_kv = kvs_.size();
  put(&n_tensors, 8);
  put(&n_kv, 8);
  for (const auto& [key, value] : kvs_) {
    put_string(*key);
    put_value(value);
  }
  for (const Entry& e : tensors_) {
    put_string(e.name);
    put(&e.n_dims, 4);
    for (uint32_t d = 0; d < e.n_dims; ++d) {
      const uint64_t n = static_cast<uint64_t>(e.ne[d]);
      put(&n, 8);
    }
    const auto type = static_cast<uint32_t>(e.type);
    put(&type, 4);
    put(&e.offset, 8);
  }
  pad();
  data_start_ = written_;
  header_done_ = true;
}

void GGUFWriter::write_data(const void* data, size_t n) {
  if (!header_done_ || current_ >= tensors_.size()) throw Error("GGUFWriter: tensor data out of order");
  if (current_written_ + n > tensors_[current_].nbytes) {
    throw Error("GGUFWriter: more data than the table gives tensor " + tensors_[current_].name);
  }
  put(data, n);
  current_written_ += n;
}

void GGUFWriter::end_tensor() {
  const Entry& e = tensors_.at(current_);
  if (current_written_ != e.nbytes) {
    throw Error("GGUFWriter: tensor " + e.name + " got " + std::to_string(current_written_) + " bytes, expected " +
                std::to_string(e.nbytes));
  }
  pad();
  ++current_;
  current_written_ = 0;
}

void GGUFWriter::finish() {
  if (current_ != tensors_.size()) throw Error("GGUFWriter: not every tensor was written");
  if (std::fflush(f_) != 0) throw Error("cannot write " + path_ + ": " + errno_text());
  const int rc = std::fclose(f_);
  f_ = nullptr;
  if (rc != 0) throw Error("cannot write " + path_ + ": " + errno_text());
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    throw Error("cannot write " + path_ + ": " + errno_text());
  }
  finished_ = true;
}

}  // namespace dg
