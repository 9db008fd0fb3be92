// Factory strings, in the spirit of faiss: comma-separated components, e.g. "Flat", "PQ16x8", "PQ16,Refine".
//
// Grammar (whitespace around commas is ignored; names are case-sensitive):
//   spec      := component ("," component)*
//   component := NAME [INT ("x" INT)*] [SUFFIX]      e.g. PQ16x8, PQ16 (nbits defaults to 8)
//              | KEY "=" VALUE                         an option of the preceding component (e.g. beam=16)
// Codecs (make_codec; also exhaustive indexes and IVF fine codecs), with code sizes in bits (+ norm bytes):
//   PQ<M>[x<b>]                         M·b bits
//   OPQ<M>,PQ<M>[x<b>][,iters=N]        M·b bits (a learnt rotation first)
//   RQ<L>[x<b>][,beam=B][,norm=f32|u8][,refit=N]            L·b bits + 4 bytes (f32) or 1 byte (u8) of norm
//   PRQ<P>x<L>[x<b>][,beam=B][,norm=f32|u8][,refit=N]       P·L·b bits + norm
//   TRQ<L>[x<b>][,beam=B][,iters=N][,norm=f32|u8][,pca=0|1][,reg=W]   L·b bits + norm (TRQ1x<b1>,RQ<L>x<b>: b1 + L·b)
//   TRQ1x<b1>,PQ<M>[x<b>][,beam=B][,iters=N][,pca=0|1][,reg=W]        b1 + M·b bits, no norm
//   RQ1x<b1>,PQ<M>[x<b>][,beam=B]       b1 + M·b bits (first level, PQ on the residual, no transforms)
//   PCA<p>,<codec>                      the codec's bits (vectors projected onto p principal components first; pca.h)
//   SPLIT<P>,<codec>                    P × the codec's code (P contiguous parts, one codec each; split.h)
// Options may follow any component of a composite codec; canonical specs write them last, in a fixed order,
// and only when not the default. Indexes: Flat | PQ<M>x4fs | IVF<nlist>,[TRQ,]<codec> |
// IVF<nlist>,[TRQ,]PQ<M>x4fs (fast-scan lists) | <codec>, then
// optionally ",Refine" (a float32 copy of every vector for re-scoring) or ",Refine,store=fp16|int8" (2 or 1
// bytes per dimension, refine.h); canonical specs omit store=f32.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "index.h"
#include "quantizer.h"

namespace quiver {

struct SpecComponent {
  std::string name;                           // "PQ", "Flat", ...
  std::vector<size_t> numbers;                // the INT list: PQ16x8 → {16, 8}
  std::string suffix;                         // trailing letters after the numbers ("fs" in PQ32x4fs)
  std::map<std::string, std::string> options;  // key=value components that follow it
  std::string text;                           // the component as written, for messages
};

// Splits and lexes a spec; throws InvalidArgument naming the offending component and what was expected.
std::vector<SpecComponent> parse_spec(const std::string& spec);

// Builds an untrained index / codec for `dim`-dimensional vectors.
std::unique_ptr<Index> make_index(const std::string& spec, size_t dim, Metric metric);
std::unique_ptr<Quantizer> make_codec(const std::string& spec, size_t dim);

// Canonical form and code size in bytes (without building anything heavy), e.g. for validation in JS.
struct SpecInfo {
  std::string canonical;
  size_t code_size = 0;  // bytes per vector of the searchable representation
};
SpecInfo describe_index_spec(const std::string& spec, size_t dim);

}  // namespace quiver
