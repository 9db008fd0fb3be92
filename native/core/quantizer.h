// The codec interface every quantizer implements (PQ now; OPQ, RQ, TRQ and hybrids plug in here).
//
// A code is a fixed-size byte string of code_size() bytes per vector; n codes are stored back to back
// (n × code_size bytes, no padding). Decoding gives the reconstruction x̂ (d floats per vector).
// Asymmetric distance computation (ADC): distance_table(q) precomputes whatever one query needs (for PQ, its
// M × 2^nbits look-up table) so that scoring a code costs table look-ups only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "metric.h"
#include "train_context.h"

namespace quiver {

class ByteReader;
class ByteWriter;

class TopK;
struct RowFilter;

// Per-query ADC state. Scores follow the engine's convention: smaller is better (squared L2, or −⟨q, x̂⟩).
class DistanceTable {
 public:
  virtual ~DistanceTable() = default;
  // out[i] = score of the i-th of n consecutive codes (codes: n × code_size bytes).
  virtual void scan(const uint8_t* codes, size_t n, float* out) const = 0;
  // Optional fused scan of rows [begin, end) of `codes` (the whole array: row i at codes + i·code_size) into
  // `out`, keyed by row and honouring `filter`, for tables that can skip rows before scoring them exactly (8-bit
  // PQ on uint8 tables). Results must equal those of scan() + push. Returns false to use scan().
  virtual bool scan_top(const uint8_t* codes, size_t begin, size_t end, TopK& out, const RowFilter& filter) const {
    return false;
  }
};

class Quantizer {
 public:
  explicit Quantizer(size_t dim) : dim_(dim) {}
  virtual ~Quantizer() = default;

  size_t dim() const { return dim_; }
  virtual std::string spec() const = 0;  // canonical spec string, e.g. "PQ16x8"
  virtual size_t code_size() const = 0;  // bytes per encoded vector
  virtual bool is_trained() const = 0;

  // x: n × dim floats. Throws InvalidArgument when n is too small for the codebooks.
  virtual void train(size_t n, const float* x, const TrainContext& ctx) = 0;
  // x: n × dim floats → codes: n × code_size bytes. Parallel over vectors (threads: 0 = all).
  virtual void encode(size_t n, const float* x, uint8_t* codes, int threads) const = 0;
  // codes: n × code_size bytes → x: n × dim floats.
  virtual void decode(size_t n, const uint8_t* codes, float* x, int threads) const = 0;
  // metric must be L2 or InnerProduct (cosine is inner product on normalised vectors, handled by callers).
  virtual std::unique_ptr<DistanceTable> distance_table(const float* query, Metric metric) const = 0;

  // Trained state (codebooks, rotations, ...) for persistence; the structure itself is rebuilt from spec() and
  // dim(). load_state must validate every count it reads (the bytes come from files). Codecs without
  // persistence throw Unsupported (the defaults, in serialize.cpp).
  virtual void save_state(ByteWriter& out) const;
  virtual void load_state(ByteReader& in);

 protected:
  void require_trained(const char* what) const;

 private:
  size_t dim_;
};

}  // namespace quiver
