// Binary persistence: one tagged, versioned, little-endian container format, and one reader over bytes that
// may live in a std::vector, a Node Buffer's copy, or a read-only memory mapping of a file.
//
// Container layout:
//   bytes 0..3   magic: "QVRI" (index) or "QVRC" (codec)
//   bytes 4..7   u32 format version (kFormatVersion)
//   then sections, each: u32 tag (fourcc, e.g. 'META'), u64 payload length L, L payload bytes,
//                        u32 CRC-32 (IEEE) of the payload
//   the last section has tag 'END ' and L = 0.
// Section payloads are sequences of little-endian scalars, length-prefixed strings (u32 length + bytes) and
// arrays (u64 count + count × element). Sections whose payload is bulk data (codes, vectors) are 8-byte aligned
// in the file (padding is declared in the payload as a u32 pad count), so a mapped file can be used in place.
//
// Nothing read is trusted: every count is checked against the bytes that remain and a per-kind limit before
// anything is allocated, and products are checked for overflow. Failures throw Error(Corrupt).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace quiver {

constexpr uint32_t kFormatVersion = 1;

constexpr uint32_t fourcc(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}

uint32_t crc32(const uint8_t* data, size_t size, uint32_t crc = 0);

// Appends little-endian values to a growing byte buffer.
class ByteWriter {
 public:
  void u8(uint8_t v) { bytes_.push_back(v); }
  void u32(uint32_t v);
  void u64(uint64_t v);
  void i64(int64_t v) { u64(uint64_t(v)); }
  void f32(float v);
  void str(const std::string& s);
  void raw(const void* data, size_t size);
  // Pads with zeros so that the absolute file offset (base + size) becomes a multiple of `alignment`;
  // writes the pad count first (u32) so readers can skip it.
  void align(size_t base, size_t alignment);
  template <typename T>
  void array(const std::vector<T>& v) {
    u64(v.size());
    raw(v.data(), v.size() * sizeof(T));
  }
  std::vector<uint8_t>& bytes() { return bytes_; }
  const std::vector<uint8_t>& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  std::vector<uint8_t> bytes_;
};

// Writes a container: header, then sections (each with its CRC), then the END section.
class ContainerWriter {
 public:
  explicit ContainerWriter(uint32_t magic);
  // Offset the next section's payload will start at (for ByteWriter::align).
  size_t next_payload_offset() const { return out_.size() + 12; }
  void section(uint32_t tag, const ByteWriter& payload);
  std::vector<uint8_t> finish();

 private:
  ByteWriter out_;
  bool finished_ = false;
};

// Reads little-endian values from a span, refusing to read past its end.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, const char* what) : data_(data), size_(size), what_(what) {}
  uint8_t u8();
  uint32_t u32();
  uint64_t u64();
  int64_t i64() { return int64_t(u64()); }
  float f32();
  std::string str(size_t max_length);
  // Returns a pointer to the next `size` bytes and skips them.
  const uint8_t* take(size_t size);
  void skip_alignment();
  // Reads a u64 count and checks that count × element_size bytes remain and that count ≤ max_count.
  size_t count(size_t element_size, size_t max_count, const char* name);
  template <typename T>
  std::vector<T> array(size_t max_count, const char* name) {
    const size_t n = count(sizeof(T), max_count, name);
    std::vector<T> out(n);
    const uint8_t* p = take(n * sizeof(T));
    if (n) std::memcpy(out.data(), p, n * sizeof(T));
    return out;
  }
  size_t remaining() const { return size_ - pos_; }
  size_t position() const { return pos_; }
  const uint8_t* data() const { return data_; }
  void expect_end();

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const char* what_;
};

struct Section {
  uint32_t tag;
  const uint8_t* payload;
  size_t size;
  size_t offset;  // of the payload within the container
};

// Parses and verifies (magic, version, lengths, CRCs) a whole container held in memory.
std::vector<Section> read_container(const uint8_t* data, size_t size, uint32_t magic);
class ByteSource;
// The same checks over a whole source, computing each CRC in chunks and letting a mapped source drop the pages
// behind (ByteSource::release): a file larger than memory is verified without staying resident.
std::vector<Section> read_container_streaming(const ByteSource& source, uint32_t magic);
const Section* find_section(const std::vector<Section>& sections, uint32_t tag);
const Section& require_section(const std::vector<Section>& sections, uint32_t tag, const char* name);

// Bytes kept alive for whoever points into them: an owned buffer or a read-only file mapping.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual const uint8_t* data() const = 0;
  virtual size_t size() const = 0;
  // A hint that the whole pages inside [begin, begin + size) will not be read again soon: a file mapping gives
  // them back to the page cache (they fault in again if read), so a sequential pass over a mapped file keeps
  // the process's resident memory flat. Owned buffers ignore it.
  virtual void release(const uint8_t* begin, size_t size) const {}
};

// Drops the pages of a source behind a reader that moves forward through it: advance(p) says that nothing
// before p is needed; pages are released in batches of `batch` bytes (one madvise per batch). Correctness never
// depends on it: a released page that is read again is faulted back in from the file.
class ReleaseCursor {
 public:
  explicit ReleaseCursor(const ByteSource& source, size_t batch = size_t(1) << 20)
      : source_(&source), done_(source.data()), batch_(batch) {}
  void advance(const uint8_t* p) {
    if (p > done_ && size_t(p - done_) >= batch_) flush(p);
  }
  void flush(const uint8_t* p) {
    if (p <= done_) return;
    source_->release(done_, size_t(p - done_));
    done_ = p;
  }

 private:
  const ByteSource* source_;
  const uint8_t* done_;
  size_t batch_;
};

std::shared_ptr<ByteSource> owned_bytes(std::vector<uint8_t> bytes);
// Reads a whole file into memory. Throws Io.
std::shared_ptr<ByteSource> read_file(const std::string& path);
// Maps a file read-only (POSIX mmap; elsewhere falls back to reading it). Throws Io.
std::shared_ptr<ByteSource> map_file(const std::string& path);

// Writes bytes to `path` atomically: a temporary file in the same folder, fsync, rename over the target, then
// fsync of the folder. A crash at any point leaves either the old file or the new one, never a mix. Throws Io.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

// The streaming form of write_file_atomic: bytes are written to the temporary file as they come, and commit()
// syncs and renames it over `path`. Destroyed without commit() (an exception), it removes the temporary file
// and leaves `path` untouched. Throws Io.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(const void* data, size_t size);
  void commit();

 private:
  void abandon();
  std::string path_, tmp_;
  int fd_ = -1;              // POSIX
  std::FILE* file_ = nullptr;  // elsewhere
};

}  // namespace quiver
