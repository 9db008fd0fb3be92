// faiss file interop: quiver indexes written as faiss index files (readable by faiss 1.7.3 and later) and
// faiss index files read back as quiver indexes, plus a plain export of trained centroids and codebooks.
//
// What maps (both directions):
//   quiver spec                  faiss object (fourcc)
//   PQ<M>x<b>                    IndexPQ ("IxPq")
//   PQ<M>x4fs                    written as IndexPQ with 4-bit codes ("IxPq"); faiss scores it exactly, as we do
//   OPQ<M>,PQ<M>x<b>             IndexPreTransform ("IxPT") holding one LinearTransform ("LTra", no bias,
//                                A = our rotation R, y = A x) and an IndexPQ
//   RQ<L>x<b>[,norm=f32|u8]      IndexResidualQuantizer ("IxRq"), search_type ST_norm_float / ST_norm_qint8
//   IVF<n>,PQ<M>x<b>             IndexIVFPQ ("IwPQ", by_residual) with an IndexFlatL2 ("IxF2") coarse quantizer
//                                and ArrayInvertedLists ("ilar")
//   IVF<n>,RQ<L>x<b>[,norm=…]    IndexIVFResidualQuantizer ("IwRQ", by_residual), same coarse quantizer and lists
// Ids: faiss's flat indexes number their vectors 0 … n−1. When quiver's ids are exactly that (row order), the
// flat index is written bare; otherwise it is wrapped in an IndexIDMap ("IxMp") holding the int64 ids. IVF
// lists store their ids themselves (an imported IVF index holds its rows list by list: faiss keeps no global
// insertion order). Reading accepts IxMp/IxM2 around IxPq, IxPT and IxRq.
// Refused with an Unsupported error that says why: TRQ (per-list transforms have no faiss form), PRQ, the other
// composite codecs, Flat, cosine indexes (faiss has no cosine metric), inner-product IVF (quiver probes lists by
// L2 distance to the centroids, faiss by inner product), ",Refine" stores, categories, untrained indexes, PQ with
// uneven sub-spaces (faiss needs M | d), faiss IVF without by_residual, fast-scan files ("IPfs"/"IwPf") and
// every other faiss type. Reading is always into owned memory (no mmap).
//
// faiss's on-disk layout (all little-endian; "vec<T>" = u64 element count then the elements; bool = 1 byte;
// int = i32; size_t = u64; metric: 0 = inner product, 1 = L2, values > 1 are followed by an f32 metric_arg):
//   index header     : i32 d, i64 ntotal, i64 dummy, i64 dummy (1 << 20), bool is_trained, i32 metric
//   "IxPq"           : header, PQ, vec<u8> codes, i32 search_type, bool encode_signs, i32 polysemous_ht
//   PQ               : u64 d, u64 M, u64 nbits, vec<f32> centroids (M × 2^nbits × d/M, sub-space major)
//   "IxRq"           : header, RQ, u64 code_size, vec<u8> codes
//   RQ               : u64 d, u64 M, vec<u64> nbits (M entries), bool is_trained, vec<f32> codebooks
//                      (Σ 2^nbits_m × d), i32 search_type, f32 norm_min, f32 norm_max,
//                      [vec<u8> qnorm codes for ST_norm_cqint8/cqint4], i32 train_type, i32 max_beam_size
//   RQ codes         : one bit string per vector, LSB first: M codes of nbits_m bits, then the norm field
//                      (ST_norm_float: the f32 ‖x̂‖² bits, 32 bits; qint8/cqint8: 8 bits; qint4/cqint4: 4 bits;
//                      ST_decompress, ST_LUT_nonorm, ST_norm_from_LUT: none), padded to whole bytes.
//                      qint8 decodes as norm_min + (c + 0.5)/256 · (norm_max − norm_min).
//   "IxPT"           : header, i32 n_transforms, n × transform, the inner index
//   "LTra"           : bool have_bias, vec<f32> A (d_out × d_in, row-major), vec<f32> b, then (every
//                      transform) i32 d_in, i32 d_out, bool is_trained
//   "IxMp" / "IxM2"  : header, the inner index, vec<i64> id_map
//   "IxF2" / "IxFI"  : header, vec<f32> vectors (count = ntotal × d floats)
//   IVF header       : header, u64 nlist, u64 nprobe, the coarse quantizer (an index), direct map
//                      (u8 type, vec<i64>, and for type 2 a vec of (i64, i64) pairs)
//   "IwPQ"           : IVF header, bool by_residual, u64 code_size, PQ, inverted lists
//   "IwRQ"           : IVF header, u64 code_size, RQ, bool by_residual, i32 use_precomputed_table, lists
//   "ilar"           : u64 nlist, u64 code_size, then "full" + vec<u64> sizes (nlist entries) or "sprs" +
//                      vec<u64> (list, size) pairs; then for every non-empty list: size × code_size code bytes
//                      followed by size × i64 ids
// These are the fourccs faiss 1.7.3 writes itself (it also reads them); newer faiss reads them too.
//
// Nothing read is trusted: every count is checked against the bytes left and a per-kind limit before any
// allocation, products are overflow-checked, floats must be finite, codes in range, ids unique, and the result
// is assembled as a quiver index file and loaded through Index::deserialize, which re-validates everything.
// Failures throw Error(Corrupt) (damaged or inconsistent file) or Error(Unsupported) (valid but unmapped).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "index.h"

namespace quiver {

// The index as faiss index file bytes. Throws Unsupported (see above) or State (untrained).
std::vector<uint8_t> index_to_faiss(const Index& index);
// Parses faiss index file bytes into a quiver index (owned memory). Throws Corrupt or Unsupported.
std::unique_ptr<Index> index_from_faiss(const uint8_t* data, size_t size);

// Plain export: the trained state as named float32 arrays, for engines that take external codebooks.
struct PlainArray {
  std::string name;           // file stem, e.g. "ivf_centroids"
  std::vector<size_t> shape;  // row-major; the product is data.size()
  std::vector<float> data;
  std::string description;    // what the array holds and how it is applied
};
struct PlainExport {
  std::vector<PlainArray> arrays;
  std::string codec;          // the codec part of the spec ("PQ16x8", "RQ8x8", …)
  bool residual = false;      // codes quantise x − ivf_centroids[list] (IVF) rather than x
  std::string norm;           // RQ norm storage ("f32" / "u8"), empty otherwise
  float norm_lo = 0, norm_hi = 0;  // the u8 norm range (decode: lo + (hi − lo) · c / 255)
};
// Covers PQ, PQ…fs, OPQ, RQ codecs alone or as IVF fine codecs (IVF and IVF,TRQ). Throws Unsupported for the
// others (Flat has no codebook; PRQ and TRQ codecs are not exported yet), State when untrained.
PlainExport export_plain(const Index& index);

}  // namespace quiver
