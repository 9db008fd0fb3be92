// binding.gyp (what npm builds) and CMakeLists.txt (core library, C++ tests, cmake-js addon) must compile the
// same sources: this test fails when the two lists drift apart, or when a .cpp file is in neither.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';

import { ROOT } from './helpers';

function gypSources(): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8').replace(/^\s*#.*$/gm, '');
  const gyp = JSON.parse(text) as { targets: { target_name: string; sources: string[] }[] };
  return gyp.targets.find((x) => x.target_name === 'quiver')!.sources.slice().sort();
}

function cmakeList(name: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
  const match = new RegExp(`set\\(${name}\\s+([^)]*)\\)`).exec(text);
  if (!match) throw new Error(`CMakeLists.txt has no set(${name} ...)`);
  return match[1].split(/\s+/).filter((s) => s && !s.startsWith('#'));
}

t.test('binding.gyp and CMakeLists.txt list the same sources', async (t) => {
  const cmake = [...cmakeList('QUIVER_CORE_SOURCES'), ...cmakeList('QUIVER_ADDON_SOURCES')].sort();
  t.same(gypSources(), cmake);
});

t.test('every .cpp under native/core and native/addon is built', async (t) => {
  const onDisk = ['core', 'addon'].flatMap((d) =>
    fs.readdirSync(path.join(ROOT, 'native', d)).filter((f) => f.endsWith('.cpp')).map((f) => `native/${d}/${f}`),
  );
  t.same(gypSources(), onDisk.sort());
});

t.test('no system OpenMP or BLAS is linked', async (t) => {
  const all = fs.readFileSync(path.join(ROOT, 'binding.gyp'), 'utf8') + fs.readFileSync(path.join(ROOT, 'CMakeLists.txt'), 'utf8');
  t.notMatch(all, /fopenmp|OpenMP|blas|lapack/i);
});
