// IVF with fast-scan lists from JS: "IVF<n>,PQ<M>x4fs" answers as "IVF<n>,PQ<M>x4" (same training, same codes),
// keeps doing so after remove and save/load/mmap, and reports its code size. (The C++ tests cover filters,
// categories, TRQ, merging and damaged files.)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { Index } from '../lib/index';
import { randomFloats } from './helpers';

const dim = 24;
const n = 1500;
const nq = 10;
const base = randomFloats(n * dim, 81);
const queries = randomFloats(nq * dim, 82);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-ivffs-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Largest relative difference between two distance arrays. */
function worstDifference(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i])));
  return worst;
}

t.test('IVF8,PQ6x4fs equals IVF8,PQ6x4 through search, remove and save/load', async (t) => {
  const fsIndex = await Index.train('IVF8,PQ6x4fs', base, { dim, seed: 3, iterations: 5 });
  const plain = await Index.train('IVF8,PQ6x4', base, { dim, seed: 3, iterations: 5 });
  t.equal(fsIndex.spec, 'IVF8,PQ6x4fs');
  t.equal(fsIndex.codeSize, 3);
  await fsIndex.add(base);
  await plain.add(base);
  for (const nprobe of [2, 8]) {
    const a = await fsIndex.search(queries, 10, { nprobe });
    const b = await plain.search(queries, 10, { nprobe });
    t.same(a.ids, b.ids, `nprobe ${nprobe}: same ids`);
    const worst = worstDifference(a.distances, b.distances);
    t.ok(worst <= 1e-5, `nprobe ${nprobe}: distances agree (worst relative difference ${worst})`);
  }
  const gone = Array.from({ length: 200 }, (_, i) => BigInt(i * 7));
  t.equal(await fsIndex.remove(gone), 200);
  await plain.remove(gone);
  const want = await fsIndex.search(queries, 10, { nprobe: 4 });
  t.same(want.ids, (await plain.search(queries, 10, { nprobe: 4 })).ids, 'same ids after remove');
  const file = path.join(tmp, 'ivf-fs.qvr');
  await fsIndex.save(file);
  for (const mmap of [false, true]) {
    const loaded = await Index.load(file, { mmap });
    const got = await loaded.search(queries, 10, { nprobe: 4 });
    t.same(got.ids, want.ids, `loaded (mmap ${mmap})`);
    t.same(got.distances, want.distances);
  }
  t.throws(() => Index.describeSpec('IVF8,PQ6x8fs', dim), { message: /fast-scan needs 4-bit codes/ });
});
