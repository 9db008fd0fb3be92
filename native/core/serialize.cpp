// Persistence of codecs: the container framing (magic "QVRC") and each codec's trained state.
// A codec is rebuilt from its canonical spec and dimension, then load_state() fills in what training learnt,
// so the structure (M, nbits, stages, ...) is validated by the same code that parses user specs.
#include <cmath>

#include "error.h"
#include "index.h"
#include "io.h"
#include "pq.h"
#include "spec.h"

namespace quiver {

namespace {
constexpr size_t kMaxDim = 1 << 16;
}

void Quantizer::save_state(ByteWriter&) const {
  QV_THROW(Unsupported, "the codec " << spec() << " cannot be saved yet");
}

void Quantizer::load_state(ByteReader&) {
  QV_THROW(Unsupported, "the codec " << spec() << " cannot be loaded yet");
}

// PQ state: u32 M, u32 nbits, then the centroid array (u64 count = ksub × dim, floats; layout in pq.h).
void ProductQuantizer::save_state(ByteWriter& out) const {
  require_trained("save");
  out.u32(uint32_t(m_));
  out.u32(uint32_t(nbits_));
  out.array(centroids_);
}

void ProductQuantizer::load_state(ByteReader& in) {
  const uint32_t m = in.u32(), nbits = in.u32();
  QV_CHECK(m == m_ && nbits == nbits_, Corrupt,
           "PQ state for M=" << m << ", nbits=" << nbits << " does not match the spec " << spec());
  std::vector<float> centroids = in.array<float>(ksub_ * dim(), "PQ centroids");
  QV_CHECK(centroids.size() == ksub_ * dim(), Corrupt,
           "PQ centroids: expected " << ksub_ * dim() << " floats, found " << centroids.size());
  for (float v : centroids) QV_CHECK(std::isfinite(v), Corrupt, "PQ centroids hold a non-finite value");
  set_centroids(std::move(centroids));
}

void write_codec_section(const Quantizer& codec, ByteWriter& out) {
  out.str(codec.spec());
  out.u64(codec.dim());
  codec.save_state(out);
}

std::unique_ptr<Quantizer> read_codec_section(ByteReader& in) {
  const std::string spec = in.str(1024);
  const uint64_t dim = in.u64();
  QV_CHECK(dim >= 1 && dim <= kMaxDim, Corrupt, "codec dimension " << dim << " is out of range");
  std::unique_ptr<Quantizer> codec;
  try {
    codec = make_codec(spec, size_t(dim));
  } catch (const Error& e) {
    QV_THROW(Corrupt, "the file's codec spec cannot be built: " << e.what());
  }
  codec->load_state(in);
  return codec;
}

std::vector<uint8_t> serialize_codec(const Quantizer& codec) {
  ContainerWriter out(fourcc("QVRC"));
  ByteWriter section;
  write_codec_section(codec, section);
  out.section(fourcc("CODC"), section);
  return out.finish();
}

std::unique_ptr<Quantizer> deserialize_codec(const uint8_t* data, size_t size) {
  const std::vector<Section> sections = read_container(data, size, fourcc("QVRC"));
  const Section& s = require_section(sections, fourcc("CODC"), "codec");
  ByteReader r(s.payload, s.size, "section CODC");
  std::unique_ptr<Quantizer> codec = read_codec_section(r);
  r.expect_end();
  return codec;
}

}  // namespace quiver
