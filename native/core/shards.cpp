#include "shards.h"

#include <memory>

#include "error.h"
#include "index.h"
#include "io.h"

namespace quiver {

void merge_index_files(const std::vector<std::string>& inputs, const std::string& output) {
  QV_CHECK(!inputs.empty(), InvalidArgument, "files: expected at least one index file to merge");
  std::unique_ptr<Index> merged;
  for (size_t i = 0; i < inputs.size(); ++i) {
    try {
      // Borrowing keeps the shard's bulk data in the mapping; merge_from copies it into the merged index.
      std::unique_ptr<Index> shard = Index::deserialize(map_file(inputs[i]), /*borrow=*/true);
      if (!merged)
        merged = std::move(shard);
      else
        merged->merge_from(*shard);
    } catch (const Error& e) {
      // Say which file failed, keeping the code (Corrupt, Io, InvalidArgument) for the caller.
      throw Error(e.code(), "files[" + std::to_string(i) + "] (" + inputs[i] + "): " + e.what(), e.file(),
                  e.line());
    }
  }
  write_file_atomic(output, merged->serialize());
}

}  // namespace quiver
