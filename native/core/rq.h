// Residual quantizer (RQ): L stages, each a codebook of K = 2^nbits full-dimensional codewords; a vector is
// approximated by the sum x̂ = Σ_l c_{l, i_l} of one codeword per stage. Training runs k-means stage by stage
// on what the previous stages left (the residuals); encoding is a beam search that keeps the `beam` best
// partial sums at every stage (beam = 1 is the greedy encoder), since the greedy choice at an early stage
// often blocks better combinations later. Training keeps a beam too (train_beam, by default the encoding
// beam): each stage's k-means learns from the residuals of every entry of every training vector's beam (as
// faiss does), and the training set is beam-encoded again after each new stage. Every stage's k-means starts
// from the residuals of the same K training vectors (rq.cpp says why). On the SIFT slice at 64 bits:
// greedy 19.4 k MSE, beam 5 19.1 k, beam 5 with 3 refit rounds 16.3 k (faiss 1.7.3: 19.0 k to 19.7 k).
//
// Optional codebook refit (refit = N rounds): with every training vector's codes fixed, the best codewords
// of stage l given the other stages are the means of x − Σ_{m≠l} c_{m,i_m} over the vectors that use each
// codeword (block-coordinate least squares); a round updates the stages in turn, then re-encodes.
//
// Code layout (code_size() bytes per vector):
//   bytes [0, ⌈L·nbits/8⌉): the L stage codes, bit-packed LSB first, stage 0 in the lowest bits (bitpack.h);
//   then ‖x̂‖², the squared norm of the reconstruction: float32 in host byte order (4 bytes, norm=f32), or
//   one byte (norm=u8) quantised uniformly between the smallest and largest ‖x̂‖² seen in training — it then
//   costs an absolute error of up to (max − min)/510 on every L2 score.
// Codebook layout: stage l's K × dim floats start at l·K·dim.
// ADC table: L × K floats, entry (l, j) = −2⟨q, c_lj⟩ for L2 (score = ‖q‖² + Σ entries + ‖x̂‖²) or
// −⟨q, c_lj⟩ for inner product (score = Σ entries; the stored norm is unused).
#pragma once

#include <cassert>
#include <memory>
#include <vector>

#include "kmeans.h"
#include "quantizer.h"

namespace quiver {

// How a codec stores the squared norm it needs for L2 ADC.
enum class NormStorage { Float32, Uint8 };

// Writes and reads the norm field (see layout above). Uint8 needs set_range() from training first.
class NormCodec {
 public:
  explicit NormCodec(NormStorage storage = NormStorage::Float32) : storage_(storage) {}
  NormStorage storage() const { return storage_; }
  size_t bytes() const { return storage_ == NormStorage::Float32 ? 4 : 1; }
  const char* name() const { return storage_ == NormStorage::Float32 ? "f32" : "u8"; }
  void set_range(float lo, float hi);
  float lo() const { return lo_; }
  float hi() const { return hi_; }
  void write(float value, uint8_t* out) const;
  float read(const uint8_t* in) const;

 private:
  NormStorage storage_;
  float lo_ = 0, hi_ = 0;
};

struct RQOptions {
  // Defaults of the "RQ<L>x<b>" spec (measured on the SIFT slice, see rq.cpp): beam 5 for encoding and training
  // with 3 refit rounds reaches an MSE of 16.3 k at 64 bits where greedy training and encoding gives 19.4 k.
  static constexpr size_t kDefaultBeam = 5;
  static constexpr size_t kDefaultRefitRounds = 3;
  size_t beam = kDefaultBeam;  // partial reconstructions kept per stage while encoding (1 … 256)
  size_t train_beam = 0;       // beam width of the training set's encoding between stages (1 … 256; 0 = beam)
  NormStorage norm = NormStorage::Float32;
  size_t refit_rounds = kDefaultRefitRounds;  // codebook refit rounds after the stage-wise training (0 … 20)
  // > 0: each stage's codebook comes from progressive-dimension k-means (kmeans_progressive, k-means++ start)
  // in this many steps instead of Lloyd from the coherent seeds below. It pays at high d: on Fashion-MNIST
  // (d = 784) RQ8x8 reaches 10-recall@10 0.531 with pd=10 against 0.515 without, greedy 0.491 against 0.440
  // (bench/results/accuracy-fashion-mnist/progressive-dims).
  size_t progressive_steps = 0;  // 0 … 64
  size_t training_beam() const { return train_beam ? train_beam : beam; }
};

class ResidualQuantizer;

// Beam search over the stages of a ResidualQuantizer for one vector. Holds its buffers so one object per
// thread serves many vectors without allocating. Entries are partial reconstructions: the stage codes chosen
// so far, the residual (what is left to encode, dim floats), its squared norm (the squared error so far), and
// a caller-defined tag (TRQ uses it for the first-level cluster an entry started from).
class RQBeamSearch {
 public:
  explicit RQBeamSearch(const ResidualQuantizer& rq);

  // Starts from `count` entries: residuals (count × dim), their squared norms (count), tags (count, or null
  // for 0) and, to resume after some stages, their stage codes (count × stages, or null).
  void reset(size_t count, const float* residuals, const float* sq_norms, const uint32_t* tags,
             const uint32_t* paths = nullptr);
  // Expands stages [first, last) keeping the `width` best entries; afterwards entries are sorted by
  // increasing squared error (ties by lower parent entry, then lower codeword).
  void run(size_t first, size_t last, size_t width);
  // Full encoding of one vector x (dim floats), one stage at a time: start(), step() for stages 0 … L−1,
  // finish(). Callers interleave a block of searchers stage by stage so that each stage's codebook stays in
  // cache across the block. With x_dots (L × K floats, ⟨x, c_lj⟩, owned by the caller until finish()) and the
  // quantizer's cross-product tables, a step uses ⟨r, c_lj⟩ = ⟨x, c_lj⟩ − Σ_{m<l} ⟨c_{m,p_m}, c_lj⟩ for the
  // partial sum r = x − Σ_{m<l} c_{m,p_m}: l·K additions per entry instead of K·dim multiply-adds (faiss's
  // trick); without x_dots a step scores residual vectors directly. finish() leaves the entries as run() does,
  // except that after cross-table steps only the best entry's residual is rebuilt (residual(0): what an
  // encoder keeps; rebuilding every entry's cost a full reconstruction each).
  void start(const float* x, const float* x_dots);
  // start() for `count` seeds at once (e.g. one residual per candidate first-level cluster of TRQ): seeds
  // (count × dim) with their squared norms (count) and inner products with every codeword (count × L·K,
  // seed s at seed_dots + s·L·K); entry tags are the seed indices and stay with their descendants. Both
  // buffers are owned by the caller until finish(). Needs the quantizer's cross-product tables.
  void start_seeds(size_t count, const float* seeds, const float* sq_norms, const float* seed_dots);
  void step(size_t stage, size_t width);
  void finish();

  size_t size() const { return count_; }
  const uint32_t* path(size_t e) const { return &paths_[e * stages_]; }  // stage codes (stages values)
  float distance(size_t e) const { return dists_[e]; }
  uint32_t tag(size_t e) const { return tags_[e]; }
  // Entry e's residual: every entry after run() or direct steps, entry 0 only after cross-table steps.
  const float* residual(size_t e) const {
    assert(e < residual_entries_);
    return &residuals_[e * dim_];
  }

 private:
  struct Candidate {
    float dist;
    uint32_t entry, word;
  };
  const ResidualQuantizer& rq_;
  size_t dim_, stages_, count_ = 0;
  size_t residual_entries_ = 0;  // entries whose residual is up to date (see residual())
  // Fills heap_ (sorted) from scores_ and dists_; minima_ready: minima_ already holds the smallest score of
  // each chunk of 16 (K a multiple of 16).
  void select(size_t width, bool minima_ready = false);
  void advance(size_t stage, bool with_residuals);

  std::vector<float> residuals_, dists_, next_residuals_, next_dists_, scores_;
  std::vector<uint32_t> paths_, tags_, next_paths_, next_tags_;
  std::vector<Candidate> heap_;
  // select(): the smallest distance of each chunk of 16 candidates, scratch for the bound, the chunks whose
  // minimum is at or below the bound, and the candidates that are
  std::vector<float> minima_, bound_scratch_;
  std::vector<uint32_t> passing_chunks_;
  std::vector<Candidate> pool_;
  std::vector<const float*> rows_;   // step(): an entry's cross-table rows, one per earlier stage
  const float* x_ = nullptr;       // the vector being encoded by start()/step()
  const float* x_dots_ = nullptr;  // its inner products with every codeword, in cross-table mode
  size_t seed_stride_ = 0;         // start_seeds(): x_ and x_dots_ hold one row per seed (L·K dots each)
  std::vector<uint32_t> seed_tags_;
};

class ResidualQuantizer : public Quantizer {
 public:
  ResidualQuantizer(size_t dim, size_t stages, size_t nbits, RQOptions options = {});

  std::string spec() const override;  // "RQ<L>x<nbits>" then ",beam=B", ",trainbeam=T", ",norm=u8", ",refit=N" when not default
  size_t code_size() const override { return code_bytes_ + norm_.bytes(); }
  bool is_trained() const override { return trained_; }
  void train(size_t n, const float* x, const TrainContext& ctx) override;
  void encode(size_t n, const float* x, uint8_t* codes, int threads) const override;
  void decode(size_t n, const uint8_t* codes, float* x, int threads) const override;
  std::unique_ptr<DistanceTable> distance_table(const float* query, Metric metric) const override;
  void save_state(ByteWriter& out) const override;  // layout: see the .cpp
  void load_state(ByteReader& in) override;

  size_t stages() const { return stages_; }
  size_t nbits() const { return nbits_; }
  size_t ksub() const { return ksub_; }
  const RQOptions& options() const { return options_; }
  const NormCodec& norm_codec() const { return norm_; }
  size_t stage_code_bytes() const { return code_bytes_; }  // packed stage codes, without the norm
  const float* codebook(size_t stage) const { return codebooks_.data() + stage * ksub_ * dim(); }
  const std::vector<float>& all_codebooks() const { return codebooks_; }
  const CentroidTable& table(size_t stage) const { return tables_[stage]; }
  // Cross products ⟨c_{m,a}, c_{l,j}⟩ for m < l: a K × K block per stage pair, row a = codeword a of stage m;
  // null when not built (the tables are built only when they fit in kMaxCrossTableBytes).
  const float* cross_table(size_t m, size_t l) const {
    return cross_.empty() ? nullptr : cross_.data() + (l * (l - 1) / 2 + m) * ksub_ * ksub_;
  }
  static constexpr size_t kMaxCrossTableBytes = size_t(64) << 20;

  // Installs trained codebooks (stages × K × dim floats, layout above) and, for norm=u8, the norm range.
  // Used by loaders and composite codecs.
  void set_codebooks(std::vector<float> codebooks, float norm_lo = 0, float norm_hi = 0);

  // Composite-codec building blocks (PRQ, TRQ). Stage codes: `stages` values per vector.
  // Stage-wise training on x (n × dim); warm = true starts every stage's k-means from the current codebook
  // (a refresh after the data moved, as TRQ's alternation needs) instead of k-means++. Writes the final
  // stage codes of the training vectors into codes_out (n × stages) when not null, and returns the MSE.
  double train_stages(size_t n, const float* x, const TrainContext& ctx, bool warm, uint32_t* codes_out);
  // Least-squares refit rounds from the given codes (n × stages, updated in place). Returns the MSE.
  double refit(size_t n, const float* x, uint32_t* codes, size_t rounds, const TrainContext& ctx);
  // Beam-search encoding to stage codes (n × stages) and squared errors (n, or null).
  void encode_stages(size_t n, const float* x, uint32_t* codes, float* sq_errors, int threads) const;
  // Beam-searches `count` vectors (count × dim) with one searcher each (searchers: count objects, dots:
  // count × L × K floats of scratch), stage by stage across the block. kEncodeBlock is the block size used by
  // encode(): 16 vectors × 128 KB codebooks keep every stage's table in L2 while the block passes over it.
  void search_block(const float* x, size_t count, RQBeamSearch* searchers, float* dots) const;
  static constexpr size_t kEncodeBlock = 16;
  // Greedy (beam 1) encoding of a block of `count` vectors through stages [first, last): residuals
  // (count × dim) are updated in place, sq_errors (count) carry the running squared error as RQBeamSearch's
  // distances do, and codes (count rows of `stages` values) get stage l's codeword in column l. One
  // scores_batch per stage serves the whole block (scores: count × K floats of scratch), so a stage's codebook
  // streams from L2 once per block and each pass feeds several vectors' accumulators, where a searcher per
  // vector streams it once per vector. The choices and values are RQBeamSearch's with width 1 (the first of
  // equal minima of ‖r‖² + score), so both routes give the same codes.
  void greedy_block(size_t count, float* residuals, float* sq_errors, uint32_t* codes, size_t first, size_t last,
                    float* scores) const;
  bool uses_cross_tables() const { return !cross_.empty() && options_.beam > 1; }
  // x̂ = Σ_l c_{l, codes[l]} (dim floats).
  void reconstruct(const uint32_t* codes, float* out) const;
  // lut (stages × K): ⟨q, c_lj⟩.
  void inner_product_tables(const float* query, float* lut) const;
  // Packs stage codes and the norm into one code; reads them back.
  void pack(const uint32_t* stage_codes, float sq_norm, uint8_t* code) const;
  void unpack(const uint8_t* code, uint32_t* stage_codes) const;

 private:
  // Per-thread buffers of encode() and encode_stages() (either route), and the one-block encoder they share:
  // stage codes (count × stages) and final residuals (count × dim) of count ≤ kEncodeBlock rows of x.
  struct EncodeScratch;
  void encode_block(const float* x, size_t count, EncodeScratch& s, uint32_t* codes, float* residuals) const;
  void build_tables();
  void build_cross_tables();
  void fit_norm_range(size_t n, const float* x_hat_norms);

  size_t stages_, nbits_, ksub_, code_bytes_;
  RQOptions options_;
  NormCodec norm_;
  std::vector<float> codebooks_;
  std::vector<CentroidTable> tables_;
  std::vector<float> cross_;  // L(L−1)/2 blocks of K × K floats, see cross_table()
  bool trained_ = false;
};

// The index a sequential scan with strict < picks as the minimum of base + scores[j] over j < k (k ≥ 1): the
// first of equal minima, and 0 when base + scores[0] is NaN. Greedy encoders use it for their argmin; it is the
// choice RQBeamSearch makes with width 1, found with SIMD (rq.cpp).
size_t first_minimum(float base, const float* scores, size_t k);

// Scratch buffers of smallest_ids (kept by the caller so that repeated calls do not allocate).
struct SelectionScratch {
  std::vector<float> minima, bound;
  std::vector<uint32_t> ids;
};
// The ids of the `count` smallest of values[0 … n) (1 ≤ count ≤ n) into ids (count values), smallest first, ties
// to the lower id: what a partial sort of the ids by (value, id) gives when the values are not NaN. Bounded like
// the beam search's selection (rq.cpp): the count-th smallest minimum of the chunks of 16 values limits which
// values are looked at, so a few dozen ids are sorted instead of n.
void smallest_ids(const float* values, size_t n, size_t count, uint32_t* ids, SelectionScratch& scratch);

// Parses a norm option value: "f32" or "u8" (throws InvalidArgument otherwise).
NormStorage parse_norm_storage(const std::string& value);

}  // namespace quiver
