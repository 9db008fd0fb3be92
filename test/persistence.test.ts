// Save/load (file, mmap, Buffer), fixture files of every index type, corrupted files, mutation, filters,
// categories, and sharing an index with worker_threads.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';

import { Codec, Index } from '../lib/index';
import { ROOT, bruteForce, randomFloats } from './helpers';

const FIXTURES = path.join(ROOT, 'test', 'fixtures');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-persist-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const dim = 16;
const base = randomFloats(400 * dim, 31);
const queries = randomFloats(6 * dim, 32);

t.test('fixture files of every index type load (read and mmap) and answer as when written', async (t) => {
  const expected = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8'));
  const q = Float32Array.from(expected.queries as number[]);
  for (const [name, want] of Object.entries<any>(expected.indexes)) {
    for (const mmap of [false, true]) {
      const index = await Index.load(path.join(FIXTURES, `${name}.qvr`), { mmap });
      t.equal(index.spec, want.spec, name);
      t.equal(index.metric, want.metric, name);
      t.equal(index.size, want.size, name);
      const r = await index.search(q, expected.k, { refine: want.spec.includes('Refine') ? 4 : 1 });
      t.same(Array.from(r.ids, String), want.ids, `${name} (mmap ${mmap}) ids`);
      // Ids must match exactly; distances to within float rounding, since the look-up-table arithmetic may
      // change in its last bit between versions (PQ tables are now computed with lanes over centroids).
      const off = Array.from(r.distances).filter(
        (d, i) => !(Math.abs(d - want.distances[i]) <= 1e-6 * Math.abs(want.distances[i]) + 1e-6),
      );
      t.same(off, [], `${name} distances`);
      t.notOk(index.has(1003n), 'removed ids stay removed');
      t.ok(index.has(1009n));
    }
  }
  const codec = await Codec.load(path.join(FIXTURES, 'pq8x8.qvc'));
  t.same(Array.from(codec.encode(q)), expected.codec.codes, 'codec fixture encodes as before');
});

t.test('corrupted files give ERR_QUIVER_CORRUPT, never a crash', async (t) => {
  const cases: [string, RegExp][] = [
    ['corrupt-truncated.qvr', /truncated|claims|remain/],
    ['corrupt-bitflip.qvr', /checksum/],
    ['corrupt-magic.qvr', /not a quiver index file/],
    ['corrupt-version.qvr', /format version 99/],
  ];
  for (const [file, message] of cases) {
    await t.rejects(Index.load(path.join(FIXTURES, file)), { code: 'ERR_QUIVER_CORRUPT', message }, file);
    t.throws(() => Index.loadSync(path.join(FIXTURES, file), { mmap: true }), { code: 'ERR_QUIVER_CORRUPT' }, file);
    t.throws(() => Index.fromBuffer(fs.readFileSync(path.join(FIXTURES, file))), { code: 'ERR_QUIVER_CORRUPT' }, file);
  }
  t.throws(() => Codec.fromBuffer(fs.readFileSync(path.join(FIXTURES, 'pq8x8-l2.qvr'))), { code: 'ERR_QUIVER_CORRUPT' });
  await t.rejects(Index.load(path.join(tmp, 'missing.qvr')), { code: 'ERR_QUIVER_IO' });
  // Random garbage of many sizes.
  for (let size = 0; size < 300; size += 7) {
    t.throws(() => Index.fromBuffer(Buffer.from(randomFloats(size, size).buffer)), { code: 'ERR_QUIVER_CORRUPT' });
  }
});

t.test('save is atomic and round-trips; toBuffer/fromBuffer too; mutation after load', async (t) => {
  const index = await Index.train('PQ4x8,Refine', base, { dim, seed: 2, iterations: 4 });
  await index.add(base, null, { categories: Array.from({ length: 400 }, (_, i) => i % 3) });
  const file = path.join(tmp, 'a.qvr');
  await index.save(file);
  index.saveSync(file); // overwrite
  t.same(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-')), [], 'no temporary files left');
  const want = await index.search(queries, 4, { refine: 5, categories: [1] });
  for (const loaded of [await Index.load(file), Index.loadSync(file, { mmap: true }), Index.fromBuffer(index.toBuffer())]) {
    const got = await loaded.search(queries, 4, { refine: 5, categories: [1] });
    t.same(got.ids, want.ids);
    await loaded.add(randomFloats(dim * 2, 9));
    t.equal(loaded.size, 402);
    t.ok(loaded.has(401n) && loaded.has(400n), 'default ids continue after the largest');
    t.equal(await loaded.remove([0n, 1n, 999n]), 2);
    t.equal(loaded.size, 400);
  }
  // The saved file itself is untouched by the mutations of the mapped copy.
  t.same((await (await Index.load(file)).search(queries, 4, { refine: 5, categories: [1] })).ids, want.ids);
  const codec = await Codec.train('PQ4x8', base, { dim, iterations: 3 });
  await codec.save(path.join(tmp, 'c.qvc'));
  t.same(Codec.loadSync(path.join(tmp, 'c.qvc')).encode(base), codec.encode(base));
  t.same(Codec.fromBuffer(codec.toBuffer()).decode(codec.encode(base)), codec.decode(codec.encode(base)));
});

t.test('has, reconstruct, remove, duplicate ids and upsert', async (t) => {
  const index = Index.trainSync('Flat', base, { dim });
  const ids = BigInt64Array.from({ length: 10 }, (_, i) => 5000n + BigInt(i));
  index.addSync(base.subarray(0, 10 * dim), ids);
  t.ok(index.has(5003n));
  t.notOk(index.has(3n));
  t.same(index.reconstruct(5003n), base.subarray(3 * dim, 4 * dim));
  t.equal(index.reconstruct(7n), undefined);
  t.throws(() => index.addSync(base.subarray(0, dim), BigInt64Array.of(5003n)), { name: 'RangeError', message: /ids: id 5003 is already in the index; pass \{ upsert: true \}/ });
  index.addSync(base.subarray(20 * dim, 21 * dim), BigInt64Array.of(5003n), { upsert: true });
  t.same(index.reconstruct(5003n), base.subarray(20 * dim, 21 * dim));
  t.equal(index.size, 10);
  t.equal(index.removeSync(BigInt64Array.of(5003n, 5003n, 1n)), 1);
  t.equal(index.size, 9);
  t.throws(() => index.has(3 as never), TypeError);
  await t.rejects(index.remove('x' as never), TypeError);
  t.throws(() => index.removeSync('x' as never), TypeError);
  t.throws(() => index.addSync(base.subarray(0, dim), null, { upsert: true }), /upsert: needs ids/);
  const pq = Index.trainSync('PQ4x8', base, { dim, iterations: 3 });
  pq.addSync(base);
  const approx = pq.reconstruct(7n)!;
  let err = 0;
  for (let j = 0; j < dim; j++) err += (approx[j] - base[7 * dim + j]) ** 2;
  t.ok(err > 0 && err < 1, `PQ reconstruct is approximate (squared error ${err.toFixed(3)})`);
});

t.test('filters: allow-list, categories and perCategory equal brute force over the allowed rows', async (t) => {
  const index = Index.trainSync('Flat', base, { dim });
  const categories = Int32Array.from({ length: 400 }, (_, i) => i % 4);
  index.addSync(base, null, { categories });
  const k = 5;
  const allowed = Array.from({ length: 400 }, (_, i) => i).filter((i) => i % 5 === 0);
  const filterResult = index.searchSync(queries, k, { filter: allowed.map(BigInt) });
  const subset = (rows: number[]) => {
    const data = new Float32Array(rows.length * dim);
    rows.forEach((r, i) => data.set(base.subarray(r * dim, (r + 1) * dim), i * dim));
    return bruteForce(data, queries, dim, k).ids.map((list) => list.map((i) => rows[i]));
  };
  t.same(Array.from(filterResult.ids, Number), subset(allowed).flat());
  const inCats = Array.from({ length: 400 }, (_, i) => i).filter((i) => i % 4 === 1 || i % 4 === 3);
  t.same(Array.from(index.searchSync(queries, k, { categories: [1, 3] }).ids, Number), subset(inCats).flat());
  const per = index.searchSync(queries, k, { categories: [3, 0], perCategory: 2 });
  t.equal(per.ids.length, queries.length / dim * 2 * 2);
  t.same(Array.from(per.groups!), [3, 0]);
  t.equal(per.k, 2);
  const cat3 = subset(Array.from({ length: 400 }, (_, i) => i).filter((i) => i % 4 === 3));
  const cat0 = subset(Array.from({ length: 400 }, (_, i) => i).filter((i) => i % 4 === 0));
  for (let q = 0; q < queries.length / dim; q++) {
    t.same(Array.from(per.ids.subarray(q * 4, q * 4 + 2), Number), cat3[q].slice(0, 2));
    t.same(Array.from(per.ids.subarray(q * 4 + 2, q * 4 + 4), Number), cat0[q].slice(0, 2));
  }
  t.same(Array.from(index.searchSync(queries.subarray(0, dim), 3, { filter: [] }).ids), [-1n, -1n, -1n], 'empty allow-list');
  t.throws(() => index.searchSync(queries, k, { perCategory: true }), /perCategory: needs a non-empty options.categories/);
  t.throws(() => index.searchSync(queries, k, { categories: [-1] }), /options.categories: expected integers from 0/);
  t.throws(() => index.searchSync(queries, k, { filter: [1] as never }), /options.filter: expected bigint ids/);
  t.throws(() => index.searchSync(queries, k, { filter: [1n << 63n] }), { name: 'RangeError', message: /^options.filter: id .* at 0 is not a 64-bit signed integer/ });
  t.throws(() => index.removeSync([-(1n << 63n) - 1n]), { name: 'RangeError', message: /^ids: id .* at 0 is not a 64-bit signed integer/ });
  t.throws(() => index.addSync(base.subarray(0, dim), null, { categories: [1, 2] }), /options.categories: expected 1 categories/);
});

t.test('an index shared with worker_threads through toBuffer and through an mmap-ed file', async (t) => {
  const index = await Index.train('PQ4x8', base, { dim, iterations: 3 });
  await index.add(base);
  const file = path.join(tmp, 'shared.qvr');
  await index.save(file);
  const want = Array.from((await index.search(queries, 3)).ids, String);
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Index } = require(${JSON.stringify(path.join(ROOT, 'dist/cjs/index.js'))});
    (async () => {
      const index = workerData.bytes ? Index.fromBuffer(workerData.bytes) : await Index.load(workerData.file, { mmap: true });
      const r = await index.search(workerData.queries, 3);
      parentPort.postMessage(Array.from(r.ids, String));
    })().catch((e) => parentPort.postMessage(String(e)));`;
  const bytes = index.toBuffer();
  const runs = [{ bytes }, { file }, { bytes }, { file }].map(
    (data) =>
      new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { ...data, queries } });
        w.once('message', resolve);
        w.once('error', reject);
      }),
  );
  for (const got of await Promise.all(runs)) t.same(got, want);
});

t.test('bad arguments to the persistence API', async (t) => {
  const index = Index.trainSync('Flat', base, { dim });
  t.throws(() => index.saveSync(42 as never), { name: 'TypeError', message: /path: expected a string/ });
  t.throws(() => index.saveSync(''), { name: 'RangeError', message: /path: expected a non-empty/ });
  await t.rejects(index.save(path.join(tmp, 'no-such-dir', 'x.qvr')), { code: 'ERR_QUIVER_IO' });
  t.throws(() => Index.fromBuffer('abc' as never), { name: 'TypeError', message: /buffer: expected a Buffer or Uint8Array/ });
  t.throws(() => Index.loadSync(path.join(FIXTURES, 'flat-l2.qvr'), { mmap: 'yes' } as never), /options.mmap: expected a boolean/);
  t.throws(() => Index.loadSync(path.join(FIXTURES, 'flat-l2.qvr'), { lazy: true } as never), /unknown option "lazy"/);
  index.close();
  t.throws(() => index.toBuffer(), { code: 'ERR_QUIVER_CLOSED' });
  t.throws(() => index.has(1n), { code: 'ERR_QUIVER_CLOSED' });
});
