// faiss file interop; the layout and the mapping are documented in faiss_io.h.
#include "faiss_io.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <unordered_set>

#include "bitpack.h"
#include "error.h"
#include "fastscan.h"
#include "io.h"
#include "ivf.h"
#include "linalg.h"
#include "opq.h"
#include "pq.h"
#include "rq.h"
#include "spec.h"

namespace quiver {

namespace {

constexpr int32_t kFaissInnerProduct = 0, kFaissL2 = 1;
// faiss AdditiveQuantizer::Search_type_t values (stable since they were introduced).
enum FaissSearchType : int32_t {
  kStDecompress = 0,
  kStLutNoNorm = 1,
  kStNormFromLut = 2,
  kStNormFloat = 3,
  kStNormQint8 = 4,
  kStNormQint4 = 5,
  kStNormCqint8 = 6,
  kStNormCqint4 = 7,
};
constexpr int32_t kTrainProgressiveDim = 1;  // faiss ResidualQuantizer's default train_type

constexpr size_t kMaxDim = 1 << 16;
constexpr size_t kMaxRows = size_t(1) << 40;
constexpr size_t kMaxIvfRows = std::numeric_limits<uint32_t>::max();  // IVF row numbers are uint32
constexpr size_t kMaxNlist = 1 << 20;
constexpr size_t kMaxStages = 64;
constexpr size_t kMaxNbits = 12;
constexpr int kMaxDepth = 3;  // IxMp(IxPT(IxPq)) is the deepest nesting we read

std::string printable_fourcc(uint32_t h) {
  std::ostringstream s;
  for (int i = 0; i < 4; ++i) {
    const unsigned char c = static_cast<unsigned char>(h >> (8 * i));
    if (c >= 32 && c < 127 && c != '\\' && c != '"')
      s << c;
    else
      s << "\\x" << "0123456789abcdef"[c >> 4] << "0123456789abcdef"[c & 15];
  }
  return s.str();
}

// ------------------------------------------------------------------------------------------------ writing

void put_i32(ByteWriter& w, int32_t v) { w.u32(uint32_t(v)); }
void put_floats(ByteWriter& w, const std::vector<float>& v) {
  w.u64(v.size());
  w.raw(v.data(), v.size() * sizeof(float));
}

void write_header(ByteWriter& w, size_t d, size_t ntotal, int32_t metric) {
  put_i32(w, int32_t(d));
  w.i64(int64_t(ntotal));
  w.i64(int64_t(1) << 20);  // two unused fields faiss still writes
  w.i64(int64_t(1) << 20);
  w.u8(1);  // is_trained
  put_i32(w, metric);
}

int32_t faiss_metric(Metric metric) {
  QV_CHECK(metric != Metric::Cosine, Unsupported,
           "faiss has no cosine metric: build the index with metric 'ip' on normalised vectors to export it");
  return metric == Metric::L2 ? kFaissL2 : kFaissInnerProduct;
}

void check_faiss_pq(const ProductQuantizer& pq) {
  QV_CHECK(pq.dim() % pq.m() == 0, Unsupported,
           "faiss's PQ needs M to divide the dimension; " << pq.spec() << " at dim " << pq.dim()
                                                         << " has uneven sub-spaces");
}

void write_pq(ByteWriter& w, const ProductQuantizer& pq) {
  w.u64(pq.dim());
  w.u64(pq.m());
  w.u64(pq.nbits());
  // Our centroid layout (pq.h) is faiss's when the sub-spaces are even: sub-space m's ksub × dsub block at m.
  put_floats(w, pq.all_centroids());
}

// IndexPQ: `codes` holds n codes of pq.code_size() bytes in faiss's (= our) bit order.
void write_index_pq(ByteWriter& w, size_t n, int32_t metric, const ProductQuantizer& pq, const uint8_t* codes) {
  w.u32(fourcc("IxPq"));
  write_header(w, pq.dim(), n, metric);
  write_pq(w, pq);
  w.u64(n * pq.code_size());
  w.raw(codes, n * pq.code_size());
  put_i32(w, 0);  // search_type ST_PQ: asymmetric distances, as quiver searches
  w.u8(0);        // encode_signs
  put_i32(w, int32_t(pq.m() * pq.nbits() + 1));  // polysemous_ht: faiss's default (no Hamming filtering)
}

// How an RQ's codes look to faiss.
struct RQForm {
  int32_t search_type;
  float norm_min, norm_max;
  size_t norm_bits;
  size_t code_size;  // faiss bytes per vector
};

RQForm rq_form(const ResidualQuantizer& rq) {
  RQForm f{};
  const NormCodec& norm = rq.norm_codec();
  if (norm.storage() == NormStorage::Float32) {
    f.search_type = kStNormFloat;
    f.norm_min = norm.lo();
    f.norm_max = norm.hi();
    f.norm_bits = 32;
  } else {
    // quiver decodes byte c as lo + (hi − lo)·c/255, faiss as min + (max − min)·(c + 0.5)/256: choose faiss's
    // range so both give the same value for every c.
    const double lo = norm.lo(), span = double(norm.hi()) - norm.lo();
    f.search_type = kStNormQint8;
    f.norm_min = float(lo - span * 0.5 / 255.0);
    f.norm_max = float(lo - span * 0.5 / 255.0 + span * 256.0 / 255.0);
    f.norm_bits = 8;
  }
  f.code_size = (rq.stages() * rq.nbits() + f.norm_bits + 7) / 8;
  return f;
}

void write_rq(ByteWriter& w, const ResidualQuantizer& rq, const RQForm& f) {
  w.u64(rq.dim());
  w.u64(rq.stages());
  w.u64(rq.stages());
  for (size_t l = 0; l < rq.stages(); ++l) w.u64(rq.nbits());
  w.u8(1);  // is_trained
  put_floats(w, rq.all_codebooks());  // stage-major L × K × d: faiss's layout too
  put_i32(w, f.search_type);
  w.f32(f.norm_min);
  w.f32(f.norm_max);
  put_i32(w, kTrainProgressiveDim);
  put_i32(w, int32_t(rq.options().beam));
}

// One quiver RQ code (stage codes padded to a byte, then the norm bytes) → faiss's bit string (stage codes,
// then the norm bits straight after them). out: f.code_size bytes.
void rq_code_to_faiss(const ResidualQuantizer& rq, const RQForm& f, const uint8_t* in, uint8_t* out,
                      uint32_t* stage_codes) {
  rq.unpack(in, stage_codes);
  std::memset(out, 0, f.code_size);
  BitWriter bits(out);
  for (size_t l = 0; l < rq.stages(); ++l) bits.put(stage_codes[l], unsigned(rq.nbits()));
  const uint8_t* norm = in + rq.stage_code_bytes();
  if (f.norm_bits == 32) {
    uint32_t raw;
    std::memcpy(&raw, norm, 4);  // the f32 bits (little-endian hosts only, like the rest of the formats)
    bits.put(raw & 0xffff, 16);
    bits.put(raw >> 16, 16);
  } else {
    bits.put(*norm, 8);
  }
  bits.flush();
}

void write_ivf(ByteWriter& w, const IVFIndex& ivf) {
  QV_CHECK(!ivf.local_transforms(), Unsupported,
           "faiss has no form for TRQ's learnt per-list transforms (" << ivf.spec()
               << "); export the codebooks with the plain export instead");
  QV_CHECK(ivf.metric() == Metric::L2, Unsupported,
           "only L2 IVF indexes are exported to faiss: quiver probes the lists of an inner-product IVF by L2 "
           "distance to the centroids and faiss by inner product, so the two would search differently");
  QV_CHECK(ivf.refine_storage() == RefineStorage::None, Unsupported,
           "the ',Refine' vector store has no faiss form inside an IVF index; build the index without Refine");
  QV_CHECK(!ivf.fast_scan(), Unsupported,
           "IVF fast-scan lists (" << ivf.spec() << ") are stored in blocks of 32 codes, which faiss 1.7.3's "
           "IndexIVFPQ cannot read; export an IVF<n>,PQ<M>x4 index instead");
  const Quantizer& fine = ivf.fine();
  const auto* pq = dynamic_cast<const ProductQuantizer*>(&fine);
  const auto* rq = dynamic_cast<const ResidualQuantizer*>(&fine);
  QV_CHECK(pq || rq, Unsupported,
           "faiss IVF files hold PQ or RQ fine codecs; " << fine.spec() << " has no faiss form");
  const size_t d = ivf.dim(), n = ivf.size(), nlist = ivf.nlist(), cs = fine.code_size();
  RQForm form{};
  if (pq) check_faiss_pq(*pq);
  if (rq) form = rq_form(*rq);
  const size_t faiss_cs = pq ? cs : form.code_size;

  w.u32(fourcc(pq ? "IwPQ" : "IwRQ"));
  write_header(w, d, n, kFaissL2);
  w.u64(nlist);
  w.u64(1);  // nprobe
  w.u32(fourcc("IxF2"));
  write_header(w, d, nlist, kFaissL2);
  put_floats(w, ivf.centroids());
  w.u8(0);   // direct map: none
  w.u64(0);  // … and its empty array
  if (pq) {
    w.u8(1);  // by_residual
    w.u64(cs);
    write_pq(w, *pq);
  } else {
    w.u64(faiss_cs);
    write_rq(w, *rq, form);
    w.u8(1);        // by_residual
    put_i32(w, 0);  // use_precomputed_table
  }
  w.u32(fourcc("ilar"));
  w.u64(nlist);
  w.u64(faiss_cs);
  w.u32(fourcc("full"));
  w.u64(nlist);
  for (size_t l = 0; l < nlist; ++l) w.u64(ivf.list_size(l));
  const std::vector<int64_t>& ids = ivf.ids();
  std::vector<uint8_t> code(faiss_cs);
  std::vector<uint32_t> stage_codes(rq ? rq->stages() : 0);
  for (size_t l = 0; l < nlist; ++l) {
    const IVFIndex::ListView v = ivf.list_view(l);
    if (v.count == 0) continue;
    if (pq) {
      w.raw(v.codes, v.count * cs);
    } else {
      for (size_t i = 0; i < v.count; ++i) {
        rq_code_to_faiss(*rq, form, v.codes + i * cs, code.data(), stage_codes.data());
        w.raw(code.data(), faiss_cs);
      }
    }
    for (size_t i = 0; i < v.count; ++i) w.i64(ids[v.rows[i]]);
  }
}

bool sequential_ids(const std::vector<int64_t>& ids) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] != int64_t(i)) return false;
  return true;
}

std::string codec_refusal(const Quantizer& codec) {
  const std::string spec = codec.spec();
  if (spec.rfind("TRQ", 0) == 0)
    return "faiss has no form for TRQ's learnt local transforms (" + spec + ")";
  if (spec.rfind("PRQ", 0) == 0)
    return "quiver's PRQ (" + spec + ") is not mapped to faiss's IndexProductResidualQuantizer";
  return "the codec " + spec + " has no faiss form";
}

// ------------------------------------------------------------------------------------------------ reading

// What a faiss file held, in quiver's terms.
struct Parsed {
  size_t d = 0;
  Metric metric = Metric::L2;
  size_t ntotal = 0;
  std::unique_ptr<Quantizer> codec;  // trained
  std::vector<uint8_t> codes;        // ntotal × codec->code_size(), quiver layout, row order
  std::vector<int64_t> ids;          // empty: 0 … ntotal−1
  bool ivf = false;
  size_t nlist = 0;
  std::vector<float> centroids;    // nlist × d
  std::vector<uint64_t> offsets;   // nlist + 1: list l holds rows offsets[l] … offsets[l+1]−1
  std::string what;                // the faiss type, for messages
};

struct Header {
  size_t d;
  size_t ntotal;
  Metric metric;
};

// An RQ as read, with how its codes are laid out in the file.
struct ReadRQ {
  std::unique_ptr<ResidualQuantizer> rq;
  int32_t search_type = 0;
  size_t norm_bits = 0;
  size_t faiss_code_size = 0;
};

class FaissReader {
 public:
  FaissReader(const uint8_t* data, size_t size) : r_(data, size, "faiss file") {}

  std::unique_ptr<Index> read() {
    Parsed p = read_index(0);
    QV_CHECK(r_.remaining() == 0, Corrupt,
             "faiss file: " << r_.remaining() << " unexpected bytes after the " << p.what << " index");
    return assemble(std::move(p));
  }

 private:
  int32_t i32() { return int32_t(r_.u32()); }

  bool boolean(const char* name) {
    const uint8_t v = r_.u8();
    QV_CHECK(v <= 1, Corrupt, "faiss file: " << name << " must be a bool (0 or 1), found " << int(v));
    return v == 1;
  }

  // u64 that must lie in [lo, hi].
  size_t bounded(const char* name, uint64_t lo, uint64_t hi) {
    const uint64_t v = r_.u64();
    QV_CHECK(v >= lo && v <= hi, Corrupt, "faiss file: " << name << " is " << v << ", expected " << lo << " … " << hi);
    return size_t(v);
  }

  std::vector<float> floats(size_t expected, const char* name) {
    std::vector<float> v = r_.array<float>(expected, name);
    QV_CHECK(v.size() == expected, Corrupt,
             "faiss file: " << name << " holds " << v.size() << " floats, expected " << expected);
    for (float x : v) QV_CHECK(std::isfinite(x), Corrupt, "faiss file: " << name << " holds a non-finite value");
    return v;
  }

  // Skips a vec<T> of elements of `element_size` bytes.
  void skip_vector(size_t element_size, const char* name) {
    const size_t n = r_.count(element_size, std::numeric_limits<size_t>::max() / element_size, name);
    r_.take(n * element_size);
  }

  Header header(const char* what) {
    const int32_t d = i32();
    const int64_t ntotal = r_.i64();
    r_.i64();
    r_.i64();
    const bool trained = boolean("is_trained");
    const int32_t metric = i32();
    QV_CHECK(d >= 1 && size_t(d) <= kMaxDim, Corrupt,
             "faiss file: " << what << " dimension " << d << " is out of range (1 … " << kMaxDim << ")");
    QV_CHECK(ntotal >= 0 && uint64_t(ntotal) <= kMaxRows, Corrupt,
             "faiss file: " << what << " vector count " << ntotal << " is out of range");
    QV_CHECK(trained, Unsupported, "faiss file: the " << what << " index is not trained; train it before saving");
    QV_CHECK(metric == kFaissL2 || metric == kFaissInnerProduct, Unsupported,
             "faiss file: metric type " << metric << " has no quiver equivalent (quiver reads L2 and inner product)");
    return Header{size_t(d), size_t(ntotal), metric == kFaissL2 ? Metric::L2 : Metric::InnerProduct};
  }

  std::unique_ptr<ProductQuantizer> read_pq(size_t d) {
    const size_t pd = bounded("PQ d", d, d);
    const size_t m = bounded("PQ M", 1, pd);
    const size_t nbits = bounded("PQ nbits", 1, 64);
    QV_CHECK(pd % m == 0, Corrupt, "faiss file: PQ M=" << m << " does not divide d=" << pd);
    QV_CHECK(nbits <= kMaxNbits, Unsupported,
             "faiss file: PQ with " << nbits << "-bit codes; quiver's PQ takes 1 … " << kMaxNbits << " bits");
    auto pq = std::make_unique<ProductQuantizer>(pd, m, nbits);
    pq->set_centroids(floats(pq->ksub() * pd, "PQ centroids"));
    return pq;
  }

  std::vector<uint8_t> read_codes(size_t n, size_t code_size, const char* name) {
    const size_t expected = n * code_size;  // n ≤ 2^40, code_size ≤ 2^21: no overflow
    std::vector<uint8_t> codes = r_.array<uint8_t>(expected, name);
    QV_CHECK(codes.size() == expected, Corrupt,
             "faiss file: " << name << " hold " << codes.size() << " bytes, expected " << expected << " (" << n
                            << " vectors × " << code_size << " bytes)");
    return codes;
  }

  ReadRQ read_rq(size_t d, bool old_layout) {
    const size_t rd = bounded("RQ d", d, d);
    const size_t stages = bounded("RQ M", 1, kMaxStages);
    std::vector<uint64_t> nbits = r_.array<uint64_t>(kMaxStages, "RQ nbits");
    QV_CHECK(nbits.size() == stages, Corrupt, "faiss file: RQ has " << stages << " stages but " << nbits.size() << " nbits");
    for (uint64_t b : nbits) {
      QV_CHECK(b >= 1 && b <= 64, Corrupt, "faiss file: RQ stage of " << b << " bits");
      QV_CHECK(b == nbits[0], Unsupported, "faiss file: RQ stages of different sizes; quiver's RQ uses one size");
      QV_CHECK(b <= kMaxNbits, Unsupported, "faiss file: RQ with " << b << "-bit stages; quiver takes 1 … " << kMaxNbits);
    }
    const bool trained = boolean("RQ is_trained");
    QV_CHECK(trained, Unsupported, "faiss file: the residual quantizer is not trained");
    int32_t beam = 1;
    if (old_layout) {
      i32();  // train_type
      beam = i32();
    }
    const size_t ksub = size_t(1) << nbits[0];
    std::vector<float> codebooks = floats(stages * ksub * rd, "RQ codebooks");  // ≤ 64 · 4096 · 65536
    const int32_t st = i32();
    const float norm_min = r_.f32(), norm_max = r_.f32();
    if (!old_layout) {
      if (st == kStNormCqint8 || st == kStNormCqint4) skip_vector(1, "RQ norm codebook");
      i32();  // train_type
      beam = i32();
    }
    ReadRQ out;
    out.search_type = st;
    switch (st) {
      case kStDecompress:
      case kStLutNoNorm:
      case kStNormFromLut: out.norm_bits = 0; break;
      case kStNormFloat: out.norm_bits = 32; break;
      case kStNormQint8:
      case kStNormCqint8: out.norm_bits = 8; break;
      case kStNormQint4:
      case kStNormCqint4: out.norm_bits = 4; break;
      default: QV_THROW(Unsupported, "faiss file: RQ search type " << st << " is not one quiver reads (0 … 7)");
    }
    RQOptions options;
    options.beam = size_t(std::clamp(beam, 1, 256));
    float lo = 0, hi = 0;
    if (st == kStNormQint8) {
      // The inverse of rq_form's mapping: the same decoded norm for every byte.
      QV_CHECK(std::isfinite(norm_min) && std::isfinite(norm_max) && norm_min <= norm_max, Corrupt,
               "faiss file: RQ norm range [" << norm_min << ", " << norm_max << "] is invalid");
      const double span = double(norm_max) - norm_min;
      options.norm = NormStorage::Uint8;
      lo = float(norm_min + span * 0.5 / 256.0);
      hi = float(norm_min + span * 0.5 / 256.0 + span * 255.0 / 256.0);
      hi = std::max(hi, lo);
    }
    out.rq = std::make_unique<ResidualQuantizer>(rd, stages, size_t(nbits[0]), options);
    out.rq->set_codebooks(std::move(codebooks), lo, hi);
    out.faiss_code_size = (stages * nbits[0] + out.norm_bits + 7) / 8;
    return out;
  }

  // faiss RQ codes (n × faiss_code_size) → quiver codes (n × rq.code_size()). Norms faiss keeps as f32 or
  // qint8 carry over; other encodings (none, 4-bit, codebook-quantised) are replaced by the exact ‖x̂‖².
  static std::vector<uint8_t> rq_codes_from_faiss(const ReadRQ& q, const uint8_t* in, size_t n) {
    const ResidualQuantizer& rq = *q.rq;
    const size_t cs = rq.code_size(), stages = rq.stages(), d = rq.dim();
    std::vector<uint8_t> out(n * cs);
    std::vector<uint32_t> stage_codes(stages);
    std::vector<float> x_hat(d);
    for (size_t i = 0; i < n; ++i) {
      BitReader bits(in + i * q.faiss_code_size);
      for (size_t l = 0; l < stages; ++l) stage_codes[l] = bits.get(unsigned(rq.nbits()));
      uint8_t* code = out.data() + i * cs;
      if (q.search_type == kStNormFloat) {
        const uint32_t raw = bits.get(16) | (bits.get(16) << 16);
        float norm;
        std::memcpy(&norm, &raw, 4);
        QV_CHECK(std::isfinite(norm) && norm >= 0, Corrupt, "faiss file: RQ code " << i << " holds an invalid norm");
        rq.pack(stage_codes.data(), norm, code);
      } else if (q.search_type == kStNormQint8) {
        const uint32_t byte = bits.get(8);
        rq.pack(stage_codes.data(), 0.0f, code);
        code[rq.stage_code_bytes()] = uint8_t(byte);
      } else {
        rq.reconstruct(stage_codes.data(), x_hat.data());
        double norm = 0;
        for (float v : x_hat) norm += double(v) * v;
        rq.pack(stage_codes.data(), float(norm), code);
      }
    }
    return out;
  }

  Parsed read_index(int depth) {
    QV_CHECK(depth <= kMaxDepth, Unsupported, "faiss file: indexes nested deeper than quiver reads");
    const uint32_t h = r_.u32();
    Parsed p;
    p.what = printable_fourcc(h);
    if (h == fourcc("IxPq") || h == fourcc("IxPQ") || h == fourcc("IxPo")) {
      const Header hd = header("IndexPQ");
      std::unique_ptr<ProductQuantizer> pq = read_pq(hd.d);
      p.codes = read_codes(hd.ntotal, pq->code_size(), "IndexPQ codes");
      if (h != fourcc("IxPQ")) {
        i32();  // search_type: quiver always scores by asymmetric distance (faiss's default ST_PQ)
        boolean("encode_signs");
        i32();  // polysemous_ht
      }
      p.d = hd.d;
      p.ntotal = hd.ntotal;
      // faiss forces L2 for the two old fourccs (they recorded a wrong metric).
      p.metric = h == fourcc("IxPq") ? hd.metric : Metric::L2;
      p.codec = std::move(pq);
      return p;
    }
    if (h == fourcc("IxRq") || h == fourcc("IxRQ")) {
      const Header hd = header("IndexResidualQuantizer");
      ReadRQ q = read_rq(hd.d, h == fourcc("IxRQ"));
      const size_t cs = bounded("RQ code_size", q.faiss_code_size, q.faiss_code_size);
      const std::vector<uint8_t> raw = read_codes(hd.ntotal, cs, "IndexResidualQuantizer codes");
      p.codes = rq_codes_from_faiss(q, raw.data(), hd.ntotal);
      p.d = hd.d;
      p.ntotal = hd.ntotal;
      p.metric = hd.metric;
      p.codec = std::move(q.rq);
      return p;
    }
    if (h == fourcc("IxPT")) return read_pretransform(depth);
    if (h == fourcc("IxMp") || h == fourcc("IxM2")) {
      const Header hd = header("IndexIDMap");
      Parsed inner = read_index(depth + 1);
      QV_CHECK(!inner.ivf && inner.ids.empty(), Unsupported,
               "faiss file: an IndexIDMap around " << inner.what << " is not read (quiver reads IDMap around "
                                                   << "IndexPQ, IndexPreTransform and IndexResidualQuantizer)");
      QV_CHECK(inner.ntotal == hd.ntotal && inner.d == hd.d && inner.metric == hd.metric, Corrupt,
               "faiss file: IndexIDMap header does not match the index it holds");
      inner.ids = r_.array<int64_t>(hd.ntotal, "IndexIDMap ids");
      QV_CHECK(inner.ids.size() == hd.ntotal, Corrupt,
               "faiss file: IndexIDMap holds " << inner.ids.size() << " ids for " << hd.ntotal << " vectors");
      inner.what = p.what + "(" + inner.what + ")";
      return inner;
    }
    if (h == fourcc("IwPQ") || h == fourcc("IwRQ")) return read_ivf(h);
    if (h == fourcc("IPfs") || h == fourcc("IwPf"))
      QV_THROW(Unsupported, "faiss file: fast-scan indexes (" << p.what << ") are not read; save the faiss index "
                                                              << "as IndexPQ / IndexIVFPQ instead");
    if (h == fourcc("IvPQ") || h == fourcc("IvQR") || h == fourcc("IwQR"))
      QV_THROW(Unsupported, "faiss file: " << p.what << " (legacy or refined IVFPQ) is not read");
    QV_THROW(Unsupported, "faiss file: index type \"" << p.what
                                                      << "\" is not one quiver reads (it reads IxPq, IxPT with an "
                                                         "LTra rotation and IxPq, IxRq, IxMp/IxM2, IwPQ, IwRQ)");
  }

  Parsed read_pretransform(int depth) {
    const Header hd = header("IndexPreTransform");
    const int32_t chain = i32();
    QV_CHECK(chain == 1, Unsupported,
             "faiss file: a pre-transform chain of " << chain << " transforms; quiver reads one rotation (OPQ)");
    const uint32_t t = r_.u32();
    QV_CHECK(t == fourcc("LTra"), Unsupported,
             "faiss file: pre-transform \"" << printable_fourcc(t)
                                           << "\" is not read; quiver reads a plain LinearTransform (OPQ)");
    const bool bias = boolean("have_bias");
    const size_t d = hd.d;
    std::vector<float> a = r_.array<float>(d * d, "transform matrix");
    std::vector<float> b = r_.array<float>(d, "transform bias");
    const int32_t d_in = i32(), d_out = i32();
    boolean("transform is_trained");
    QV_CHECK(d_in == int32_t(d) && d_out == int32_t(d) && a.size() == d * d, Unsupported,
             "faiss file: a " << d_in << " → " << d_out << " transform; quiver reads a " << d << " × " << d
                              << " rotation");
    for (float v : a) QV_CHECK(std::isfinite(v), Corrupt, "faiss file: the transform holds a non-finite value");
    for (float v : b)
      QV_CHECK(!bias || v == 0.0f, Unsupported, "faiss file: a transform with a bias is not read (OPQ has none)");
    QV_CHECK(orthogonality_error(d, a.data()) < 1e-3, Unsupported,
             "faiss file: the transform is not a rotation (quiver reads OPQ's orthogonal matrix)");
    Parsed inner = read_index(depth + 1);
    auto* pq = dynamic_cast<ProductQuantizer*>(inner.codec.get());
    QV_CHECK(pq && !inner.ivf && inner.ids.empty(), Unsupported,
             "faiss file: a pre-transform around " << inner.what << " is not read (quiver reads OPQ + IndexPQ)");
    QV_CHECK(inner.d == d && inner.ntotal == hd.ntotal && inner.metric == hd.metric, Corrupt,
             "faiss file: IndexPreTransform header does not match the index it holds");
    auto opq = std::make_unique<OPQQuantizer>(d, pq->m(), pq->nbits());
    opq->set_state(std::move(a), std::vector<float>(pq->all_centroids()));
    inner.codec = std::move(opq);
    inner.what = "IxPT(" + inner.what + ")";
    return inner;
  }

  Parsed read_ivf(uint32_t h) {
    const bool is_pq = h == fourcc("IwPQ");
    const Header hd = header(is_pq ? "IndexIVFPQ" : "IndexIVFResidualQuantizer");
    QV_CHECK(hd.metric == Metric::L2, Unsupported,
             "faiss file: inner-product IVF indexes are not read (quiver probes IVF lists by L2 distance)");
    QV_CHECK(hd.ntotal <= kMaxIvfRows, Unsupported, "faiss file: more than 2^32 − 1 vectors in an IVF index");
    const size_t d = hd.d;
    const size_t nlist = bounded("nlist", 1, kMaxNlist);
    r_.u64();  // nprobe: a search parameter in quiver
    const uint32_t qh = r_.u32();
    QV_CHECK(qh == fourcc("IxF2"), Unsupported,
             "faiss file: coarse quantizer \"" << printable_fourcc(qh)
                                               << "\" is not read; quiver reads a flat L2 quantizer (IxF2)");
    const Header qhd = header("coarse quantizer");
    QV_CHECK(qhd.d == d && qhd.ntotal == nlist, Corrupt,
             "faiss file: the coarse quantizer holds " << qhd.ntotal << " × " << qhd.d << " centroids, expected "
                                                       << nlist << " × " << d);
    std::vector<float> centroids = floats(nlist * d, "IVF centroids");
    const uint8_t map_type = r_.u8();
    QV_CHECK(map_type <= 2, Corrupt, "faiss file: direct map type " << int(map_type));
    skip_vector(8, "direct map");
    if (map_type == 2) skip_vector(16, "direct map hash table");

    std::unique_ptr<ProductQuantizer> pq;
    ReadRQ rq;
    size_t faiss_cs = 0;
    if (is_pq) {
      const bool by_residual = boolean("by_residual");
      QV_CHECK(by_residual, Unsupported, "faiss file: IVFPQ without by_residual; quiver's IVF encodes residuals");
      faiss_cs = r_.u64();
      pq = read_pq(d);
      QV_CHECK(faiss_cs == pq->code_size(), Corrupt, "faiss file: IVFPQ code_size " << faiss_cs << " does not match its PQ");
    } else {
      faiss_cs = r_.u64();
      rq = read_rq(d, false);
      QV_CHECK(faiss_cs == rq.faiss_code_size, Corrupt,
               "faiss file: IVF RQ code_size " << faiss_cs << " does not match its RQ (" << rq.faiss_code_size << ")");
      const bool by_residual = boolean("by_residual");
      QV_CHECK(by_residual, Unsupported, "faiss file: IVF RQ without by_residual; quiver's IVF encodes residuals");
      i32();  // use_precomputed_table
    }

    const uint32_t lh = r_.u32();
    QV_CHECK(lh == fourcc("ilar"), Unsupported,
             "faiss file: inverted lists \"" << printable_fourcc(lh)
                                             << "\" are not read; quiver reads lists stored in the file (ilar)");
    QV_CHECK(r_.u64() == nlist, Corrupt, "faiss file: the inverted lists do not have " << nlist << " lists");
    QV_CHECK(r_.u64() == faiss_cs, Corrupt, "faiss file: the inverted lists' code size does not match the codec");
    std::vector<uint64_t> sizes(nlist, 0);
    const uint32_t list_type = r_.u32();
    if (list_type == fourcc("full")) {
      std::vector<uint64_t> s = r_.array<uint64_t>(nlist, "list sizes");
      QV_CHECK(s.size() == nlist, Corrupt, "faiss file: " << s.size() << " list sizes for " << nlist << " lists");
      sizes = std::move(s);
    } else if (list_type == fourcc("sprs")) {
      std::vector<uint64_t> s = r_.array<uint64_t>(2 * nlist, "list sizes");
      QV_CHECK(s.size() % 2 == 0, Corrupt, "faiss file: odd sparse list-size table");
      for (size_t j = 0; j < s.size(); j += 2) {
        QV_CHECK(s[j] < nlist, Corrupt, "faiss file: list " << s[j] << " out of range");
        sizes[s[j]] = s[j + 1];
      }
    } else {
      QV_THROW(Corrupt, "faiss file: list-size table \"" << printable_fourcc(list_type) << "\" is unknown");
    }
    uint64_t total = 0;
    for (uint64_t s : sizes) {
      QV_CHECK(s <= hd.ntotal && total + s <= hd.ntotal, Corrupt,
               "faiss file: the inverted lists hold more than the " << hd.ntotal << " vectors of the header");
      total += s;
    }
    QV_CHECK(total == hd.ntotal, Corrupt,
             "faiss file: the inverted lists hold " << total << " vectors, the header says " << hd.ntotal);
    // Before reserving anything: the lists' codes and ids must be in the file (total ≤ 2^32, faiss_cs ≤ 2^17).
    QV_CHECK(total * (faiss_cs + sizeof(int64_t)) <= r_.remaining(), Corrupt,
             "faiss file: truncated inverted lists (" << total << " vectors of " << faiss_cs << " bytes + id)");

    Parsed p;
    p.what = printable_fourcc(h);
    p.d = d;
    p.metric = hd.metric;
    p.ntotal = hd.ntotal;
    p.ivf = true;
    p.nlist = nlist;
    p.centroids = std::move(centroids);
    p.offsets.assign(nlist + 1, 0);
    p.ids.reserve(hd.ntotal);
    const size_t cs = is_pq ? pq->code_size() : rq.rq->code_size();
    p.codes.reserve(hd.ntotal * cs);
    for (size_t l = 0; l < nlist; ++l) {
      const size_t n = size_t(sizes[l]);
      p.offsets[l + 1] = p.offsets[l] + n;
      if (n == 0) continue;
      const uint8_t* raw = r_.take(n * faiss_cs);  // n ≤ 2^32, faiss_cs ≤ 2^17: no overflow
      if (is_pq) {
        p.codes.insert(p.codes.end(), raw, raw + n * faiss_cs);
      } else {
        const std::vector<uint8_t> codes = rq_codes_from_faiss(rq, raw, n);
        p.codes.insert(p.codes.end(), codes.begin(), codes.end());
      }
      const uint8_t* id_bytes = r_.take(n * sizeof(int64_t));
      const size_t at = p.ids.size();
      p.ids.resize(at + n);
      std::memcpy(&p.ids[at], id_bytes, n * sizeof(int64_t));
    }
    if (is_pq)
      p.codec = std::move(pq);
    else
      p.codec = std::move(rq.rq);
    return p;
  }

  // Writes the parsed index as a quiver index file in memory and loads it: every invariant is then checked by
  // the same code that checks quiver's own files.
  static std::unique_ptr<Index> assemble(Parsed p) {
    const size_t n = p.ntotal, cs = p.codec->code_size();
    QV_CHECK(p.codes.size() == n * cs, Internal, "faiss import: code buffer size");
    if (p.ids.empty()) {
      p.ids.resize(n);
      for (size_t i = 0; i < n; ++i) p.ids[i] = int64_t(i);
    }
    int64_t max_id = -1;
    {
      std::unordered_set<int64_t> seen;
      seen.reserve(n);
      for (int64_t id : p.ids) {
        QV_CHECK(seen.insert(id).second, Unsupported,
                 "faiss file: id " << id << " appears more than once; quiver needs unique ids");
        max_id = std::max(max_id, id);
      }
    }
    const std::string spec = p.ivf ? "IVF" + std::to_string(p.nlist) + "," + p.codec->spec() : p.codec->spec();
    std::unique_ptr<Index> proto = make_index(spec, p.d, p.metric);

    ContainerWriter out(fourcc("QVRI"));
    ByteWriter meta;
    meta.str(spec);
    meta.u64(p.d);
    meta.u32(uint32_t(p.metric));
    meta.u64(n);
    meta.u8(0);  // no categories
    meta.i64(n == 0 ? 0 : (max_id == std::numeric_limits<int64_t>::max() ? max_id : max_id + 1));
    out.section(fourcc("META"), meta);
    ByteWriter ids;
    ids.align(out.next_payload_offset(), 8);
    ids.array(p.ids);
    out.section(fourcc("IDS "), ids);
    ByteWriter codec;
    write_codec_section(*p.codec, codec);
    if (p.ivf) {
      const auto* ivf = dynamic_cast<const IVFIndex*>(proto.get());
      QV_CHECK(ivf, Internal, "faiss import: " << spec << " is not an IVF index");
      ByteWriter c;
      c.u64(p.nlist);
      c.u8(0);
      c.u32(uint32_t(ivf->transform_iterations()));
      c.array(p.centroids);
      c.u64(0);  // no transforms
      out.section(fourcc("IVFC"), c);
      out.section(fourcc("CODC"), codec);
      ByteWriter lists;
      const size_t base = out.next_payload_offset();
      lists.align(base, 8);
      lists.array(p.offsets);
      lists.align(base, 8);
      lists.u64(n);
      for (size_t row = 0; row < n; ++row) lists.u32(uint32_t(row));  // rows are numbered list by list
      lists.align(base, 8);
      lists.u64(p.codes.size());
      lists.raw(p.codes.data(), p.codes.size());
      out.section(fourcc("IVFL"), lists);
    } else {
      out.section(fourcc("CODC"), codec);
      write_bulk(out, fourcc("CODE"), p.codes.data(), p.codes.size());
    }
    return Index::deserialize(owned_bytes(out.finish()), false);
  }

  ByteReader r_;
};

// ------------------------------------------------------------------------------------------- plain export

void export_pq(const ProductQuantizer& pq, PlainExport& out, const std::string& what) {
  const size_t m = pq.m(), ksub = pq.ksub(), d = pq.dim();
  if (d % m == 0) {
    out.arrays.push_back(PlainArray{
        "pq_centroids", {m, ksub, d / m}, pq.all_centroids(),
        "PQ codebooks: entry [m, j, :] is centroid j of sub-space m (dimensions m·dsub … (m+1)·dsub − 1) of the " +
            what + "; code m of a vector indexes it"});
    return;
  }
  for (size_t s = 0; s < m; ++s) {
    const float* c = pq.centroids(s);
    out.arrays.push_back(PlainArray{
        "pq_centroids_" + std::to_string(s), {ksub, pq.sub_dim(s)}, std::vector<float>(c, c + ksub * pq.sub_dim(s)),
        "PQ codebook of sub-space " + std::to_string(s) + " (dimensions " + std::to_string(pq.sub_offset(s)) +
            " … " + std::to_string(pq.sub_offset(s) + pq.sub_dim(s) - 1) + ") of the " + what});
  }
}

void export_codec(const Quantizer& codec, PlainExport& out, const std::string& what) {
  out.codec = codec.spec();
  if (const auto* pq = dynamic_cast<const ProductQuantizer*>(&codec)) {
    export_pq(*pq, out, what);
  } else if (const auto* opq = dynamic_cast<const OPQQuantizer*>(&codec)) {
    const size_t d = codec.dim();
    out.arrays.push_back(PlainArray{"opq_rotation", {d, d}, opq->rotation(),
                                    "OPQ rotation R (row-major): PQ encodes y = R·v of the " + what + " v"});
    export_pq(opq->pq(), out, "rotated " + what);
  } else if (const auto* rq = dynamic_cast<const ResidualQuantizer*>(&codec)) {
    out.arrays.push_back(PlainArray{
        "rq_codebooks", {rq->stages(), rq->ksub(), codec.dim()}, rq->all_codebooks(),
        "RQ codebooks: the " + what + " is approximated by the sum over stages l of rq_codebooks[l, code_l, :]"});
    out.norm = rq->norm_codec().name();
    out.norm_lo = rq->norm_codec().lo();
    out.norm_hi = rq->norm_codec().hi();
  } else {
    QV_THROW(Unsupported, "the plain export covers PQ, OPQ and RQ codecs; " << codec.spec() << " is not exported yet");
  }
}

}  // namespace

std::vector<uint8_t> index_to_faiss(const Index& index) {
  QV_CHECK(index.is_trained(), State, "the index " << index.spec() << " is not trained: nothing to export to faiss");
  QV_CHECK(!index.has_categories(), Unsupported,
           "faiss indexes have no categories; this index holds some (rebuild it without categories to export it)");
  QV_CHECK(index.size() <= kMaxIvfRows || !dynamic_cast<const IVFIndex*>(&index), Internal, "IVF row count");
  ByteWriter w;
  if (const auto* ivf = dynamic_cast<const IVFIndex*>(&index)) {
    write_ivf(w, *ivf);
    return std::move(w.bytes());
  }
  const int32_t metric = faiss_metric(index.metric());
  const size_t n = index.size(), d = index.dim();
  const std::vector<int64_t>& ids = index.ids();
  const bool wrap = !sequential_ids(ids);
  if (wrap) {
    // faiss numbers a flat index's vectors 0 … n−1; an IndexIDMap carries quiver's own ids.
    w.u32(fourcc("IxMp"));
    write_header(w, d, n, metric);
  }
  if (const auto* fs = dynamic_cast<const FastScanIndex*>(&index)) {
    QV_CHECK(index.refine_storage() == RefineStorage::None, Unsupported,
             "the ',Refine' vector store has no faiss form; build without Refine");
    const ProductQuantizer& pq = fs->pq();
    check_faiss_pq(pq);
    // faiss 1.7.3 reads IndexPQFastScan, but its block layout differs from ours: write plain 4-bit IndexPQ codes,
    // which faiss scores exactly (as our fast-scan does).
    std::vector<uint8_t> codes(n * pq.code_size());
    std::vector<uint32_t> sub(pq.m());
    for (size_t row = 0; row < n; ++row) {
      for (size_t m = 0; m < pq.m(); ++m) sub[m] = fs->sub_code(row, m);
      pq.pack(sub.data(), codes.data() + row * pq.code_size());
    }
    write_index_pq(w, n, metric, pq, codes.data());
  } else if (const auto* ci = dynamic_cast<const CodecIndex*>(&index)) {
    QV_CHECK(index.refine_storage() == RefineStorage::None, Unsupported,
             "the ',Refine' vector store is not exported to faiss; build the index without Refine");
    const Quantizer& codec = ci->codec();
    if (const auto* pq = dynamic_cast<const ProductQuantizer*>(&codec)) {
      check_faiss_pq(*pq);
      write_index_pq(w, n, metric, *pq, ci->codes());
    } else if (const auto* opq = dynamic_cast<const OPQQuantizer*>(&codec)) {
      check_faiss_pq(opq->pq());
      w.u32(fourcc("IxPT"));
      write_header(w, d, n, metric);
      put_i32(w, 1);  // one transform
      w.u32(fourcc("LTra"));
      w.u8(0);  // have_bias
      put_floats(w, opq->rotation());
      w.u64(0);  // empty bias
      put_i32(w, int32_t(d));
      put_i32(w, int32_t(d));
      w.u8(1);  // is_trained
      write_index_pq(w, n, metric, opq->pq(), ci->codes());
    } else if (const auto* rq = dynamic_cast<const ResidualQuantizer*>(&codec)) {
      const RQForm form = rq_form(*rq);
      w.u32(fourcc("IxRq"));
      write_header(w, d, n, metric);
      write_rq(w, *rq, form);
      w.u64(form.code_size);
      w.u64(n * form.code_size);
      std::vector<uint8_t> code(form.code_size);
      std::vector<uint32_t> stage_codes(rq->stages());
      for (size_t row = 0; row < n; ++row) {
        rq_code_to_faiss(*rq, form, ci->codes() + row * rq->code_size(), code.data(), stage_codes.data());
        w.raw(code.data(), form.code_size);
      }
    } else {
      QV_THROW(Unsupported, codec_refusal(codec));
    }
  } else {
    QV_THROW(Unsupported, "the index type " << index.spec()
                                            << " is not exported to faiss (exported: PQ, PQ…fs, OPQ, RQ, IVF with PQ "
                                               "or RQ)");
  }
  if (wrap) {
    w.u64(n);
    w.raw(ids.data(), n * sizeof(int64_t));
  }
  return std::move(w.bytes());
}

std::unique_ptr<Index> index_from_faiss(const uint8_t* data, size_t size) {
  QV_CHECK(size >= 4, Corrupt, "faiss file: " << size << " bytes is too short to be a faiss index");
  FaissReader reader(data, size);
  return reader.read();
}

PlainExport export_plain(const Index& index) {
  QV_CHECK(index.is_trained(), State, "the index " << index.spec() << " is not trained: no codebooks to export");
  PlainExport out;
  if (const auto* ivf = dynamic_cast<const IVFIndex*>(&index)) {
    const size_t d = index.dim();
    out.arrays.push_back(PlainArray{"ivf_centroids", {ivf->nlist(), d}, ivf->centroids(),
                                    "IVF coarse centroids c_l: a vector x goes to the list of its nearest centroid "
                                    "(L2) and the fine codec encodes its residual"});
    if (ivf->local_transforms())
      out.arrays.push_back(PlainArray{"trq_transforms", {ivf->nlist(), d, d}, ivf->transforms(),
                                      "TRQ per-list rotations R_l (row-major): the fine codec encodes R_l·(x − c_l)"});
    out.residual = true;
    export_codec(ivf->fine(), out, ivf->local_transforms() ? "rotated residual" : "residual x − c_l");
  } else if (const auto* fs = dynamic_cast<const FastScanIndex*>(&index)) {
    out.codec = fs->pq().spec();
    export_pq(fs->pq(), out, "vector");
  } else if (const auto* ci = dynamic_cast<const CodecIndex*>(&index)) {
    export_codec(ci->codec(), out, "vector");
  } else {
    QV_THROW(Unsupported, "the index " << index.spec() << " has no codebook to export");
  }
  return out;
}

}  // namespace quiver
