#!/usr/bin/env bash
# Encoding time of two revisions of the core in one process (bench/cpp/encode_ab.cpp): builds each revision's core
# as a position-independent static library from `git archive`, links it with bench/cpp/encode_ab_shim.cpp into a
# shared object, and times both on Fashion-MNIST images (apt-get install -y dataset-fashion-mnist).
#
#   bench/encode-ab.sh <rev A> <rev B> [--reps N] [--train N] [--count N] spec…
#   e.g. bench/encode-ab.sh e006a73 3865437 PQ16x8 "SPLIT2,PCA128,TRQ8x8,beam=6,sub=16,pd=10"
# Work files go to $QUIVER_AB_DIR (default /tmp/quiver-encode-ab); the table goes to standard output.
set -euo pipefail
if [ $# -lt 3 ]; then
  sed -n '2,8p' "$0" >&2
  exit 2
fi
root=$(git rev-parse --show-toplevel)
work=${QUIVER_AB_DIR:-/tmp/quiver-encode-ab}
images=/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
if [ ! -f "$images" ]; then
  echo "encode-ab: $images is missing (apt-get install -y dataset-fashion-mnist); skipping" >&2
  exit 0
fi
mkdir -p "$work"
[ -f "$work/train-images-idx3-ubyte" ] || zcat "$images" > "$work/train-images-idx3-ubyte"
objects=()
revs=("$1" "$2")
for rev in "${revs[@]}"; do
  sha=$(git -C "$root" rev-parse --short "$rev^{commit}")
  src="$work/src-$sha" build="$work/build-$sha"
  if [ ! -f "$work/$sha.so" ]; then
    rm -rf "$src" && mkdir -p "$src"
    git -C "$root" archive "$sha" | tar -x -C "$src"
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
      -DQUIVER_BUILD_TESTS=OFF > /dev/null
    cmake --build "$build" -j "$(nproc)" --target quiver_core > /dev/null
    g++ -O2 -std=c++17 -fPIC -shared -I "$src/native/core" "$root/bench/cpp/encode_ab_shim.cpp" \
      -Wl,--whole-archive "$build/libquiver_core.a" -Wl,--no-whole-archive -lpthread -o "$work/$sha.so"
  fi
  objects+=("$work/$sha.so")
done
g++ -O2 -std=c++17 "$root/bench/cpp/encode_ab.cpp" -ldl -o "$work/encode_ab"
shift 2
model=$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || true)
echo "Machine: ${model:-unknown CPU}, $(nproc) cores, load average $(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo ?), $(date -u +%Y-%m-%dT%H:%M:%SZ); revisions ${revs[0]} and ${revs[1]}."
echo
"$work/encode_ab" "${objects[0]}" "${objects[1]}" "$work/train-images-idx3-ubyte" "$@"
