// Accuracy on real data: the embedded SIFT slice (9 900 base, 100 held-out queries, exact ground truth).
// Bounds were measured with these seeds (see the comments) and sit a little below the measured values, so
// that a real regression fails while thread scheduling (which cannot change results) and SIMD level
// (float rounding) cannot.
import * as path from 'node:path';
import t from 'tap';

import { Index, kRecallAt, oneRecallAt, readVectors } from '../lib/index';
import { DEMO_DATA } from './helpers';

const k = 100;

t.test('SIFT slice: Flat is exact, PQ reaches its measured recall, refine recovers exactness', async (t) => {
  const base = await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_base.bvecs'));
  const queries = await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_query.bvecs'));
  const gt = await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_groundtruth.ivecs'));
  t.equal(base.n, 9900);
  t.equal(queries.n, 100);
  t.equal(gt.dim, 100);
  const b = base.data as Float32Array;
  const q = queries.data as Float32Array;

  const flat = await Index.train('Flat', b, { dim: 128 });
  await flat.add(b);
  const exact = await flat.search(q, k);
  t.equal(kRecallAt(exact.ids, k, gt.data, gt.dim, 100), 1, 'Flat finds the exact 100 neighbours');

  // [spec, min 1-recall@1, min 1-recall@10, min 10-recall@10]; measured with seed 1234:
  //   PQ8x8  0.37 / 0.88 / 0.556      PQ16x8 0.61 / 1.00 / 0.713
  //   (faiss 1.15 AVX2 anchors on the same split, 10-recall@10: PQ8 0.565, PQ16 0.717)
  const bounds: [string, number, number, number][] = [
    ['PQ8x8', 0.3, 0.82, 0.52],
    ['PQ16x8', 0.55, 0.95, 0.68],
  ];
  for (const [spec, r1, r10, tenR10] of bounds) {
    const index = await Index.train(spec, b, { dim: 128, seed: 1234 });
    await index.add(b);
    const res = await index.search(q, k);
    const got = [
      oneRecallAt(res.ids, k, gt.data, gt.dim, 1),
      oneRecallAt(res.ids, k, gt.data, gt.dim, 10),
      kRecallAt(res.ids, k, gt.data, gt.dim, 10),
    ];
    t.ok(got[0] >= r1, `${spec} 1-recall@1 ${got[0]} >= ${r1}`);
    t.ok(got[1] >= r10, `${spec} 1-recall@10 ${got[1]} >= ${r10}`);
    t.ok(got[2] >= tenR10, `${spec} 10-recall@10 ${got[2].toFixed(3)} >= ${tenR10}`);
  }

  // 4-bit fast-scan (measured 10-recall@10 0.622 with seed 1; faiss AVX2 PQ32x4fs: 0.618) and IVF, whose
  // recall grows with nprobe (IVF64,PQ16x8: 0.436 / 0.676 / 0.722 at nprobe 1 / 4 / 16).
  const fs = await Index.train('PQ32x4fs', b, { dim: 128, seed: 1 });
  await fs.add(b);
  const fsRecall = kRecallAt((await fs.search(q, 10)).ids, 10, gt.data, gt.dim, 10);
  t.ok(fsRecall >= 0.58, `PQ32x4fs 10-recall@10 ${fsRecall.toFixed(3)} >= 0.58`);
  const ivf = await Index.train('IVF64,PQ16x8,Refine', b, { dim: 128, seed: 1 });
  await ivf.add(b);
  const ivfRecall = [];
  for (const nprobe of [1, 4, 16]) {
    ivfRecall.push(kRecallAt((await ivf.search(q, 10, { nprobe })).ids, 10, gt.data, gt.dim, 10));
  }
  t.ok(ivfRecall[0] < ivfRecall[1] && ivfRecall[1] <= ivfRecall[2], `IVF recall grows with nprobe: ${ivfRecall.map((r) => r.toFixed(3))}`);
  t.ok(ivfRecall[2] >= 0.68, `IVF64,PQ16x8 nprobe 16: ${ivfRecall[2].toFixed(3)} >= 0.68`);
  const ivfRefined = kRecallAt((await ivf.search(q, 10, { nprobe: 16, refine: 10 })).ids, 10, gt.data, gt.dim, 10);
  t.ok(ivfRefined >= 0.95, `IVF64,PQ16x8 nprobe 16 refine 10: ${ivfRefined.toFixed(3)} >= 0.95 (measured 0.983)`);

  const refined = await Index.train('PQ16x8,Refine', b, { dim: 128, seed: 1234 });
  await refined.add(b);
  const res = await refined.search(q, 10, { refine: 10 });
  const r = kRecallAt(res.ids, 10, gt.data, gt.dim, 10);
  t.ok(r >= 0.97, `PQ16x8 refine 10: 10-recall@10 ${r.toFixed(3)} >= 0.97 (measured 1.000)`);
});
