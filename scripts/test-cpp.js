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
