// Scale-out file steps: codebook with a hash, deterministic shard encoding (every SIMD level, any thread count,
// real SIFT data), merges byte-identical however the vectors were split, search over the mapped merged file,
// and the refusals (other codebook, changed files, repeated shards, colliding ids, bad arguments).
import * as fs from 'node:fs';
import Module from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { Index, readVectors, scaleout, setSimdLevel, simdLevel, supportedSimdLevels } from '../lib/index';
import { DEMO_DATA, sharedDataDir } from './helpers';

const { buildLocal, encodeShard, mergeShards, readCodebook, readShard, trainCodebook, sha256File } = scaleout;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-scaleout-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const SPEC = 'IVF16,PQ16x8';
const BASE_FILE = path.join(DEMO_DATA, 'bigann10k_heldout_base.bvecs');
const bytesOf = (file: string) => fs.readFileSync(file);
const idsFrom = (first: number, n: number) => BigInt64Array.from({ length: n }, (_, i) => BigInt(first + i));

t.test('codebook, deterministic shards, merges and mapped search', async (t) => {
  const { data: base, n, dim } = (await readVectors(BASE_FILE)) as { data: Float32Array; n: number; dim: number };
  const codebookFile = path.join(tmp, 'codebook.qvr');
  const codebook = await trainCodebook(SPEC, base, codebookFile, { dim, seed: 7, iterations: 8 });
  t.equal(codebook.format, 'quiver-codebook');
  t.equal(codebook.version, 1);
  t.equal(codebook.spec, SPEC);
  t.equal(codebook.sha256, await sha256File(codebookFile), 'the manifest holds the SHA-256 of the file');
  t.same(await readCodebook(codebookFile), codebook);
  const manifest = JSON.parse(fs.readFileSync(`${codebookFile}.json`, 'utf8'));
  t.equal(manifest.file, 'codebook.qvr', 'the manifest names the file, not a machine-specific path');

  await t.test('encoding gives the same bytes at every SIMD level and thread count (embedded and shared SIFT)', async (t) => {
    const sets: { name: string; data: Float32Array }[] = [{ name: 'data/bigann10k', data: base }];
    const shared = sharedDataDir();
    const sharedFile = shared && path.join(shared, 'bigann10k', 'bigann10k_base.bvecs');
    if (sharedFile && fs.existsSync(sharedFile)) sets.push({ name: 'shared bigann10k_base', data: (await readVectors(sharedFile)).data as Float32Array });
    else t.comment(`SKIP shared copy: ${sharedFile ?? '../shared/data'} not found`);
    const before = simdLevel();
    t.teardown(() => setSimdLevel(before));
    t.ok(supportedSimdLevels().includes('scalar'));
    for (const set of sets) {
      let want: Buffer | undefined;
      for (const level of supportedSimdLevels()) {
        for (const threads of [1, 0]) {
          setSimdLevel(level);
          const out = path.join(tmp, `det-${level}-${threads}.qvr`);
          const n = set.data.length / dim;
          await encodeShard(codebookFile, set.data, idsFrom(0, n), 0, out, { threads });
          const bytes = bytesOf(out);
          if (!want) want = bytes;
          else t.ok(bytes.equals(want), `${set.name}: ${level}, threads ${threads} gives the same bytes`);
        }
      }
    }
  });

  // One machine: every vector in one shard. Then the same vectors cut in 4, and in uneven pieces (an empty
  // shard, a one-vector shard), listed out of order: all give the same merged file.
  const one = await buildLocal({ codebookFile, vectorsFile: BASE_FILE, shards: 1, workDir: path.join(tmp, 'one'), outFile: path.join(tmp, 'one.qvr') });
  t.equal(one.count, n);
  const four = await buildLocal({ codebookFile, vectorsFile: BASE_FILE, shards: 4, workDir: path.join(tmp, 'four'), outFile: path.join(tmp, 'four.qvr') });
  t.ok(bytesOf(one.path).equals(bytesOf(four.path)), '1-shard and 4-shard builds give byte-identical files');
  t.equal(one.sha256, four.sha256);
  t.same(four.shards.map((s) => s.shardId), [0, 1, 2, 3]);
  t.same(four.shards.map((s) => s.count), [2475, 2475, 2475, 2475]);

  const cuts = [0, 1, 1, 3000, 3001, n];
  const files: string[] = [];
  for (let s = 0; s + 1 < cuts.length; s++) {
    const file = path.join(tmp, `uneven-${s}.qvr`);
    const info = await encodeShard(codebookFile, base.subarray(cuts[s] * dim, cuts[s + 1] * dim), idsFrom(cuts[s], cuts[s + 1] - cuts[s]), s, file, {
      codebookSha256: codebook.sha256,
    });
    t.equal(info.codebook.sha256, codebook.sha256);
    files.push(file);
  }
  const uneven = await mergeShards([...files].reverse(), path.join(tmp, 'uneven.qvr'), { codebook: codebookFile });
  t.ok(bytesOf(uneven.path).equals(bytesOf(one.path)), 'uneven shards listed in any order merge to the same bytes');

  await t.test('the merged file is searched in place (mmap) and answers like one index', async (t) => {
    const { data: queries } = (await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_query.bvecs'))) as { data: Float32Array };
    const whole = Index.fromBuffer(bytesOf(codebookFile));
    await whole.add(base, idsFrom(0, n));
    const mapped = await Index.load(one.path, { mmap: true });
    t.equal(mapped.size, n);
    if (process.platform === 'linux') {
      t.ok(fs.readFileSync('/proc/self/maps', 'utf8').includes(one.path), 'the merged file is memory-mapped');
    }
    for (const nprobe of [1, 4]) {
      const a = await whole.search(queries, 10, { nprobe });
      const b = await mapped.search(queries, 10, { nprobe });
      t.same(b.ids, a.ids, `ids, nprobe ${nprobe}`);
      t.same(b.distances, a.distances, `distances, nprobe ${nprobe}`);
    }
    whole.close();
    mapped.close();
  });

  await t.test('refusals: other codebook, changed files, repeated shards, colliding ids, non-empty codebook', async (t) => {
    const otherFile = path.join(tmp, 'other-codebook.qvr');
    await trainCodebook(SPEC, base.subarray(0, 2000 * dim), otherFile, { dim, seed: 8, iterations: 2 });
    const foreign = path.join(tmp, 'foreign.qvr');
    await encodeShard(otherFile, base.subarray(0, 10 * dim), idsFrom(50000, 10), 9, foreign);
    await t.rejects(mergeShards([files[0], foreign], path.join(tmp, 'x.qvr')), { name: 'RangeError', message: /encoded with codebook/ });
    await t.rejects(mergeShards([foreign], path.join(tmp, 'x.qvr'), { codebook: codebookFile }), { name: 'RangeError', message: /encoded with codebook/ });
    await t.rejects(encodeShard(codebookFile, base.subarray(0, dim), idsFrom(0, 1), 0, path.join(tmp, 'y.qvr'), { codebookSha256: '0'.repeat(64) }), {
      name: 'RangeError',
      message: /codebookSha256/,
    });

    await t.rejects(mergeShards([files[1], files[1]], path.join(tmp, 'x.qvr')), { name: 'RangeError', message: /listed twice/ });
    const clash = path.join(tmp, 'clash.qvr');
    await encodeShard(codebookFile, base.subarray(0, 5 * dim), idsFrom(0, 5), 77, clash);
    await t.rejects(mergeShards([files[0], clash], path.join(tmp, 'x.qvr')), { message: /id 0 is in both/ });

    // A shard changed after encoding no longer matches its manifest.
    const changed = path.join(tmp, 'changed.qvr');
    await encodeShard(codebookFile, base.subarray(0, 5 * dim), idsFrom(90000, 5), 5, changed);
    fs.copyFileSync(files[1], changed);
    await t.rejects(mergeShards([changed], path.join(tmp, 'x.qvr')), { code: 'ERR_QUIVER_MANIFEST', message: /the file changed/ });
    t.ok(bytesOf(files[1]).equals(bytesOf(codebookFile)), 'an empty shard is the codebook itself');
    fs.copyFileSync(files[2], path.join(tmp, 'codebook-changed.qvr'));
    fs.copyFileSync(`${codebookFile}.json`, path.join(tmp, 'codebook-changed.qvr.json'));
    await t.rejects(readCodebook(path.join(tmp, 'codebook-changed.qvr')), { code: 'ERR_QUIVER_MANIFEST' });
    await t.rejects(mergeShards([path.join(tmp, 'no-manifest.qvr')], path.join(tmp, 'x.qvr')), { code: 'ERR_QUIVER_MANIFEST', message: /manifest/ });

    await t.rejects(encodeShard(one.path, base.subarray(0, dim), idsFrom(0, 1), 0, path.join(tmp, 'z.qvr')), { name: 'RangeError', message: /holds 9900 vectors/ });
    await t.rejects(mergeShards([files[0]], files[0]), { name: 'RangeError', message: /outFile/ });
  });

  await t.test('categories travel with their shard', async (t) => {
    const a = path.join(tmp, 'cat-a.qvr'), b = path.join(tmp, 'cat-b.qvr');
    await encodeShard(codebookFile, base.subarray(0, 100 * dim), idsFrom(0, 100), 0, a, { categories: Array.from({ length: 100 }, (_, i) => i % 3) });
    await encodeShard(codebookFile, base.subarray(100 * dim, 200 * dim), idsFrom(100, 100), 1, b);
    const merged = await mergeShards([a, b], path.join(tmp, 'cat.qvr'));
    const index = await Index.load(merged.path);
    const r = await index.search(base.subarray(0, dim), 5, { categories: [1], nprobe: 16 });
    t.ok(Array.from(r.ids).every((id) => id === -1n || (id < 100n && id % 3n === 1n)), 'only shard 0 rows of category 1');
    t.equal((await readShard(a)).count, 100);
    index.close();
  });
});

t.test('bad arguments name the argument', async (t) => {
  const f = path.join(tmp, 'any.qvr');
  const v = new Float32Array(128);
  await t.rejects(encodeShard(1 as never, v, idsFrom(0, 1), 0, f), { name: 'TypeError', message: /^codebookFile:/ });
  await t.rejects(encodeShard(f, [1, 2] as never, idsFrom(0, 1), 0, f + '2'), { name: 'TypeError', message: /^vectors:/ });
  await t.rejects(encodeShard(f, v, [0n] as never, 0, f + '2'), { name: 'TypeError', message: /^ids:/ });
  await t.rejects(encodeShard(f, v, idsFrom(0, 1), -1, f + '2'), { name: 'RangeError', message: /^shardId:/ });
  await t.rejects(encodeShard(f, v, idsFrom(0, 1), 0, ''), { name: 'RangeError', message: /^outFile:/ });
  await t.rejects(encodeShard(f, v, idsFrom(0, 1), 0, f + '2', { thread: 1 } as never), { name: 'TypeError', message: /unknown option "thread"/ });
  await t.rejects(mergeShards('a' as never, f), { name: 'TypeError', message: /^files:/ });
  await t.rejects(mergeShards([], f), { name: 'RangeError', message: /^files:/ });
  await t.rejects(mergeShards([f], f + '2', { verify: 'yes' } as never), { name: 'TypeError', message: /^options.verify:/ });
  await t.rejects(trainCodebook('PQ4', new Float32Array(16 * 256), 3 as never, { dim: 16 }), { name: 'TypeError', message: /^outFile:/ });
  t.throws(() => scaleout.planShards(10, 0), { name: 'RangeError', message: /^shards:/ });
  t.same(scaleout.planShards(10, 4).map((p) => p.count), [3, 3, 2, 2]);
  await t.rejects(buildLocal(undefined as never), { name: 'TypeError', message: /^options:/ });
});

t.test('without bullmq or nats installed, the error names the package to install', async (t) => {
  // Node's resolver is made to miss both packages, as on a machine where they were never installed.
  const mod = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const resolve = mod._resolveFilename;
  mod._resolveFilename = function (request: string, ...rest: unknown[]) {
    if (request === 'bullmq' || request === 'nats') {
      throw Object.assign(new Error(`Cannot find module '${request}'`), { code: 'MODULE_NOT_FOUND' });
    }
    return resolve.call(this, request, ...rest);
  };
  t.teardown(() => {
    mod._resolveFilename = resolve;
  });
  await t.rejects(scaleout.startBuildWorker({ connection: { port: 1 } }), {
    code: 'ERR_QUIVER_MISSING_PACKAGE',
    message: /startBuildWorker .*needs the optional package "bullmq".*npm install bullmq/,
  });
  await t.rejects(scaleout.ShardedSearchClient.connect({ servers: 'nats://127.0.0.1:1', shards: 1, dim: 4 }), {
    code: 'ERR_QUIVER_MISSING_PACKAGE',
    message: /needs the optional package "nats".*npm install nats/,
  });
});
