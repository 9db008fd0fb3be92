// Scale-out support: merging index files that were encoded separately ("shards") against one codebook.
//
// A shard is an ordinary index file (io.h, magic "QVRI"): the trained, empty codebook index with one slice of
// the collection added. Shards share the codebook's trained state bit for bit, so their codes, and the
// distances computed from them, are directly comparable.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace quiver {

struct MergeLimits {
  // Ids the disjointness check holds at once (8 bytes each). More ids than this are checked in several passes
  // over the mapped id sections, each taking the ids of one hash partition, so memory stays bounded.
  size_t id_check_ids = size_t(8) << 20;
};

// Merges the index files `inputs` (at least one) into one index file at `output`, written atomically (a
// temporary file, fsync, rename). Rows come in input order, each file's rows in their stored order: the output
// is byte-identical to the file of one index that added all the vectors in that order (Index::merge_from then
// serialize; for IVF, every list holds its rows contiguously and in row order).
//
// Streaming: every input is memory-mapped and validated in full first (CRCs, bounds, the checks of
// Index::deserialize, and the checks of merge_from: same spec, bit-identical trained state, disjoint ids); then
// the output is written section by section, each section's length computed up front and its CRC while
// writing, the bulk data (ids, categories, codes, IVF lists, refine stores) copied from the mappings, whose
// pages are released behind the copy. Memory: the trained state of one shard, the IVF list offsets of every
// input (8 bytes per list and input), one copy buffer, and the id check's partition (MergeLimits) — not the
// codes.
// Throws InvalidArgument when the inputs differ in spec, dimension, metric or trained state, or share an id
// (the message names the offending file), Corrupt for a damaged file, Io for file-system errors; `output` is
// then untouched.
void merge_index_files(const std::vector<std::string>& inputs, const std::string& output);
void merge_index_files(const std::vector<std::string>& inputs, const std::string& output, const MergeLimits& limits);

}  // namespace quiver
