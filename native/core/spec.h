// Factory strings, in the spirit of faiss: comma-separated components, e.g. "Flat", "PQ16x8", "PQ16,Refine".
//
// Grammar (whitespace around commas is ignored; names are case-sensitive):
//   spec      := component ("," component)*
//   component := NAME [INT ("x" INT)*] [SUFFIX]      e.g. PQ16x8, PQ16 (nbits defaults to 8)
//              | KEY "=" VALUE                         an option of the preceding component (e.g. beam=16)
// Supported now:  Flat | PQ<M>[x<nbits>] [,Refine]
// Later issues add IVF<nlist>, OPQ<M>, RQ<L>x<b>, TRQ…, PRQ…: they extend the component table in spec.cpp.
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
