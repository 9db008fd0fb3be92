#include "io.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "error.h"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define QUIVER_POSIX 1
#endif

namespace quiver {

namespace {

uint32_t crc_table_entry(uint32_t i) {
  uint32_t c = i;
  for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  return c;
}

const uint32_t* crc_table() {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) t[i] = crc_table_entry(i);
    return t;
  }();
  return table.data();
}

constexpr size_t kMaxSections = 64;

std::string tag_name(uint32_t tag) {
  std::string s(4, ' ');
  for (int i = 0; i < 4; ++i) {
    const char c = char((tag >> (8 * i)) & 0xFF);
    s[size_t(i)] = (c >= 32 && c < 127) ? c : '?';
  }
  return s;
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc) {
  const uint32_t* table = crc_table();
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

// ------------------------------------------------------------------------------------------------ writing

void ByteWriter::u32(uint32_t v) {
  for (int i = 0; i < 4; ++i) bytes_.push_back(uint8_t(v >> (8 * i)));
}

void ByteWriter::u64(uint64_t v) {
  for (int i = 0; i < 8; ++i) bytes_.push_back(uint8_t(v >> (8 * i)));
}

void ByteWriter::f32(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  u32(bits);
}

void ByteWriter::str(const std::string& s) {
  u32(uint32_t(s.size()));
  raw(s.data(), s.size());
}

void ByteWriter::raw(const void* data, size_t size) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  bytes_.insert(bytes_.end(), p, p + size);
}

void ByteWriter::align(size_t base, size_t alignment) {
  const size_t at = base + bytes_.size() + 4;
  const uint32_t pad = uint32_t((alignment - at % alignment) % alignment);
  u32(pad);
  bytes_.insert(bytes_.end(), pad, 0);
}

ContainerWriter::ContainerWriter(uint32_t magic) {
  out_.u32(magic);
  out_.u32(kFormatVersion);
}

void ContainerWriter::section(uint32_t tag, const ByteWriter& payload) {
  QV_CHECK(!finished_, Internal, "container already finished");
  out_.u32(tag);
  out_.u64(payload.size());
  out_.raw(payload.bytes().data(), payload.size());
  out_.u32(crc32(payload.bytes().data(), payload.size()));
}

std::vector<uint8_t> ContainerWriter::finish() {
  section(fourcc("END "), ByteWriter());
  finished_ = true;
  return std::move(out_.bytes());
}

// ------------------------------------------------------------------------------------------------ reading

uint8_t ByteReader::u8() { return *take(1); }

uint32_t ByteReader::u32() {
  const uint8_t* p = take(4);
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

uint64_t ByteReader::u64() {
  const uint8_t* p = take(8);
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

float ByteReader::f32() {
  const uint32_t bits = u32();
  float v;
  std::memcpy(&v, &bits, 4);
  return v;
}

std::string ByteReader::str(size_t max_length) {
  const uint32_t length = u32();
  QV_CHECK(length <= max_length, Corrupt,
           what_ << ": string of " << length << " bytes exceeds the limit of " << max_length);
  const uint8_t* p = take(length);
  return std::string(reinterpret_cast<const char*>(p), length);
}

const uint8_t* ByteReader::take(size_t size) {
  QV_CHECK(size <= size_ - pos_, Corrupt,
           what_ << ": truncated (needs " << size << " bytes at offset " << pos_ << ", " << size_ - pos_
                 << " remain)");
  const uint8_t* p = data_ + pos_;
  pos_ += size;
  return p;
}

void ByteReader::skip_alignment() {
  const uint32_t pad = u32();
  QV_CHECK(pad < 64, Corrupt, what_ << ": alignment padding of " << pad << " bytes");
  take(pad);
}

size_t ByteReader::count(size_t element_size, size_t max_count, const char* name) {
  const uint64_t n = u64();
  QV_CHECK(n <= max_count, Corrupt, what_ << ": " << name << " count " << n << " exceeds the limit " << max_count);
  QV_CHECK(element_size == 0 || n <= remaining() / element_size, Corrupt,
           what_ << ": " << name << " count " << n << " needs more bytes than the " << remaining() << " that remain");
  return size_t(n);
}

void ByteReader::expect_end() {
  QV_CHECK(pos_ == size_, Corrupt, what_ << ": " << size_ - pos_ << " unexpected trailing bytes");
}

namespace {

// read_container's parser; with `release`, CRCs are computed chunk by chunk and the source drops the pages
// behind (crc32 chains: crc32(b, crc32(a)) is the CRC of a followed by b).
std::vector<Section> parse_container(const uint8_t* data, size_t size, uint32_t magic, const ByteSource* release) {
  ByteReader r(data, size, "file");
  QV_CHECK(size >= 8, Corrupt, "not a quiver file: " << size << " bytes is shorter than the header");
  const uint32_t got_magic = r.u32();
  QV_CHECK(got_magic == magic, Corrupt,
           "not a quiver " << (magic == fourcc("QVRI") ? "index" : "codec") << " file (magic '" << tag_name(got_magic)
                           << "', expected '" << tag_name(magic) << "')");
  const uint32_t version = r.u32();
  QV_CHECK(version >= 1 && version <= kFormatVersion, Corrupt,
           "format version " << version << " is not supported (this build reads 1 to " << kFormatVersion << ")");
  std::vector<Section> sections;
  for (;;) {
    QV_CHECK(sections.size() < kMaxSections, Corrupt, "more than " << kMaxSections << " sections");
    const uint32_t tag = r.u32();
    const uint64_t length = r.u64();
    QV_CHECK(length <= r.remaining() && r.remaining() - length >= 4, Corrupt,
             "section '" << tag_name(tag) << "' claims " << length << " bytes but only " << r.remaining()
                         << " remain");
    const size_t offset = r.position();
    const uint8_t* payload = r.take(size_t(length));
    const uint32_t stored = r.u32();
    uint32_t actual = 0;
    if (!release) {
      actual = crc32(payload, size_t(length));
    } else {
      ReleaseCursor cursor(*release);
      constexpr size_t kChunk = size_t(4) << 20;
      for (size_t done = 0; done < size_t(length);) {
        const size_t n = std::min(kChunk, size_t(length) - done);
        actual = crc32(payload + done, n, actual);
        done += n;
        cursor.advance(payload + done);
      }
    }
    QV_CHECK(stored == actual, Corrupt, "section '" << tag_name(tag) << "' fails its checksum");
    if (tag == fourcc("END ")) break;
    for (const Section& s : sections)
      QV_CHECK(s.tag != tag, Corrupt, "section '" << tag_name(tag) << "' appears twice");
    sections.push_back(Section{tag, payload, size_t(length), offset});
  }
  r.expect_end();
  return sections;
}

}  // namespace

std::vector<Section> read_container(const uint8_t* data, size_t size, uint32_t magic) {
  return parse_container(data, size, magic, nullptr);
}

std::vector<Section> read_container_streaming(const ByteSource& source, uint32_t magic) {
  return parse_container(source.data(), source.size(), magic, &source);
}

const Section* find_section(const std::vector<Section>& sections, uint32_t tag) {
  for (const Section& s : sections)
    if (s.tag == tag) return &s;
  return nullptr;
}

const Section& require_section(const std::vector<Section>& sections, uint32_t tag, const char* name) {
  const Section* s = find_section(sections, tag);
  QV_CHECK(s != nullptr, Corrupt, "missing section '" << tag_name(tag) << "' (" << name << ")");
  return *s;
}

// ------------------------------------------------------------------------------------------------ sources

namespace {

class OwnedBytes : public ByteSource {
 public:
  explicit OwnedBytes(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  const uint8_t* data() const override { return bytes_.data(); }
  size_t size() const override { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
};

[[noreturn]] void io_error(const std::string& what, const std::string& path) {
  QV_THROW(Io, what << " '" << path << "': " << std::strerror(errno));
}

#ifdef QUIVER_POSIX
class MappedBytes : public ByteSource {
 public:
  MappedBytes(void* base, size_t size) : base_(base), size_(size) {}
  ~MappedBytes() override {
    if (base_) munmap(base_, size_);
  }
  const uint8_t* data() const override { return static_cast<const uint8_t*>(base_); }
  size_t size() const override { return size_; }
  void release(const uint8_t* begin, size_t size) const override {
    // Whole pages inside the range only: a partial page may still hold bytes someone reads. The mapping is
    // private and never written, so MADV_DONTNEED just drops clean pages; a later read faults them in again.
    static const uintptr_t page = uintptr_t(sysconf(_SC_PAGESIZE));
    const uintptr_t lo = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
    const uintptr_t hi = (reinterpret_cast<uintptr_t>(begin) + size) / page * page;
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  }

 private:
  void* base_;
  size_t size_;
};
#endif

}  // namespace

std::shared_ptr<ByteSource> owned_bytes(std::vector<uint8_t> bytes) {
  return std::make_shared<OwnedBytes>(std::move(bytes));
}

std::shared_ptr<ByteSource> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) io_error("cannot open", path);
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  for (;;) {
    const size_t got = std::fread(chunk, 1, sizeof(chunk), f);
    bytes.insert(bytes.end(), chunk, chunk + got);
    if (got < sizeof(chunk)) break;
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) io_error("cannot read", path);
  return owned_bytes(std::move(bytes));
}

std::shared_ptr<ByteSource> map_file(const std::string& path) {
#ifdef QUIVER_POSIX
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) io_error("cannot open", path);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    ::close(fd);
    io_error("cannot stat", path);
  }
  const size_t size = size_t(st.st_size);
  if (size == 0) {
    ::close(fd);
    return owned_bytes({});
  }
  void* base = mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file referenced
  if (base == MAP_FAILED) io_error("cannot map", path);
  return std::make_shared<MappedBytes>(base, size);
#else
  return read_file(path);
#endif
}

AtomicFileWriter::AtomicFileWriter(const std::string& path) : path_(path) {
  std::random_device rd;
  tmp_ = path + ".tmp-" + std::to_string(rd()) + std::to_string(rd());
#ifdef QUIVER_POSIX
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd_ < 0) io_error("cannot create", tmp_);
#else
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (!file_) io_error("cannot create", tmp_);
#endif
}

AtomicFileWriter::~AtomicFileWriter() { abandon(); }

void AtomicFileWriter::abandon() {
  const int saved = errno;
#ifdef QUIVER_POSIX
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
  }
#else
  if (file_) {
    std::fclose(file_);
    file_ = nullptr;
    std::remove(tmp_.c_str());
  }
#endif
  errno = saved;
}

void AtomicFileWriter::write(const void* data, size_t size) {
  QV_CHECK(fd_ >= 0 || file_, Internal, "write after commit of '" << path_ << "'");
  const uint8_t* p = static_cast<const uint8_t*>(data);
#ifdef QUIVER_POSIX
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd_, p + done, size - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      abandon();
      io_error("cannot write", tmp_);
    }
    done += size_t(n);
  }
#else
  if (std::fwrite(p, 1, size, file_) != size) {
    abandon();
    io_error("cannot write", tmp_);
  }
#endif
}

void AtomicFileWriter::commit() {
  QV_CHECK(fd_ >= 0 || file_, Internal, "commit twice of '" << path_ << "'");
#ifdef QUIVER_POSIX
  if (::fsync(fd_) != 0) {
    abandon();
    io_error("cannot sync", tmp_);
  }
  ::close(fd_);
  fd_ = -1;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int saved = errno;
    ::unlink(tmp_.c_str());
    errno = saved;
    io_error("cannot rename into", path_);
  }
  // Make the rename itself durable.
  const size_t slash = path_.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path_.substr(0, slash));
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
#else
  const bool ok = std::fflush(file_) == 0;
  std::fclose(file_);
  file_ = nullptr;
  if (!ok) {
    std::remove(tmp_.c_str());
    io_error("cannot write", tmp_);
  }
  std::remove(path_.c_str());
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) io_error("cannot rename into", path_);
#endif
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes) {
  AtomicFileWriter file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

}  // namespace quiver
