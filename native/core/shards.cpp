#include "shards.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

#include "error.h"
#include "fastscan.h"
#include "index.h"
#include "io.h"
#include "ivf.h"
#include "pq.h"

namespace quiver {

// How the merge streams (see shards.h). The in-memory path (Index::deserialize of every shard, merge_from,
// serialize) is the reference: tests compare the bytes. Here each input is validated without loading its bulk
// data: its small sections (metadata, codec, centroids, transforms, refine header) are loaded through a
// "skeleton" container, the same file with every bulk section emptied, so Index::deserialize and merge_from
// run their own checks (and messages) on them; the bulk sections are checked here as deserialize checks them.
// The output's small sections are the skeleton of the first input serialised again (what serialize writes
// for the merged index, whose trained state is the first shard's), its bulk sections are streamed.

namespace {

constexpr size_t kMaxRows = size_t(1) << 40;   // as Index::deserialize
constexpr size_t kCopyChunk = size_t(1) << 20;  // bytes per CRC + write step (and the write buffer)

// Bulk section tags: payload u32 pad + pad bytes, u64 element count, elements (write_bulk), except IVFL.
bool is_simple_bulk(uint32_t tag) {
  return tag == fourcc("IDS ") || tag == fourcc("CATS") || tag == fourcc("VECS") || tag == fourcc("CODE") ||
         tag == fourcc("RF16") || tag == fourcc("RSQ8") || tag == fourcc("FSCN");
}

uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts only, as the rest of the format code (RowStore borrows in place)
}

// The pad count ByteWriter::align writes when its u32 lands at absolute file offset `at`.
uint32_t pad_at(uint64_t at) { return uint32_t((8 - (at + 4) % 8) % 8); }

// One input file: its mapping, metadata and where its bulk data lies in the mapping.
struct Input {
  std::string path;
  std::shared_ptr<ByteSource> source;
  std::vector<Section> sections;
  std::string spec;
  uint64_t dim = 0;
  uint32_t metric = 0;
  uint64_t rows = 0;
  bool has_categories = false;
  int64_t next_id = 0;
  uint64_t first = 0;  // its first row in the merged index
  const uint8_t* ids = nullptr;
  const uint8_t* categories = nullptr;
  std::vector<std::pair<uint32_t, const uint8_t*>> bulk;  // other simple bulk sections: tag, first element
  std::vector<uint64_t> offsets;                          // IVF: nlist + 1 row offsets
  const uint8_t* list_rows = nullptr;                     // IVF: rows × u32, list by list
  const uint8_t* list_codes = nullptr;                    // IVF: the lists' codes back to back
  std::unique_ptr<ReleaseCursor> cursor;                  // while writing: pages behind the copy are dropped

  const uint8_t* bulk_data(uint32_t tag) const {
    for (const auto& b : bulk)
      if (b.first == tag) return b.second;
    QV_THROW(Internal, "merge: a bulk section is missing from a validated input");
  }
};

// Index::deserialize's META checks (spec buildability is checked by the skeleton's deserialize).
void read_meta(Input& in) {
  const Section& s = require_section(in.sections, fourcc("META"), "index metadata");
  ByteReader meta(s.payload, s.size, "section META");
  in.spec = meta.str(1024);
  in.dim = meta.u64();
  in.metric = meta.u32();
  in.rows = meta.u64();
  const uint8_t has_categories = meta.u8();
  in.next_id = meta.i64();
  meta.expect_end();
  QV_CHECK(in.rows <= kMaxRows, Corrupt, "row count " << in.rows << " is out of range");
  QV_CHECK(has_categories <= 1, Corrupt, "bad category flag");
  in.has_categories = has_categories == 1;
}

// The input's container with every bulk section emptied and 0 rows: loads to the trained, empty index.
std::vector<uint8_t> skeleton_of(const Input& in) {
  ContainerWriter out(fourcc("QVRI"));
  ByteWriter meta;
  meta.str(in.spec);
  meta.u64(in.dim);
  meta.u32(in.metric);
  meta.u64(0);
  meta.u8(0);
  meta.i64(in.next_id);
  out.section(fourcc("META"), meta);
  for (const Section& s : in.sections) {
    ByteWriter w;
    if (s.tag == fourcc("META") || s.tag == fourcc("CATS")) continue;
    if (is_simple_bulk(s.tag)) {
      w.u32(0);
      w.u64(0);
    } else if (s.tag == fourcc("IVFL")) {
      // nlist comes from IVFC (the skeleton's deserialize checks it against the spec). Bounded by that
      // section's size, since each list has at least one centroid float there, so a forged count cannot make
      // this allocate more than the file holds.
      uint64_t nlist = 0;
      if (const Section* c = find_section(in.sections, fourcc("IVFC")); c && c->size >= 8) {
        nlist = load_u64(c->payload);
        if (nlist > c->size / 4) nlist = 0;
      }
      w.u32(0);
      w.u64(nlist + 1);
      for (uint64_t l = 0; l <= nlist; ++l) w.u64(0);
      w.u32(0);
      w.u64(0);
      w.u32(0);
      w.u64(0);
    } else {
      w.raw(s.payload, s.size);
    }
    out.section(s.tag, w);
  }
  return out.finish();
}

// A simple bulk section's elements, checked as read_bulk checks them. `what` names the reader in messages.
const uint8_t* check_bulk(const Input& in, uint32_t tag, const char* what, const char* name, size_t elem,
                          size_t expected, const char* found_word = " elements, found ") {
  const Section& s = require_section(in.sections, tag, name);
  ByteReader r(s.payload, s.size, what);
  r.skip_alignment();
  const size_t count = r.count(elem, expected, name);
  QV_CHECK(count == expected, Corrupt, name << ": expected " << expected << found_word << count);
  const uint8_t* p = r.take(count * elem);
  r.expect_end();
  return p;
}

// Shape of the non-IVF bulk sections of an index of this type: element size and elements per row.
struct Shape {
  uint32_t tag;
  const char* name;
  size_t elem;
  size_t per_row;
};

std::vector<Shape> bulk_shapes(const Index& index) {
  std::vector<Shape> shapes;
  const size_t d = index.dim();
  if (dynamic_cast<const FlatIndex*>(&index)) shapes.push_back({fourcc("VECS"), "vectors", 4, d});
  if (dynamic_cast<const CodecIndex*>(&index)) shapes.push_back({fourcc("CODE"), "codes", 1, index.code_size()});
  switch (index.refine_storage()) {
    case RefineStorage::Float32: shapes.push_back({fourcc("VECS"), "vectors", 4, d}); break;
    case RefineStorage::Float16: shapes.push_back({fourcc("RF16"), "fp16 refine vectors", 2, d}); break;
    case RefineStorage::Int8: shapes.push_back({fourcc("RSQ8"), "int8 refine vectors", 1, d}); break;
    default: break;
  }
  return shapes;
}

// IVF geometry shared by validation and writing.
struct IvfShape {
  size_t nlist = 0, code_size = 0, m = 0, npairs = 0;
  bool fast = false;
  size_t list_bytes(size_t count) const { return fast ? fast_scan_bytes(count, npairs) : count * code_size; }
};

IvfShape ivf_shape(const IVFIndex& ivf) {
  IvfShape s;
  s.nlist = ivf.nlist();
  s.code_size = ivf.code_size();
  s.fast = ivf.fast_scan();
  if (s.fast) {
    s.m = static_cast<const ProductQuantizer&>(ivf.fine()).m();
    s.npairs = (s.m + 1) / 2;
  }
  return s;
}

// IVFIndex::load_impl's checks of the IVFL section; keeps the offsets and where rows and codes lie.
void check_ivf_lists(Input& in, const IvfShape& shape) {
  const size_t rows = size_t(in.rows), nlist = shape.nlist;
  const Section& ls = require_section(in.sections, fourcc("IVFL"), "IVF lists");
  ByteReader r(ls.payload, ls.size, "section IVFL");
  r.skip_alignment();
  in.offsets = r.array<uint64_t>(nlist + 1, "IVF offsets");
  const std::vector<uint64_t>& offsets = in.offsets;
  QV_CHECK(offsets.size() == nlist + 1 && offsets[0] == 0 && offsets[nlist] == rows, Corrupt,
           "IVF offsets do not cover the " << rows << " rows");
  for (size_t l = 0; l < nlist; ++l) QV_CHECK(offsets[l] <= offsets[l + 1], Corrupt, "IVF offsets decrease");
  r.skip_alignment();
  const size_t nrows = r.count(sizeof(uint32_t), rows, "IVF rows");
  QV_CHECK(nrows == rows, Corrupt, "IVF rows: expected " << rows);
  in.list_rows = r.take(nrows * sizeof(uint32_t));
  size_t expected_codes = 0;
  for (size_t l = 0; l < nlist; ++l) expected_codes += shape.list_bytes(size_t(offsets[l + 1] - offsets[l]));
  r.skip_alignment();
  const size_t ncode = r.count(1, expected_codes, "IVF codes");
  QV_CHECK(ncode == expected_codes, Corrupt, "IVF codes: expected " << expected_codes << " bytes");
  in.list_codes = r.take(ncode);
  r.expect_end();
  ReleaseCursor cursor(*in.source);
  if (shape.fast) {
    size_t at = 0;
    for (size_t l = 0; l < nlist; ++l) {
      const size_t count = size_t(offsets[l + 1] - offsets[l]);
      QV_CHECK(fast_scan_padding_is_zero(in.list_codes + at, shape.npairs, shape.m, count), Corrupt,
               "IVF list " << l << ": fast-scan padding or phantom sub-code is not zero");
      at += shape.list_bytes(count);
      cursor.advance(in.list_codes + at);
    }
  }
  // Every row appears in exactly one list: one bit per row.
  std::vector<uint64_t> seen((rows + 63) / 64, 0);
  for (size_t l = 0; l < nlist; ++l)
    for (uint64_t s = offsets[l]; s < offsets[l + 1]; ++s) {
      uint32_t row;
      std::memcpy(&row, in.list_rows + s * 4, 4);
      QV_CHECK(row < rows && !((seen[row >> 6] >> (row & 63)) & 1), Corrupt,
               "IVF list " << l << " names row " << row << " twice or out of range");
      seen[row >> 6] |= uint64_t(1) << (row & 63);
      if ((s & 0xFFFF) == 0) cursor.advance(in.list_rows + s * 4);
    }
}

// Loads, validates and describes input i; returns its skeleton index (trained state, no rows).
std::unique_ptr<Index> open_input(Input& in) {
  in.source = map_file(in.path);
  in.sections = read_container_streaming(*in.source, fourcc("QVRI"));
  read_meta(in);
  std::unique_ptr<Index> skeleton = Index::deserialize(owned_bytes(skeleton_of(in)), false);
  const size_t rows = size_t(in.rows);

  ReleaseCursor cursor(*in.source);
  in.ids = check_bulk(in, fourcc("IDS "), "section IDS", "ids", 8, rows, ", found ");
  int64_t max_id = -1;
  for (size_t row = 0; row < rows; ++row) {
    int64_t id;
    std::memcpy(&id, in.ids + row * 8, 8);
    max_id = std::max(max_id, id);
    if ((row & 0xFFFF) == 0) cursor.advance(in.ids + row * 8);
  }
  QV_CHECK(rows == 0 || in.next_id > max_id || max_id == std::numeric_limits<int64_t>::max(), Corrupt,
           "next id " << in.next_id << " does not follow the largest id " << max_id);
  if (in.has_categories) {
    in.categories = check_bulk(in, fourcc("CATS"), "section CATS", "categories", 4, rows);
    for (size_t row = 0; row < rows; ++row) {
      int32_t c;
      std::memcpy(&c, in.categories + row * 4, 4);
      QV_CHECK(c >= kNoCategory, Corrupt, "category " << c);
      if ((row & 0xFFFF) == 0) cursor.advance(in.categories + row * 4);
    }
  }
  cursor.flush(in.source->data() + in.source->size());
  for (const Shape& s : bulk_shapes(*skeleton)) {
    QV_CHECK(rows <= size_t(-1) / 4 / std::max<size_t>(s.per_row, 1), Corrupt, s.name << " size overflows");
    in.bulk.emplace_back(s.tag, check_bulk(in, s.tag, s.name, s.name, s.elem, rows * s.per_row));
  }
  if (const auto* fs = dynamic_cast<const FastScanIndex*>(skeleton.get())) {
    // FastScanIndex::load_impl's checks: whole blocks, zero padding.
    const size_t m = fs->pq().m(), block_bytes = fs->npairs() * kFastScanBlock;
    const uint8_t* blocks = check_bulk(in, fourcc("FSCN"), "fast-scan blocks", "fast-scan blocks", 1,
                                       (rows + kFastScanBlock - 1) / kFastScanBlock * block_bytes);
    QV_CHECK(fast_scan_padding_is_zero(blocks, fs->npairs(), m, rows), Corrupt,
             "fast-scan padding or phantom sub-code is not zero");
    in.bulk.emplace_back(fourcc("FSCN"), blocks);
  }
  if (const auto* ivf = dynamic_cast<const IVFIndex*>(skeleton.get())) check_ivf_lists(in, ivf_shape(*ivf));
  return skeleton;
}

[[noreturn]] void rethrow_for(size_t i, const std::string& path, const Error& e) {
  // Say which file failed, keeping the code (Corrupt, Io, InvalidArgument) for the caller.
  throw Error(e.code(), "files[" + std::to_string(i) + "] (" + path + "): " + e.what(), e.file(), e.line());
}

uint64_t mix(uint64_t x) {  // splitmix64's finaliser: spreads ids over the partitions
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Calls fn(id) for each id of `in` in row order, dropping the pages behind.
template <typename Fn>
void for_each_id(const Input& in, Fn&& fn) {
  ReleaseCursor cursor(*in.source);
  for (size_t row = 0; row < in.rows; ++row) {
    int64_t id;
    std::memcpy(&id, in.ids + row * 8, 8);
    fn(id);
    if ((row & 0xFFFF) == 0) cursor.advance(in.ids + row * 8);
  }
}

// No id may appear twice, within an input (Corrupt, as deserialize says) or across inputs (InvalidArgument, as
// merge_from says, naming the later file). Sorting every id would need 8 bytes per row; instead the ids are
// split by hash into partitions of at most about `budget` ids, one partition sorted per pass.
void check_disjoint_ids(const std::vector<Input>& inputs, uint64_t total, size_t budget) {
  const uint64_t passes = std::max<uint64_t>(1, (total + budget - 1) / std::max<size_t>(budget, 1));
  std::vector<int64_t> keys;
  for (uint64_t pass = 0; pass < passes; ++pass) {
    keys.clear();
    keys.reserve(size_t(std::min<uint64_t>(total, total / passes + total / passes / 8 + 1024)));
    for (const Input& in : inputs)
      for_each_id(in, [&](int64_t id) {
        if (passes == 1 || mix(uint64_t(id)) % passes == pass) keys.push_back(id);
      });
    std::sort(keys.begin(), keys.end());
    const auto dup = std::adjacent_find(keys.begin(), keys.end());
    if (dup == keys.end()) continue;
    // Name the files as the in-memory merge would: the first that holds the id twice, or the later of two.
    const int64_t id = *dup;
    keys = std::vector<int64_t>();
    size_t first_file = inputs.size();
    for (size_t i = 0; i < inputs.size(); ++i) {
      size_t seen = 0;
      for_each_id(inputs[i], [&](int64_t v) { seen += v == id; });
      if (seen == 0) continue;
      if (seen > 1 && first_file == inputs.size()) {
        try {
          QV_THROW(Corrupt, "id " << id << " appears twice");
        } catch (const Error& e) {
          rethrow_for(i, inputs[i].path, e);
        }
      }
      if (first_file == inputs.size()) {
        first_file = i;
        continue;
      }
      try {
        QV_THROW(InvalidArgument, "merge: id " << id << " is in both indexes");
      } catch (const Error& e) {
        rethrow_for(i, inputs[i].path, e);
      }
    }
    QV_THROW(Internal, "merge: duplicate id " << id << " not found again");
  }
}

// The output container, written straight to a temporary file: each section's length is declared up front
// and checked at its end; its CRC is computed while the payload goes by.
class SectionStream {
 public:
  explicit SectionStream(const std::string& path) : file_(path) {
    buffer_.reserve(kCopyChunk);
    raw_u32(fourcc("QVRI"));
    raw_u32(kFormatVersion);
  }
  uint64_t offset() const { return offset_; }
  void begin(uint32_t tag, uint64_t length) {
    QV_CHECK(!open_, Internal, "merge: section inside a section");
    raw_u32(tag);
    raw_u64(length);
    left_ = length;
    crc_ = 0;
    open_ = true;
  }
  void put(const void* data, size_t size) {
    QV_CHECK(open_ && size <= left_, Internal, "merge: a section outgrows its declared length");
    crc_ = crc32(static_cast<const uint8_t*>(data), size, crc_);
    left_ -= size;
    raw(data, size);
  }
  void u32(uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; ++i) b[i] = uint8_t(v >> (8 * i));
    put(b, 4);
  }
  void u64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
    put(b, 8);
  }
  // ByteWriter::align(·, 8) at the current position.
  void pad() {
    static const uint8_t zeros[8] = {};
    const uint32_t n = pad_at(offset_);
    u32(n);
    put(zeros, n);
  }
  void end() {
    QV_CHECK(open_ && left_ == 0, Internal, "merge: a section is shorter than its declared length");
    open_ = false;
    raw_u32(crc_);
  }
  void section(uint32_t tag, const uint8_t* payload, size_t size) {
    begin(tag, size);
    put(payload, size);
    end();
  }
  void commit() {
    section(fourcc("END "), nullptr, 0);
    flush();
    file_.commit();
  }

 private:
  void raw_u32(uint32_t v) {
    uint8_t b[4];
    for (int i = 0; i < 4; ++i) b[i] = uint8_t(v >> (8 * i));
    raw(b, 4);
  }
  void raw_u64(uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(v >> (8 * i));
    raw(b, 8);
  }
  void raw(const void* data, size_t size) {
    offset_ += size;
    if (buffer_.size() + size > kCopyChunk) flush();
    if (size >= kCopyChunk) {
      file_.write(data, size);
    } else {
      const uint8_t* p = static_cast<const uint8_t*>(data);
      buffer_.insert(buffer_.end(), p, p + size);
    }
  }
  void flush() {
    if (!buffer_.empty()) file_.write(buffer_.data(), buffer_.size());
    buffer_.clear();
  }

  AtomicFileWriter file_;
  std::vector<uint8_t> buffer_;
  uint64_t offset_ = 0;
  uint64_t left_ = 0;
  uint32_t crc_ = 0;
  bool open_ = false;
};

// Copies bytes of an input's mapping into the open section, chunk by chunk, releasing its pages behind.
void copy(SectionStream& out, Input& in, const uint8_t* p, size_t size) {
  for (size_t done = 0; done < size;) {
    const size_t n = std::min(kCopyChunk, size - done);
    out.put(p + done, n);
    done += n;
    in.cursor->advance(p + done);
  }
}

// A simple bulk section: the inputs' elements one after another (write_bulk of the merged store).
void write_simple_bulk(SectionStream& out, std::vector<Input>& inputs, uint32_t tag, size_t elem, size_t per_row,
                       uint64_t total_rows) {
  const uint64_t count = total_rows * per_row;
  out.begin(tag, 4 + pad_at(out.offset() + 12) + 8 + count * elem);
  out.pad();
  out.u64(count);
  for (Input& in : inputs) {
    const size_t bytes = size_t(in.rows) * per_row * elem;
    if (tag == fourcc("IDS ")) {
      copy(out, in, in.ids, bytes);
    } else if (tag == fourcc("CATS")) {
      if (in.has_categories) {
        copy(out, in, in.categories, bytes);
      } else {
        // A shard without categories: every row gets kNoCategory, as merge_from fills them.
        const std::vector<int32_t> none(4096, kNoCategory);
        for (uint64_t left = in.rows; left > 0;) {
          const size_t n = size_t(std::min<uint64_t>(left, none.size()));
          out.put(none.data(), n * 4);
          left -= n;
        }
      }
    } else {
      copy(out, in, in.bulk_data(tag), bytes);
    }
  }
  out.end();
}

// Joins fast-scan block runs (an IVF list's, a FastScanIndex's) of several inputs into one run. Blocks hold 32
// rows with the rows' nibbles interleaved and a run's last block may be partly filled, so the next input's rows
// shift by have % 32. Where the joined run is at a block boundary, whole blocks copy unchanged; other rows are
// re-packed one by one into the block being built (as merge_from re-packs them), padding left zero.
class FastScanJoiner {
 public:
  FastScanJoiner(size_t m, size_t npairs) : m_(m), npairs_(npairs), block_(npairs * kFastScanBlock, 0), sub_(m) {}
  void append(SectionStream& out, Input& in, const uint8_t* src, size_t count) {
    size_t slot = 0;
    if (have_ % kFastScanBlock == 0) {
      const size_t whole = count / kFastScanBlock;
      copy(out, in, src, whole * block_.size());
      slot = whole * kFastScanBlock;
      have_ += slot;
    }
    for (; slot < count; ++slot) {
      for (size_t m = 0; m < m_; ++m) sub_[m] = fast_scan_sub_code(src, npairs_, slot, m);
      fast_scan_put(block_.data(), npairs_, m_, have_ % kFastScanBlock, 1, sub_.data());
      if (++have_ % kFastScanBlock == 0) emit(out);
    }
    in.cursor->advance(src + fast_scan_bytes(count, npairs_));
  }
  // Ends the run: writes the partly filled last block.
  void finish(SectionStream& out) {
    if (have_ % kFastScanBlock != 0) emit(out);
    have_ = 0;
  }

 private:
  void emit(SectionStream& out) {
    out.put(block_.data(), block_.size());
    std::fill(block_.begin(), block_.end(), uint8_t(0));
  }
  size_t m_, npairs_, have_ = 0;
  std::vector<uint8_t> block_;
  std::vector<uint32_t> sub_;
};

// The FSCN section of a merged FastScanIndex: one run of blocks.
void write_fast_scan(SectionStream& out, std::vector<Input>& inputs, const FastScanIndex& fs, uint64_t total_rows) {
  const uint64_t bytes = fast_scan_bytes(size_t(total_rows), fs.npairs());
  out.begin(fourcc("FSCN"), 4 + pad_at(out.offset() + 12) + 8 + bytes);
  out.pad();
  out.u64(bytes);
  FastScanJoiner joiner(fs.pq().m(), fs.npairs());
  for (Input& in : inputs) joiner.append(out, in, in.bulk_data(fourcc("FSCN")), size_t(in.rows));
  joiner.finish(out);
  out.end();
}

// The IVFL section of the merged index: list l is every input's list l in input order, rows renumbered.
void write_ivf_lists(SectionStream& out, std::vector<Input>& inputs, const IvfShape& shape, uint64_t total_rows) {
  const size_t nlist = shape.nlist;
  const auto merged_count = [&](size_t l) {
    uint64_t c = 0;
    for (const Input& in : inputs) c += in.offsets[l + 1] - in.offsets[l];
    return c;
  };
  uint64_t code_bytes = 0;
  for (size_t l = 0; l < nlist; ++l) code_bytes += shape.list_bytes(size_t(merged_count(l)));
  const uint64_t base = out.offset() + 12;
  uint64_t pos = base;
  pos += 4 + pad_at(pos) + 8 + (nlist + 1) * 8;
  pos += 4 + pad_at(pos) + 8 + total_rows * 4;
  pos += 4 + pad_at(pos) + 8 + code_bytes;
  out.begin(fourcc("IVFL"), pos - base);

  out.pad();
  out.u64(nlist + 1);
  uint64_t at = 0;
  out.u64(0);
  for (size_t l = 0; l < nlist; ++l) out.u64(at += merged_count(l));

  out.pad();
  out.u64(total_rows);
  std::vector<uint32_t> rows;
  rows.reserve(kCopyChunk / 4);
  const auto flush_rows = [&] {
    out.put(rows.data(), rows.size() * 4);
    rows.clear();
  };
  for (size_t l = 0; l < nlist; ++l)
    for (Input& in : inputs) {
      const uint8_t* p = in.list_rows + in.offsets[l] * 4;
      for (uint64_t s = in.offsets[l]; s < in.offsets[l + 1]; ++s, p += 4) {
        uint32_t row;
        std::memcpy(&row, p, 4);
        rows.push_back(uint32_t(in.first + row));  // < 2^32: the total was checked
        if (rows.size() == rows.capacity()) {
          flush_rows();
          in.cursor->advance(p);
        }
      }
    }
  flush_rows();

  out.pad();
  out.u64(code_bytes);
  std::vector<uint64_t> code_at(inputs.size(), 0);  // bytes of each input's codes consumed so far
  FastScanJoiner joiner(shape.m, shape.npairs);
  for (size_t l = 0; l < nlist; ++l) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      Input& in = inputs[i];
      const size_t count = size_t(in.offsets[l + 1] - in.offsets[l]);
      const uint8_t* src = in.list_codes + code_at[i];
      code_at[i] += shape.list_bytes(count);
      if (shape.fast)
        joiner.append(out, in, src, count);
      else
        copy(out, in, src, count * shape.code_size);
    }
    if (shape.fast) joiner.finish(out);
  }
  out.end();
}

}  // namespace

void merge_index_files(const std::vector<std::string>& inputs, const std::string& output) {
  merge_index_files(inputs, output, MergeLimits());
}

void merge_index_files(const std::vector<std::string>& paths, const std::string& output, const MergeLimits& limits) {
  QV_CHECK(!paths.empty(), InvalidArgument, "files: expected at least one index file to merge");
  std::vector<Input> inputs(paths.size());
  std::unique_ptr<Index> first;  // the first input's skeleton: the merged index's trained state
  uint64_t total = 0;
  int64_t next_id = 0;
  bool categories = false;
  for (size_t i = 0; i < paths.size(); ++i) {
    Input& in = inputs[i];
    in.path = paths[i];
    try {
      std::unique_ptr<Index> skeleton = open_input(in);
      // merge_from's checks on the trained state (spec, dimension, metric, codebooks, refine store); the
      // skeletons hold no rows, so this costs the size of the trained state only.
      if (!first)
        first = std::move(skeleton);
      else
        first->merge_from(*skeleton);
      if (dynamic_cast<const IVFIndex*>(first.get()))
        QV_CHECK(total + in.rows < (uint64_t(1) << 32), InvalidArgument, "IVF indexes hold at most 2^32 − 1 vectors");
      QV_CHECK(total + in.rows <= kMaxRows, InvalidArgument,
               "merge: more than " << kMaxRows << " rows in all cannot be loaded again");
    } catch (const Error& e) {
      rethrow_for(i, in.path, e);
    }
    in.first = total;
    total += in.rows;
    next_id = i == 0 ? in.next_id : std::max(next_id, in.next_id);
    categories = categories || in.has_categories;
  }
  check_disjoint_ids(inputs, total, limits.id_check_ids);

  // The small sections and their order, as serialize() writes them for the merged index.
  const std::vector<uint8_t> skeleton_bytes = first->serialize();
  const std::vector<Section> layout = read_container(skeleton_bytes.data(), skeleton_bytes.size(), fourcc("QVRI"));
  const std::vector<Shape> shapes = bulk_shapes(*first);
  const auto* ivf = dynamic_cast<const IVFIndex*>(first.get());

  for (Input& in : inputs) in.cursor = std::make_unique<ReleaseCursor>(*in.source);
  SectionStream out(output);
  ByteWriter meta;
  meta.str(first->spec());
  meta.u64(first->dim());
  meta.u32(uint32_t(first->metric()));
  meta.u64(total);
  meta.u8(categories ? 1 : 0);
  meta.i64(next_id);
  out.section(fourcc("META"), meta.bytes().data(), meta.size());
  write_simple_bulk(out, inputs, fourcc("IDS "), 8, 1, total);
  if (categories) write_simple_bulk(out, inputs, fourcc("CATS"), 4, 1, total);
  for (const Section& s : layout) {
    if (s.tag == fourcc("META") || s.tag == fourcc("IDS ") || s.tag == fourcc("CATS")) continue;
    if (s.tag == fourcc("FSCN")) {
      const auto* fs = dynamic_cast<const FastScanIndex*>(first.get());
      QV_CHECK(fs != nullptr, Internal, "merge: fast-scan blocks in another index type");
      write_fast_scan(out, inputs, *fs, total);
      continue;
    }
    if (s.tag == fourcc("IVFL")) {
      QV_CHECK(ivf != nullptr, Internal, "merge: IVF lists in a non-IVF index");
      write_ivf_lists(out, inputs, ivf_shape(*ivf), total);
      continue;
    }
    const auto shape = std::find_if(shapes.begin(), shapes.end(), [&](const Shape& b) { return b.tag == s.tag; });
    if (shape != shapes.end())
      write_simple_bulk(out, inputs, s.tag, shape->elem, shape->per_row, total);
    else
      out.section(s.tag, s.payload, s.size);  // codec, centroids, refine header: the first input's state
  }
  out.commit();
}

}  // namespace quiver
