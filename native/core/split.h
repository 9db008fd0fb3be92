// A product of any codec (spec "SPLIT<P>,<codec>", e.g. "SPLIT2,PCA128,TRQ8x8,beam=4,sub=16,pd=10"): the d
// dimensions are cut into P contiguous parts as PQ cuts them (when P does not divide d, the first d mod P parts
// get one dimension more), and each part is encoded by its own instance of the codec that follows, trained
// on that part alone. It generalises product RQ (PRQ<P>x<L>x<b> is SPLIT<P>,RQ<L>x<b> with one shared norm
// field) to every codec: product TRQ (local transforms inside each part), or PCA per part.
//
// Why: on Fashion-MNIST at 128 bits the best additive code splits the image in halves (faiss's and quiver's
// PRQ2x8x8), and one RQ or TRQ over all 784 pixels stays below it: the halves of an image vary nearly
// independently, so two 64-bit codes spend their bits better than one 128-bit code, and each half's beam search
// is a smaller problem. A PCA per half (SPLIT2,PCA128,…) then makes encoding several times
// cheaper than PRQ over the raw pixels, where the PCA of the whole vector followed by a split does not work:
// principal components are uncorrelated but far from independent, and splitting them loses (measured in
// bench/results/accuracy-fashion-mnist/split/).
//
// Code layout (code_size() = P × the part codec's code size bytes): part 0's code, then part 1's, … — each
// exactly its codec's layout (norm fields included: an RQ-family part keeps its own ‖ŷ‖², so a split of
// RQ-family codes carries P norms).
// ADC: one table per part on the query's part; a code's score is the sum of its parts' scores, which is the
// squared L2 distance (each part scores ‖q_p − x̂_p‖² exactly, PCA's offset included) or −⟨q, x̂⟩.
#pragma once

#include <memory>
#include <vector>

#include "quantizer.h"

namespace quiver {

class SplitQuantizer : public Quantizer {
 public:
  static constexpr size_t kMaxParts = 64;

  // parts: P untrained codecs, part p for part_dim(p) dimensions (the cut described above); 1 ≤ P ≤ dim.
  SplitQuantizer(size_t dim, std::vector<std::unique_ptr<Quantizer>> parts);
  // The cut: dimensions of part p, and where it starts.
  static size_t cut_dim(size_t dim, size_t parts, size_t p) { return dim / parts + (p < dim % parts ? 1 : 0); }

  std::string spec() const override;  // "SPLIT<P>," + the part codec's spec (the same for every part)
  size_t code_size() const override { return code_size_; }
  bool is_trained() const override;
  void train(size_t n, const float* x, const TrainContext& ctx) override;
  void encode(size_t n, const float* x, uint8_t* codes, int threads) const override;
  void decode(size_t n, const uint8_t* codes, float* x, int threads) const override;
  std::unique_ptr<DistanceTable> distance_table(const float* query, Metric metric) const override;
  void save_state(ByteWriter& out) const override;  // layout: see the .cpp
  void load_state(ByteReader& in) override;

  size_t parts() const { return parts_.size(); }
  const Quantizer& part(size_t p) const { return *parts_[p]; }
  size_t part_dim(size_t p) const { return parts_[p]->dim(); }
  size_t part_offset(size_t p) const { return offsets_[p]; }
  size_t part_code_offset(size_t p) const { return p * part_code_size_; }
  // part_codes (count × the part codec's code size) = part p's codes within codes (count × code_size()), and
  // the reverse.
  void gather_codes(size_t p, size_t count, const uint8_t* codes, uint8_t* part_codes) const;
  void scatter_codes(size_t p, size_t count, const uint8_t* part_codes, uint8_t* codes) const;

 private:
  // Calls body(first, count) for consecutive row ranges of at most kChunk rows (bounds the part copies).
  template <typename F>
  void in_chunks(size_t n, F&& body) const;
  // rows (count × part_dim(p)) = the part-p columns of x (count × dim), and the reverse.
  void gather(size_t p, size_t count, const float* x, float* rows) const;
  void scatter(size_t p, size_t count, const float* rows, float* x) const;

  std::vector<std::unique_ptr<Quantizer>> parts_;
  std::vector<size_t> offsets_;
  size_t part_code_size_ = 0, code_size_ = 0;
};

}  // namespace quiver
