#!/usr/bin/env bash
# Sanitizer runs (see the README's contributing section):
#   1. the C++ unit tests under ASan + UBSan,
#   2. the C++ unit tests under TSan,
#   3. the tap tests of quiver's own native boundary (API, bad input, persistence, readers, recall, modules)
#      against an addon built with ASan + UBSan (through cmake-js), with the sanitizer runtimes preloaded into
#      node. The pipeline tests are left out: they load other native libraries (onnxruntime, libvips, TF.js) that
#      are not ours to sanitize and misbehave under a preloaded ASan runtime.
# Usage: scripts/sanitize.sh [asan|tsan|tap|all]   (default all)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"

if [ "$what" = asan ] || [ "$what" = all ]; then
  echo "== C++ tests under AddressSanitizer + UndefinedBehaviorSanitizer"
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 QUIVER_SANITIZE=address,undefined node scripts/test-cpp.js
fi

if [ "$what" = tsan ] || [ "$what" = all ]; then
  echo "== C++ tests under ThreadSanitizer"
  TSAN_OPTIONS=halt_on_error=1 QUIVER_SANITIZE=thread node scripts/test-cpp.js
fi

if [ "$what" = tap ] || [ "$what" = all ]; then
  echo "== tap tests against an ASan + UBSan addon"
  # Outside build/: node-gyp rebuild wipes that folder.
  npx cmake-js compile -O build-asan-addon --CDQUIVER_SANITIZE=address,undefined --CDQUIVER_BUILD_TESTS=OFF >/dev/null
  npm run build:ts >/dev/null
  # node is not instrumented, so the runtimes are preloaded; V8's own allocations are not ours to judge (leaks off).
  LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_odr_violation=0 \
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
  QUIVER_ADDON="$PWD/build-asan-addon/Release/quiver.node" \
    npx tap --jobs=1 test/api.test.ts test/bad-input.test.ts test/persistence.test.ts test/io.test.ts \
      test/recall-sift.test.ts test/modules.test.ts
fi
