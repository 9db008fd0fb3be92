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
function findNvcc() {
  for (const candidate of ['nvcc', '/usr/local/cuda/bin/nvcc']) {
    const r = spawnSync(candidate, ['--version'], { encoding: 'utf8' });
    if (!r.error && r.status === 0) return candidate;
  }
  return null;
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
