// Distribution: the packed tarball installs into an empty project with NO compiler on the PATH (the prebuild
// is used), and without its prebuild it compiles from the shipped sources. A missing addon gives an error that
// says what was tried and what to do. Slow (a prebuild, two installs, one source build): about 3–4 minutes.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { ROOT } from './helpers';

t.setTimeout(15 * 60 * 1000);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-pack-'));
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));

const npmCli = path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');

function run(cmd: string, args: string[], options: SpawnSyncOptions = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  return { status: r.status, stdout: String(r.stdout ?? ''), out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

const SEARCH = `
  const { Index } = require('quiver');
  const dim = 4;
  const v = new Float32Array([0,0,0,0, 1,1,1,1, 9,9,9,9]);
  const index = Index.trainSync('Flat', v, { dim });
  index.addSync(v);
  console.log('nearest', String(index.searchSync(new Float32Array([1,1,1,1.2]), 1).ids[0]));`;

function makeProject(name: string): string {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  return dir;
}

let tarball = '';
let sourceOnly = '';

t.test('npm pack ships a prebuild, the sources and no tests', async (t) => {
  const pack = run(process.execPath, [npmCli, 'pack', '--json', '--pack-destination', work], { cwd: ROOT });
  t.equal(pack.status, 0, pack.out);
  // npm prints the prepare script's output before the JSON on stdout.
  const info = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('\n[') + 1))[0] as { filename: string; files: { path: string }[] };
  const packed = path.join(work, info.filename);
  const files = info.files.map((f) => f.path);
  for (const needed of ['binding.gyp', 'native/core/index.cpp', 'native/addon/addon.cpp', 'dist/cjs/index.js', 'dist/esm/index.mjs', 'data/bigann10k/bigann10k_heldout_base.bvecs']) {
    t.ok(files.includes(needed), `ships ${needed}`);
  }
  t.notOk(files.some((f) => f.startsWith('test/') || f.startsWith('native/tests/')), 'no tests in the package');

  // Build the prebuild inside an unpacked copy, as a release would, so that this test never touches the
  // checkout's own build/ folder (which other test files are using at the same time).
  const unpacked = path.join(work, 'unpacked');
  fs.mkdirSync(unpacked);
  t.equal(run('tar', ['xzf', packed, '-C', unpacked]).status, 0);
  const pkg = path.join(unpacked, 'package');
  fs.rmSync(path.join(pkg, 'prebuilds'), { recursive: true, force: true });
  sourceOnly = path.join(work, 'quiver-source-only.tgz');
  t.equal(run('tar', ['czf', sourceOnly, '-C', unpacked, 'package']).status, 0);
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
  const prebuild = run(process.execPath, [path.join(ROOT, 'node_modules', 'prebuildify', 'bin.js'), '--napi', '--strip'], { cwd: pkg });
  t.equal(prebuild.status, 0, prebuild.out);
  fs.rmSync(path.join(pkg, 'node_modules'));
  fs.rmSync(path.join(pkg, 'build'), { recursive: true, force: true });
  const built = fs.readdirSync(path.join(pkg, 'prebuilds', `${process.platform}-${process.arch}`));
  t.ok(built.some((f) => f.endsWith('.node')), `a ${process.platform}-${process.arch} prebuild: ${built}`);
  tarball = path.join(work, 'quiver-with-prebuild.tgz');
  t.equal(run('tar', ['czf', tarball, '-C', unpacked, 'package']).status, 0);
});

t.test('installs and runs with no compiler on the PATH (prebuild)', async (t) => {
  const project = makeProject('with-prebuild');
  // A PATH holding node and a shell (npm runs install scripts through sh) and nothing else: no cc, c++, make
  // or python, so a source build could not even start.
  const bin = path.join(work, 'bin-node-only');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh'));
  const env = { ...process.env, PATH: bin, npm_config_audit: 'false', npm_config_fund: 'false' };
  for (const tool of ['cc', 'c++', 'g++', 'make', 'python3']) {
    t.equal(run('/bin/sh', ['-c', `command -v ${tool}`], { env }).status === 0, false, `${tool} is not on the PATH`);
  }
  const install = run(process.execPath, [npmCli, 'install', '--prefer-offline', '--omit=peer', tarball], { cwd: project, env });
  t.equal(install.status, 0, install.out);
  t.notOk(fs.existsSync(path.join(project, 'node_modules', 'quiver', 'build')), 'nothing was compiled');
  const search = run(process.execPath, ['-e', SEARCH], { cwd: project, env });
  t.equal(search.status, 0, search.out);
  t.match(search.out, /nearest 1/);
  const demo = run(process.execPath, [path.join(project, 'node_modules', '.bin', 'quiver'), 'demo', '--specs', 'Flat', '--json'], { cwd: project, env });
  t.equal(demo.status, 0, demo.out);
  t.equal(JSON.parse(demo.stdout).rows[0].recallAt1, 1);
});

t.test('without the prebuild, npm install compiles the addon from the shipped sources', async (t) => {
  const project = makeProject('from-source');
  const install = run(process.execPath, [npmCli, 'install', '--prefer-offline', '--omit=peer', sourceOnly], { cwd: project });
  t.equal(install.status, 0, install.out);
  t.ok(fs.existsSync(path.join(project, 'node_modules', 'quiver', 'build', 'Release', 'quiver.node')), 'compiled by node-gyp');
  const search = run(process.execPath, ['-e', SEARCH], { cwd: project });
  t.equal(search.status, 0, search.out);
  t.match(search.out, /nearest 1/);
});

t.test('a package without any addon explains what it tried and what to do', async (t) => {
  const fake = path.join(work, 'no-addon', 'node_modules', 'quiver');
  fs.mkdirSync(fake, { recursive: true });
  fs.cpSync(path.join(ROOT, 'dist'), path.join(fake, 'dist'), { recursive: true });
  fs.writeFileSync(path.join(fake, 'package.json'), JSON.stringify({ name: 'quiver', main: 'dist/cjs/index.js' }));
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'node-gyp-build'), path.join(work, 'no-addon', 'node_modules', 'node-gyp-build'));
  const r = run(process.execPath, ['-e', "try { require('quiver').simdLevel() } catch (e) { console.log(e.code + ' ' + e.message) }"], {
    cwd: path.join(work, 'no-addon'),
    env: { ...process.env, QUIVER_ADDON: '' },
  });
  t.match(r.out, /ERR_QUIVER_NATIVE_LOAD/);
  t.match(r.out, /Looked for a prebuild in .*prebuilds and a local build in .*build/);
  t.match(r.out, /npm rebuild quiver/);
});
