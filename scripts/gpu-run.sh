#!/usr/bin/env bash
# The GPU check, part 2 (the GPU machine, repository root, after scripts/gpu-check.sh staged .gpu/): C++ GPU
# tests, the GPU checks through the Node API with the CUDA-enabled addon, and the benchmark. Logs and the
# benchmark table go to $OUT (default /tmp/quiver-gpu). Exit status: non-zero if any part failed.
set -uo pipefail
out=${OUT:-/tmp/quiver-gpu}
mkdir -p "$out"
root=$(pwd)
xz -dc .gpu/node.xz > /tmp/quiver-node && chmod +x /tmp/quiver-node
for f in quiver_gpu_tests quiver_gpu_bench quiver.node; do
  xz -dc ".gpu/bin/$f.xz" > ".gpu/bin/$f" && chmod +x ".gpu/bin/$f"
done
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm,temperature.gpu --format=csv |
  tee "$out/nvidia-smi.csv"
if [ -f .gpu/fashion/train-images-idx3-ubyte.xz ]; then
  xz -dc .gpu/fashion/train-images-idx3-ubyte.xz > .gpu/fashion/train-images-idx3-ubyte
fi
status=0
echo "== C++ GPU tests"
timeout 150 .gpu/bin/quiver_gpu_tests 2>&1 | tee "$out/gpu-tests.log" || status=1
echo "== GPU checks through the Node API"
QUIVER_ADDON="$root/.gpu/bin/quiver.node" timeout 100 /tmp/quiver-node test/gpu/run.js 2>&1 | tee "$out/gpu-node.log" ||
  status=1
echo "== GPU benchmark"
timeout 200 .gpu/bin/quiver_gpu_bench --fashion .gpu/fashion --out "$out/gpu-bench.md" 2>&1 | tee "$out/gpu-bench.log" ||
  status=1
exit $status
