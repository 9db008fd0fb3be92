// Bit packing shared by every codec: values of a few bits each are laid end to end, little-endian, the first
// value in the lowest bits of byte 0 (bit i of the stream is bit (i mod 8) of byte ⌊i/8⌋). A value of nbits
// bits written at bit offset o occupies stream bits o … o+nbits−1, its least significant bit first.
//
// Buffer sizes: writing values totalling T bits touches exactly ⌈T/8⌉ bytes; reading them reads no byte past
// that, so a code can be followed directly by other fields (e.g. RQ's norm) without padding.
#pragma once

#include <cstddef>
#include <cstdint>

namespace quiver {

// Appends values to a zero-initialised byte buffer. nbits per value: 1 … 24.
class BitWriter {
 public:
  explicit BitWriter(uint8_t* out) : out_(out) {}

  void put(uint32_t value, unsigned nbits) {
    acc_ |= uint64_t(value & ((uint32_t(1) << nbits) - 1)) << have_;
    have_ += nbits;
    while (have_ >= 8) {
      *out_++ = uint8_t(acc_);
      acc_ >>= 8;
      have_ -= 8;
    }
  }

  // Writes the last partial byte (if any). Must be called once after the last put.
  void flush() {
    if (have_ > 0) *out_++ = uint8_t(acc_);
    acc_ = 0;
    have_ = 0;
  }

 private:
  uint8_t* out_;
  uint64_t acc_ = 0;
  unsigned have_ = 0;
};

// Reads values back in the order they were written. nbits per value: 1 … 24.
class BitReader {
 public:
  explicit BitReader(const uint8_t* in) : in_(in) {}

  uint32_t get(unsigned nbits) {
    // Loads whole bytes only as they are needed, so the reader never touches a byte past the last value.
    while (have_ < nbits) {
      acc_ |= uint64_t(*in_++) << have_;
      have_ += 8;
    }
    const uint32_t value = uint32_t(acc_) & ((uint32_t(1) << nbits) - 1);
    acc_ >>= nbits;
    have_ -= nbits;
    return value;
  }

 private:
  const uint8_t* in_;
  uint64_t acc_ = 0;
  unsigned have_ = 0;
};

// Bytes needed for `count` values of `nbits` bits.
inline size_t packed_bytes(size_t count, size_t nbits) { return (count * nbits + 7) / 8; }

// Packs count values (each < 2^nbits) into packed_bytes(count, nbits) bytes at out.
inline void pack_bits(const uint32_t* values, size_t count, unsigned nbits, uint8_t* out) {
  if (nbits == 8) {
    for (size_t i = 0; i < count; ++i) out[i] = uint8_t(values[i]);
    return;
  }
  BitWriter writer(out);
  for (size_t i = 0; i < count; ++i) writer.put(values[i], nbits);
  writer.flush();
}

inline void unpack_bits(const uint8_t* in, size_t count, unsigned nbits, uint32_t* values) {
  if (nbits == 8) {
    for (size_t i = 0; i < count; ++i) values[i] = in[i];
    return;
  }
  BitReader reader(in);
  for (size_t i = 0; i < count; ++i) values[i] = reader.get(nbits);
}

}  // namespace quiver
