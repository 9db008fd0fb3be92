#!/usr/bin/env bash
# The GPU check, part 1 (this machine, which has nvcc but no GPU): builds the CUDA-enabled C++ tests and
# benchmark (build/cuda) and addon (build-cuda-addon, through cmake-js), compiles the TypeScript, packs Node
# (../shared/gpu/pack-node.sh) and stages what the GPU machine needs under .gpu/ (git-ignored, < 64 MiB):
#   .gpu/node.xz, .gpu/bin/{quiver_gpu_tests,quiver_gpu_bench,quiver.node}.xz, .gpu/fashion/ (Fashion-MNIST
#   training images (xz), the first 1 000 test images and their ground truth).
# Part 2 runs there: scripts/gpu-run.sh (C++ GPU tests, the GPU checks through the Node API, the benchmark),
# with `carry: [".gpu", "dist"]`. Record each run's card and numbers in bench/results/gpu.md.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
jobs=$(nproc)

cmake -S . -B build/cuda -DQUIVER_CUDA=ON -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/cuda --target quiver_gpu_tests quiver_gpu_bench -j "$jobs"
npx cmake-js compile --out build-cuda-addon --CDQUIVER_CUDA=ON --CDQUIVER_BUILD_TESTS=OFF > build-cuda-addon.log 2>&1 ||
  { tail -40 build-cuda-addon.log; exit 1; }
npm run build:ts > /dev/null
[ -f .gpu/node.xz ] || ../shared/gpu/pack-node.sh

mkdir -p .gpu/bin .gpu/fashion
cp build/cuda/quiver_gpu_tests build/cuda/quiver_gpu_bench build-cuda-addon/Release/quiver.node .gpu/bin/
strip .gpu/bin/quiver_gpu_tests .gpu/bin/quiver_gpu_bench .gpu/bin/quiver.node
# Fat binaries (sm_80 + sm_90 code) are large: compressed, they keep the travelling tree under 64 MiB.
xz -f -T"$jobs" -6 .gpu/bin/quiver_gpu_tests .gpu/bin/quiver_gpu_bench .gpu/bin/quiver.node

fm=/usr/share/datasets/fashion-mnist
gt=../shared/data/fashion-mnist/fashion-mnist_test_vs_train_groundtruth.ivecs
if [ -f "$fm/train-images-idx3-ubyte.gz" ] && [ -f "$gt" ]; then
  [ -f .gpu/fashion/train-images-idx3-ubyte.xz ] ||
    zcat "$fm/train-images-idx3-ubyte.gz" | xz -T"$jobs" -6 > .gpu/fashion/train-images-idx3-ubyte.xz
  # The first 1 000 test images (after the 16-byte idx header) and their rows of the shipped ground truth
  # (each row: int32 k = 100, then 100 ids).
  # (head closes the pipe early on purpose: no pipefail for this line)
  (set +o pipefail; zcat "$fm/t10k-images-idx3-ubyte.gz" | tail -c +17 | head -c $((1000 * 784)) > .gpu/fashion/queries.u8)
  head -c $((1000 * 404)) "$gt" > .gpu/fashion/groundtruth.ivecs
else
  echo "Fashion-MNIST not found (apt-get install dataset-fashion-mnist; ../shared/data): the GPU run skips it"
fi
du -sh .gpu dist
echo "GPU machine command (device tool, carry .gpu and dist): bash scripts/gpu-run.sh"
