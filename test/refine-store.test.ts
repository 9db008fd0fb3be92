// Refine stores from JS: ",Refine,store=fp16|int8" specs, refineBytes, recall close to the f32 store, files
// (read and mmap) that answer as before, and clear errors for a bad store option. (The C++ tests cover the
// conversions, kernels at every SIMD level and recall on the SIFT slice.)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { Index } from '../lib/index';
import { bruteForce, randomFloats } from './helpers';

const dim = 32;
const n = 2000;
const nq = 20;
const k = 10;
const base = randomFloats(n * dim, 71);
const queries = randomFloats(nq * dim, 72);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-refine-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

function recall(ids: BigInt64Array, truth: number[][]): number {
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const want = new Set(truth[q].slice(0, k));
    for (let i = 0; i < k; i++) if (want.has(Number(ids[q * k + i]))) hits++;
  }
  return hits / (nq * k);
}

t.test('refine stores: canonical specs, bytes per vector, recall next to f32, save/load/mmap', async (t) => {
  const truth = bruteForce(base, queries, dim, k).ids;
  const got: Record<string, number> = {};
  for (const [store, bytes] of [['', 4 * dim], [',store=fp16', 2 * dim], [',store=int8', dim]] as const) {
    const spec = `PQ8x4,Refine${store}`;
    const index = await Index.train(spec, base, { dim, seed: 4, iterations: 6 });
    await index.add(base);
    t.equal(index.spec, spec, 'canonical spec');
    t.equal(index.refineBytes, bytes, `${spec}: ${bytes} refine bytes per vector`);
    const res = await index.search(queries, k, { refine: 100 });
    got[store || 'f32'] = recall(res.ids, truth);
    const file = path.join(tmp, `pq${store.replace(/\W/g, '')}.qvr`);
    await index.save(file);
    for (const mmap of [false, true]) {
      const loaded = await Index.load(file, { mmap });
      t.equal(loaded.refineBytes, bytes);
      const again = await loaded.search(queries, k, { refine: 100 });
      t.same(again.ids, res.ids, `${spec} (mmap ${mmap}) answers as before saving`);
      t.same(again.distances, res.distances);
    }
  }
  // Uniform random data is the hard case for an 8-bit grid; measured 10-recall@10 at refine 100 (seed 4):
  // f32 0.995, fp16 0.995, int8 0.985.
  t.ok(got.f32 >= 0.98, `f32 refine recall ${got.f32}`);
  t.ok(Math.abs(got[',store=fp16'] - got.f32) <= 0.005, `fp16 ${got[',store=fp16']} ≈ f32 ${got.f32}`);
  t.ok(got[',store=int8'] >= got.f32 - 0.03, `int8 ${got[',store=int8']} within 0.03 of f32 ${got.f32}`);
  t.equal(Index.describeSpec('IVF8,PQ8x4,Refine,store=f32', dim).spec, 'IVF8,PQ8x4,Refine');
});

t.test('refine stores: a bad store option names the spec and the accepted values', async (t) => {
  for (const spec of ['PQ8x4,Refine,store=f8', 'PQ8x4,Refine,beam=2', 'Flat,Refine,store=fp16']) {
    t.throws(() => Index.trainSync(spec, base, { dim }), { message: /spec "/ }, spec);
  }
  t.throws(() => Index.describeSpec('PQ8x4,Refine,store=f8', dim), { message: /store must be f32.*fp16.*int8.*got "f8"/ });
  // refine without a store still says how to get one.
  const plain = await Index.train('PQ8x4', base, { dim, seed: 1, iterations: 2 });
  await plain.add(base);
  t.throws(() => plain.searchSync(queries.subarray(0, dim), 1, { refine: 4 }), RangeError);
});
