#!/usr/bin/env node
// Builds the C++ core and its unit tests with CMake (build/cpp) and runs them through ctest.
// QUIVER_SANITIZE=address,undefined (or thread) builds a sanitizer variant in build/cpp-<name> instead.
'use strict';
const { spawnSync } = require('node:child_process');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const sanitize = process.env.QUIVER_SANITIZE || '';
const buildDir = path.join(root, 'build', sanitize ? `cpp-${sanitize.replace(/[^a-z]+/g, '-')}` : 'cpp');
const jobs = String(Math.max(1, os.availableParallelism ? os.availableParallelism() : os.cpus().length));

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) {
    console.error(`test:cpp: cannot run ${cmd}: ${r.error.message} (install cmake >= 3.18 and a C++17 compiler)`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run('cmake', ['-S', root, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release', `-DQUIVER_SANITIZE=${sanitize}`]);
run('cmake', ['--build', buildDir, '--parallel', jobs]);
run('ctest', ['--test-dir', buildDir, '--output-on-failure']);

// The CUDA kernels (native/cuda) must at least compile wherever nvcc exists, so that they cannot rot on
// machines without a GPU; their test binary then runs every GPU case, or says it has no GPU and skips them.
// True when `cmd --version` runs and succeeds (how the optional toolchains below are detected).
function works(cmd) {
  const r = spawnSync(cmd, ['--version'], { encoding: 'utf8' });
  return !r.error && r.status === 0;
}

function findNvcc() {
  return ['nvcc', '/usr/local/cuda/bin/nvcc'].find(works) ?? null;
}
if (!sanitize && !process.env.QUIVER_SKIP_CUDA) {
  const nvcc = findNvcc();
  if (!nvcc) {
    console.log('test:cpp: nvcc not found, the CUDA kernels were not compiled (set up CUDA to build them)');
  } else {
    const cudaDir = path.join(root, 'build', 'cuda');
    const compilerArg = nvcc.includes('/') ? [`-DCMAKE_CUDA_COMPILER=${nvcc}`] : [];
    run('cmake', ['-S', root, '-B', cudaDir, '-DCMAKE_BUILD_TYPE=Release', '-DQUIVER_CUDA=ON', ...compilerArg]);
    run('cmake', ['--build', cudaDir, '--parallel', jobs, '--target', 'quiver_gpu_tests', 'quiver_gpu_bench']);
    run(path.join(cudaDir, 'quiver_gpu_tests'), []);
  }
}

// The NEON kernels (native/core/kernels_neon.cpp) must compile and pass where an AArch64 cross compiler and
// qemu-user exist (CI installs both): the core and its tests are cross-built into build/arm and the cases that
// exercise the kernels run under qemu-aarch64, NEON being the level there (the whole suite is too slow emulated),
// with the greedy RQ / TRQ encoders, whose argmin uses the compiler's portable vector extension (rq.cpp), and
// TRQ's subspace transforms and seed-table beam route (transposed products of the kernels).
const ARM_CASES = ['thread_pool', 'topk', 'kernels', 'simd', 'spec: parse', 'fastscan', 'pruned',
  'refine: fp16 and int8 kernels', 'refine: half', 'ivf: ', 'rq: first_minimum', 'rq: the greedy block',
  'trq: greedy encoding', 'trq: subspace', 'trq: beam encoding'];
if (!sanitize && !process.env.QUIVER_SKIP_ARM) {
  const cxx = 'aarch64-linux-gnu-g++';
  const qemu = 'qemu-aarch64';
  if (!works(cxx) || !works(qemu)) {
    console.log(`test:cpp: ${cxx} or ${qemu} not found, the NEON kernels were not built ` +
      '(apt-get install g++-aarch64-linux-gnu qemu-user to build and test them)');
  } else {
    const armDir = path.join(root, 'build', 'arm');
    run('cmake', ['-S', root, '-B', armDir, '-DCMAKE_BUILD_TYPE=Release', '-DCMAKE_SYSTEM_NAME=Linux',
      '-DCMAKE_SYSTEM_PROCESSOR=aarch64', `-DCMAKE_CXX_COMPILER=${cxx}`, '-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc']);
    run('cmake', ['--build', armDir, '--parallel', jobs, '--target', 'quiver_tests']);
    for (const filter of ARM_CASES) {
      console.log(`test:cpp: AArch64 (qemu) cases matching "${filter}"`);
      run(qemu, ['-L', '/usr/aarch64-linux-gnu', path.join(armDir, 'quiver_tests'), filter]);
    }
  }
}
