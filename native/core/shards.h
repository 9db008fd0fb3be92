// Scale-out support: merging index files that were encoded separately ("shards") against one codebook.
//
// A shard is an ordinary index file (io.h, magic "QVRI"): the trained, empty codebook index with one slice of
// the collection added. Shards share the codebook's trained state bit for bit, so their codes, and the
// distances computed from them, are directly comparable.
#pragma once

#include <string>
#include <vector>

namespace quiver {

// Merges the index files `inputs` (at least one) into one index file at `output`, written atomically
// (write_file_atomic). Rows come in input order, each file's rows in their stored order: the output is
// byte-identical to the file of one index that added all the vectors in that order (for IVF, every list holds
// its rows contiguously and in row order). Each input is memory-mapped, validated in full (CRCs, bounds),
// appended and unmapped before the next is opened; peak memory is the merged index plus its serialised copy.
// Throws InvalidArgument when the inputs differ in spec, dimension, metric or trained state, or share an id
// (the message names the offending file), Corrupt for a damaged file, Io for file-system errors.
void merge_index_files(const std::vector<std::string>& inputs, const std::string& output);

}  // namespace quiver
