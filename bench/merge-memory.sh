#!/usr/bin/env bash
# Peak memory of mergeShards: the streamed merge against the former in-memory path, on 4 Flat shards holding
# 205 MB of codes (the C++ test "shards: the streamed merge of 200 MB …", with QUIVER_MERGE_COMPARE=1 so that it
# also runs the in-memory path). Appends the outcome, with the machine, to bench/results/merge-memory.md.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
cmake -S . -B build-merge -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build-merge --target quiver_tests -j "$(nproc)" > /dev/null
out=$(cd build-merge && QUIVER_MERGE_COMPARE=1 ./quiver_tests "200 MB")
{
  echo
  echo "## $(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo '```'
  echo "$out" | grep -E "peak RSS|passed"
  echo '```'
} >> bench/results/merge-memory.md
echo "$out"
