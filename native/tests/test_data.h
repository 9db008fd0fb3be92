// Real vector data for tests: the SIFT slice in ../shared/data (relative to the repository root, where the
// tests run from), or the folder named by QUIVER_DATA_DIR. Tests skip, saying so, when the files are absent.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace qvtest {

inline std::string data_dir() {
  if (const char* env = std::getenv("QUIVER_DATA_DIR")) return env;
  // ctest runs from the build folder, a direct run usually from the repository root: try both.
  for (const char* candidate : {"../shared/data", "../../../shared/data", "../../shared/data"}) {
    std::ifstream probe(std::string(candidate) + "/README.md");
    if (probe) return candidate;
  }
  return "../shared/data";
}

// Reads a .bvecs file (per vector: int32 dim, then dim uint8) into floats. Returns false (and leaves the
// outputs empty) when the file is missing or malformed.
inline bool read_bvecs(const std::string& path, std::vector<float>* out, size_t* n, size_t* d) {
  out->clear();
  *n = *d = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::vector<uint8_t> row;
  for (;;) {
    int32_t dim = 0;
    if (!in.read(reinterpret_cast<char*>(&dim), 4)) break;
    if (dim <= 0 || dim > 1 << 20 || (*d != 0 && size_t(dim) != *d)) return false;
    *d = size_t(dim);
    row.resize(*d);
    if (!in.read(reinterpret_cast<char*>(row.data()), std::streamsize(*d))) return false;
    out->insert(out->end(), row.begin(), row.end());
    ++*n;
  }
  return *n > 0;
}

// The held-out SIFT base (9 900 × 128); false with a printed note when absent.
inline bool load_sift_heldout_base(std::vector<float>* x, size_t* n, size_t* d) {
  const std::string path = data_dir() + "/bigann10k/bigann10k_heldout_base.bvecs";
  if (read_bvecs(path, x, n, d)) return true;
  std::printf("    SKIP: %s not found (set QUIVER_DATA_DIR to the folder holding bigann10k/)\n", path.c_str());
  return false;
}

}  // namespace qvtest
