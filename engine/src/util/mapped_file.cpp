#include "util/mapped_file.h"

#include <cerrno>
#include <cstring>

#include "diffgemma/error.h"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define DG_HAVE_MMAP 1
#else
#include <fstream>
#endif

namespace dg {

#if DG_HAVE_MMAP

MappedFile::MappedFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error("cannot stat " + path + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + " is not a regular file");
  }
  size_ = static_cast<uint64_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    throw Error(path + " is empty");
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (p == MAP_FAILED) throw Error("cannot map " + path + ": " + std::strerror(e));
  data_ = static_cast<const uint8_t*>(p);
  mapped_ = true;
}

MappedFile::~MappedFile() {
  if (mapped_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

void MappedFile::release(const uint8_t* p, uint64_t n) const {
  if (!mapped_ || p < data_ || n > size_ || p > data_ + (size_ - n)) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t begin = (static_cast<uint64_t>(p - data_) + page - 1) / page * page;
  const uint64_t end = static_cast<uint64_t>(p - data_) + n;
  if (end <= begin + page) return;
  ::madvise(const_cast<uint8_t*>(data_) + begin, (end - begin) / page * page, MADV_DONTNEED);
}

#else  // no mmap: read the file into memory

MappedFile::MappedFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw Error("cannot open " + path);
  std::streamoff n = in.tellg();
  if (n <= 0) throw Error(path + " is empty");
  size_ = static_cast<uint64_t>(n);
  uint8_t* buf = new uint8_t[size_];
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(buf), n)) {
    delete[] buf;
    throw Error("cannot read " + path);
  }
  data_ = buf;
}

MappedFile::~MappedFile() { delete[] data_; }

void MappedFile::release(const uint8_t*, uint64_t) const {}

#endif

}  // namespace dg
