#!/usr/bin/env bash
# Builds the loader fuzz target with clang (libFuzzer + ASan + UBSan) and runs it for N seconds (default 300)
# over a corpus seeded with the fixture files. Needs clang and its runtime (Debian: clang-14 libclang-rt-14-dev).
# Appends the outcome to bench/results/fuzz-loader.md.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-300}"
cxx="${CXX_FUZZ:-$(command -v clang++ || command -v clang++-14 || true)}"
if [ -z "$cxx" ]; then
  echo "fuzz-loader: clang++ not found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi
cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER="$cxx" -DQUIVER_FUZZ=ON -DQUIVER_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz --target fuzz_loader --parallel "$(nproc)"
corpus=build-fuzz/corpus
mkdir -p "$corpus"
for f in test/fixtures/*.qvr test/fixtures/*.qvc; do
  # Small seeds mutate faster: keep files under 20 kB whole, and a prefix of bigger ones.
  head -c 20000 "$f" > "$corpus/seed-$(basename "$f")"
done
log=build-fuzz/run.log
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
set +e
build-fuzz/fuzz_loader "$corpus" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 >"$log" 2>&1
status=$?
set -e
runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
verdict=$([ "$status" -eq 0 ] && echo "clean" || echo "FAILED (exit $status, see $log)")
mkdir -p bench/results
if [ ! -f bench/results/fuzz-loader.md ]; then
  printf '# Loader fuzzing (libFuzzer + ASan + UBSan)\n\n| started (UTC) | seconds | executions | result | machine |\n|---|---:|---:|---|---|\n' > bench/results/fuzz-loader.md
fi
printf '| %s | %s | %s | %s | %s, %s cores |\n' "$start" "$seconds" "$runs" "$verdict" \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$(nproc)" >> bench/results/fuzz-loader.md
tail -n 5 "$log"
echo "fuzz-loader: $verdict after $seconds s, $runs executions"
exit "$status"
