// The public API end to end on seeded data: exact results against brute force, sync = async, ids, padding,
// metrics, TypedArray views, codecs, progress, close, concurrency.
import t from 'tap';

import { Codec, Index, simdLevel, supportedSimdLevels } from '../lib/index';
import { bruteForce, randomFloats } from './helpers';

const dim = 24;
const n = 600;
const nq = 9;
const base = randomFloats(n * dim, 1);
const queries = randomFloats(nq * dim, 2);

t.test('Flat search equals brute force for l2, ip and cosine; sync and async agree', async (t) => {
  for (const metric of ['l2', 'ip', 'cosine'] as const) {
    const index = await Index.train('Flat', base, { dim, metric });
    await index.add(base);
    t.equal(index.size, n);
    t.equal(index.metric, metric);
    t.equal(index.codeSize, dim * 4);
    const k = 7;
    const got = await index.search(queries, k);
    const sync = index.searchSync(queries, k);
    t.same(Array.from(sync.ids), Array.from(got.ids), `${metric}: sync = async ids`);
    const ref = bruteForce(base, queries, dim, k, metric);
    for (let q = 0; q < nq; q++) {
      t.same(
        Array.from(got.ids.subarray(q * k, (q + 1) * k), Number),
        ref.ids[q],
        `${metric}: query ${q} ids`,
      );
      for (let i = 0; i < k; i++) {
        t.ok(Math.abs(got.distances[q * k + i] - ref.scores[q][i]) < 1e-3, `${metric}: query ${q} distance ${i}`);
      }
    }
  }
});

t.test('custom bigint ids come back; k larger than the index pads with -1n', async (t) => {
  const index = Index.trainSync('Flat', base, { dim });
  const ids = new BigInt64Array(5).map((_, i) => 10n ** 15n + BigInt(i) * 7n);
  index.addSync(base.subarray(0, 5 * dim), ids);
  const { ids: got, distances } = index.searchSync(base.subarray(0, dim), 8);
  t.equal(got[0], ids[0], 'self match first');
  t.same(new Set(Array.from(got.subarray(0, 5))), new Set(Array.from(ids)));
  t.same(Array.from(got.subarray(5)), [-1n, -1n, -1n]);
  t.equal(distances[7], Infinity);
  t.equal(distances[0], 0);
  // default ids continue after the largest id so far
  index.addSync(base.subarray(5 * dim, 6 * dim));
  t.equal(index.searchSync(base.subarray(5 * dim, 6 * dim), 1).ids[0], ids[4] + 1n);
});

t.test('Float32Array views at any byteOffset are honoured', async (t) => {
  const index = Index.trainSync('Flat', base, { dim });
  index.addSync(base);
  const padded = new Float32Array(dim * 3 + 1);
  padded.set(base.subarray(42 * dim, 43 * dim), 1 + dim);
  const view = new Float32Array(padded.buffer, (1 + dim) * 4, dim);
  t.equal(index.searchSync(view, 1).ids[0], 42n);
  const sharedView = new Float32Array(new SharedArrayBuffer(dim * 4 * 2), dim * 4, dim);
  sharedView.set(base.subarray(7 * dim, 8 * dim));
  t.equal((await index.search(sharedView, 1)).ids[0], 7n);
});

t.test('PQ index: training reports progress, search, refine, spec and code size', async (t) => {
  const reports: { phase: string; stage: number; iteration: number; error: number }[] = [];
  const index = await Index.train('PQ6x8,Refine', base, {
    dim,
    seed: 5,
    iterations: 8,
    onProgress: (p) => reports.push(p),
  });
  t.equal(index.spec, 'PQ6x8,Refine');
  t.equal(index.codeSize, 6);
  t.ok(reports.length >= 6, `got ${reports.length} progress reports`);
  t.same(new Set(reports.map((r) => r.phase)), new Set(['pq']));
  t.same(new Set(reports.map((r) => r.stage)), new Set([0, 1, 2, 3, 4, 5]));
  t.ok(reports.every((r) => r.error >= 0 && r.iteration >= 1));
  await index.add(base);
  const exact = await index.search(queries, 5, { refine: 30 });
  const ref = bruteForce(base, queries, dim, 5);
  let hits = 0;
  for (let q = 0; q < nq; q++) for (let i = 0; i < 5; i++) hits += ref.ids[q].includes(Number(exact.ids[q * 5 + i])) ? 1 : 0;
  t.ok(hits >= nq * 5 * 0.9, `refined recall ${hits}/${nq * 5}`);
  const again = await Index.train('PQ6x8,Refine', base, { dim, seed: 5, iterations: 8 });
  await again.add(base);
  t.same(Array.from((await again.search(queries, 5)).ids), Array.from((await index.search(queries, 5)).ids), 'same seed, same results');
});

t.test('a throwing onProgress aborts training with its own error (async and sync)', async (t) => {
  const boom = new Error('stop here');
  await t.rejects(Index.train('PQ4x8', base, { dim, onProgress: () => { throw boom; } }), boom);
  t.throws(() => Index.trainSync('PQ4x8', base, { dim, onProgress: () => { throw boom; } }), boom);
});

t.test('Codec: encode/decode round trip, sizes, async variants, uneven sub-spaces', async (t) => {
  const codec = await Codec.train('PQ5x8', base, { dim, seed: 3 });
  t.equal(codec.codeSize, 5);
  t.equal(codec.dim, dim);
  t.equal(codec.spec, 'PQ5x8');
  const codes = codec.encode(base);
  t.equal(codes.length, n * 5);
  t.same(await codec.encodeAsync(base), codes);
  const decoded = codec.decode(codes);
  t.equal(decoded.length, n * dim);
  t.same(await codec.decodeAsync(codes), decoded);
  t.same(codec.encode(decoded), codes, 'decoded vectors encode to the same codes');
  let err = 0;
  let energy = 0;
  for (let i = 0; i < base.length; i++) {
    err += (base[i] - decoded[i]) ** 2;
    energy += base[i] ** 2;
  }
  t.ok(err < 0.8 * energy, `relative MSE ${(err / energy).toFixed(3)}`);
  const packed = await Codec.train('PQ5x4', base, { dim });
  t.equal(packed.codeSize, 3, '5 × 4 bits = 20 bits = 3 bytes');
  t.equal(packed.decode(packed.encode(base)).length, n * dim);
});

t.test('close: later calls fail with ERR_QUIVER_CLOSED; a running search still completes', async (t) => {
  const index = Index.trainSync('Flat', base, { dim });
  index.addSync(base);
  const running = index.search(queries, 3);
  index.close();
  t.equal(index.closed, true);
  t.equal((await running).ids.length, nq * 3);
  t.throws(() => index.searchSync(queries, 3), { code: 'ERR_QUIVER_CLOSED' });
  await t.rejects(async () => index.search(queries, 3), { code: 'ERR_QUIVER_CLOSED' });
  t.throws(() => index.addSync(base), { code: 'ERR_QUIVER_CLOSED' });
  index.close(); // closing twice is harmless
});

t.test('many concurrent async searches and adds on one index stay consistent', async (t) => {
  const index = Index.trainSync('Flat', base, { dim });
  index.addSync(base);
  const expected = index.searchSync(queries, 4);
  const work: Promise<unknown>[] = [];
  for (let i = 0; i < 40; i++) work.push(index.search(queries, 4, { threads: 1 }));
  work.push(index.add(randomFloats(10 * dim, 99).map((x) => x + 50)));
  const results = (await Promise.all(work)).filter((r): r is { ids: BigInt64Array } => r !== undefined);
  t.equal(results.length, 40);
  for (const r of results) t.same(Array.from(r.ids), Array.from(expected.ids));
  t.equal(index.size, n + 10);
});

t.test('SIMD level is reported', async (t) => {
  t.ok(supportedSimdLevels().includes('scalar'));
  t.ok(supportedSimdLevels().includes(simdLevel()));
});
