// The command line: the demo prints real results; bad flags exit with code 2 and say why.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';

import { ROOT } from './helpers';

const bin = path.join(ROOT, 'bin', 'quiver.js');
const FIXTURE_DIR = path.join(ROOT, 'test', 'fixtures');

t.test('quiver demo --json measures Flat and PQ on the embedded data', async (t) => {
  const run = spawnSync(process.execPath, [bin, 'demo', '--specs', 'Flat;PQ8x8', '--json'], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.equal(result.base, 9900);
  t.equal(result.rows.length, 2);
  const [flat, pq] = result.rows;
  t.equal(flat.spec, 'Flat');
  t.equal(flat.recallAt1, 1);
  t.equal(flat.bytesPerVector, 512);
  t.equal(pq.bytesPerVector, 8);
  t.ok(pq.tenRecallAt10 > 0.5 && pq.tenRecallAt10 < 1, `PQ8x8 10-recall@10 ${pq.tenRecallAt10}`);
  t.ok(pq.batchQps > 0 && pq.singleQps > 0);
});

t.test('the demo table is printed without --json; refine rows count their stored copy', async (t) => {
  const specs = 'Flat;PQ8x4fs,Refine,store=int8';
  const run = spawnSync(process.execPath, [bin, 'demo', '--specs', specs, '--no-progress'], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /\| Flat +\| +512 \|/);
  t.match(run.stdout, /\| PQ8x4fs,Refine,store=int8 \(refine 10\) +\| +4 \+ 128 \|/);
  t.match(run.stdout, /10-R@10/);
  const json = spawnSync(process.execPath, [bin, 'demo', '--specs', specs, '--json'], { encoding: 'utf8' });
  t.equal(json.status, 0, json.stderr);
  const [flat, refined] = JSON.parse(json.stdout).rows;
  t.equal(flat.refineBytesPerVector, 0);
  t.equal(refined.bytesPerVector, 4 + 128);
  t.equal(refined.refineBytesPerVector, 128);
});

t.test('bad usage exits 2 with a message', async (t) => {
  const bad = spawnSync(process.execPath, [bin, 'demo', '--seed', 'abc'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /--seed must be an integer/);
  const unknown = spawnSync(process.execPath, [bin, 'frobnicate'], { encoding: 'utf8' });
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /unknown command/);
  const badSpec = spawnSync(process.execPath, [bin, 'demo', '--specs', 'PQ999', '--json'], { encoding: 'utf8' });
  t.equal(badSpec.status, 2, 'an invalid spec is a usage error');
  t.match(badSpec.stderr, /quiver: spec "PQ999"/);
});

t.test('quiver build, search and info work end to end on the embedded data', async (t) => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const data = path.join(ROOT, 'data', 'bigann10k');
  const index = path.join(dir, 'sift.qvr');
  const build = spawnSync(process.execPath, [bin, 'build', path.join(data, 'bigann10k_heldout_base.bvecs'), '--spec', 'IVF16,PQ8x8', '-o', index, '--no-progress'], { encoding: 'utf8' });
  t.equal(build.status, 0, build.stderr);
  t.match(build.stdout, /IVF16,PQ8x8: 9900 vectors of dimension 128 \(l2\), 8 bytes\/vector/);
  const out = path.join(dir, 'ids.ivecs');
  const search = spawnSync(
    process.execPath,
    [bin, 'search', index, path.join(data, 'bigann10k_heldout_query.bvecs'), '-k', '10', '--nprobe', '16', '--gt', path.join(data, 'bigann10k_heldout_groundtruth.ivecs'), '--out', out],
    { encoding: 'utf8' },
  );
  t.equal(search.status, 0, search.stderr);
  const recall = Number(/10-recall@10 ([0-9.]+)/.exec(search.stdout)?.[1]);
  t.ok(recall > 0.45 && recall < 1, `10-recall@10 ${recall}`);
  t.equal(fs.statSync(out).size, 100 * (4 + 40), 'one .ivecs row per query');
  const json = path.join(dir, 'ids.json');
  t.equal(spawnSync(process.execPath, [bin, 'search', index, path.join(data, 'bigann10k_heldout_query.bvecs'), '-k', '3', '--out', json]).status, 0);
  t.equal(JSON.parse(fs.readFileSync(json, 'utf8')).length, 100);
  const info = spawnSync(process.execPath, [bin, 'info', index, '--json'], { encoding: 'utf8' });
  t.equal(info.status, 0, info.stderr);
  t.match(JSON.parse(info.stdout), { spec: 'IVF16,PQ8x8', dim: 128, vectors: 9900, formatVersion: 1, codeBytesPerVector: 8 });
  // Errors scripts can rely on: missing files and wrong formats exit 1, bad specs and flags exit 2.
  const missing = spawnSync(process.execPath, [bin, 'info', path.join(dir, 'nope.qvr')], { encoding: 'utf8' });
  t.equal(missing.status, 1);
  t.match(missing.stderr, /no such file/);
  const notIndex = spawnSync(process.execPath, [bin, 'info', path.join(data, 'SHA256SUMS')], { encoding: 'utf8' });
  t.equal(notIndex.status, 1);
  t.match(notIndex.stderr, /not a quiver index file/);
  const badSpec = spawnSync(process.execPath, [bin, 'build', path.join(data, 'bigann10k_heldout_base.bvecs'), '--spec', 'PQ8y', '-o', index], { encoding: 'utf8' });
  t.equal(badSpec.status, 2);
  t.match(badSpec.stderr, /spec "PQ8y"/);
  const noOut = spawnSync(process.execPath, [bin, 'build', path.join(data, 'bigann10k_heldout_base.bvecs'), '--spec', 'PQ8'], { encoding: 'utf8' });
  t.equal(noOut.status, 2);
  t.match(noOut.stderr, /--out/);
  const dimMismatch = spawnSync(process.execPath, [bin, 'search', index, path.join(FIXTURE_DIR, 'pq8x8.qvc')], { encoding: 'utf8' });
  t.equal(dimMismatch.status, 1);
});

t.test('quiver bench runs the suite on the embedded data and writes its reports', async (t) => {
  const fs = await import('node:fs');
  const os = await import('node:os');
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-bench-'));
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));
  const run = spawnSync(process.execPath, [bin, 'bench', '--specs', 'Flat;IVF8,PQ8x8', '--nprobe', '2,8', '--query-count', '20', '--out', out, '--no-progress'], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /\| quiver [^|]+ \| Flat \|/);
  t.match(run.stdout, /IVF8,PQ8x8 \| nprobe=8/);
  for (const f of ['results.json', 'results.md', 'results.svg']) t.ok(fs.existsSync(path.join(out, 'sift10k', f)), f);
  const bad = spawnSync(process.execPath, [bin, 'bench', '--nprobe', 'x', '--out', out], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /--nprobe: expected a comma-separated list/);
});
