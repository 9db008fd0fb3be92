// Distributed search on NATS against a real nats-server: shards served from mapped shard files answer like one
// index holding everything (batches split to fit a small max_payload), two replicas of a shard share the load
// and one of them can be killed (a child process, SIGKILL) without losing results, a dead shard and a silent
// shard give partial results that name them, filters (allow-list, categories) travel on the wire and give one
// index's filtered results, and bad arguments name the argument. The wire format's own checks run without a
// server; the rest skips without nats-server.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { Index, readVectors, scaleout } from '../lib/index';
import { DEMO_DATA, ROOT } from './helpers';
import { findBinary, spawnTs, startNats, type Child } from './scaleout-servers';
import { decodeRequest, encodeRequest } from '../lib/scaleout/wire';

const SHARDS = 4;
const K = 10;

t.test('wire: requests with filters round-trip, and malformed ones are refused', async (t) => {
  const queries = Float32Array.from({ length: 6 }, (_, i) => i + 0.5);
  const plain = encodeRequest({ dim: 3, nq: 2, k: 4, nprobe: 2, refine: 1, queries });
  t.equal(new DataView(plain.buffer).getUint16(4, true), 1, 'no filter: version 1, which older servers read');
  const p = decodeRequest(plain);
  t.same([p.dim, p.nq, p.k, p.nprobe, p.refine, p.filter, p.categories], [3, 2, 4, 2, 1, undefined, undefined]);
  t.same(p.queries, queries);
  const filter = BigInt64Array.from([5n, -7n, 1n << 62n]);
  const categories = Int32Array.from([0, 9]);
  for (const extra of [{ filter }, { categories }, { filter, categories }, { filter: new BigInt64Array(0) }]) {
    const bytes = encodeRequest({ dim: 3, nq: 2, k: 4, nprobe: 0, refine: 3, queries, ...extra });
    t.equal(new DataView(bytes.buffer).getUint16(4, true), 2, 'a filter: version 2');
    // An unaligned view (as a transport may hand over) decodes the same.
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    for (const view of [bytes, shifted.subarray(1)]) {
      const r = decodeRequest(view);
      t.same(r.queries, queries);
      t.same(r.filter, extra.filter);
      t.same(r.categories, 'categories' in extra ? extra.categories : undefined);
      t.equal(r.refine, 3);
    }
  }
  const good = encodeRequest({ dim: 3, nq: 2, k: 4, nprobe: 0, refine: 1, queries, filter, categories });
  const tamper = (at: number, write: (v: DataView) => void) => {
    const b = new Uint8Array(good);
    write(new DataView(b.buffer));
    return b.subarray(0, at);
  };
  const all = good.length;
  const cases: [Uint8Array, RegExp][] = [
    [tamper(all, (v) => v.setUint16(4, 3, true)), /version 3 is not supported/],
    [tamper(all, (v) => v.setUint16(6, 8, true)), /flags 0x8 are not valid/],
    [tamper(all, (v) => (v.setUint16(6, 5, true), v.setUint32(36, 0, true))), /per-category results need a non-empty category list/],
    [tamper(all, (v) => v.setUint16(6, 0, true)), /flags 0x0 are not valid/],
    [tamper(all, (v) => v.setUint16(6, 2, true)), /3 filter ids without the filter flag/],
    [tamper(all, (v) => v.setUint16(6, 1, true)), /2 categories without the categories flag/],
    [tamper(all, (v) => v.setUint32(32, 0xffffffff, true)), /bytes, expected/],
    [tamper(all, (v) => v.setUint32(36, 1, true)), /bytes, expected/],
    [tamper(all - 4, () => {}), /bytes, expected/],
    [tamper(36, () => {}), /shorter than the 40-byte version-2 header/],
    [tamper(all, (v) => v.setInt32(40 + 24, -3, true)), /category -3 at 0 is negative/],
  ];
  for (const [bytes, message] of cases) t.throws(() => decodeRequest(bytes), { name: 'Error', message }, String(message));
  t.throws(() => decodeRequest(tamper(all, (v) => v.setUint16(6, 8, true))), { code: 'ERR_QUIVER_WIRE' }, 'a WireError');
  // Per category: the flag travels with the list and needs it non-empty.
  const grouped = decodeRequest(encodeRequest({ dim: 3, nq: 2, k: 4, nprobe: 0, refine: 1, queries, categories, perCategory: true }));
  t.same([grouped.perCategory, grouped.categories], [true, categories], 'per-category requests round-trip');
  t.equal(decodeRequest(good).perCategory, undefined, 'and others say nothing');
  t.throws(() => decodeRequest(encodeRequest({ dim: 3, nq: 2, k: 4, nprobe: 0, refine: 1, queries, categories: new Int32Array(0), perCategory: true })), {
    message: /per-category results need a non-empty category list/,
  });
});

if (!findBinary('nats-server')) {
  t.comment('SKIP: nats-server is not installed (Debian: apt-get install nats-server); the NATS tests need a real server');
  t.pass('skipped: no nats-server');
} else {
  t.test('distributed search on NATS', async (t) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-nats-'));
    t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
    // A small max_payload (32 KiB) makes the client split a 100-query batch of 128-d vectors (51 KiB).
    const nats = await startNats(32 * 1024);
    t.teardown(() => nats?.stop());
    const url = nats!.url;

    const { data: base, n, dim } = (await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_base.bvecs'))) as { data: Float32Array; n: number; dim: number };
    const { data: queries } = (await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_query.bvecs'))) as { data: Float32Array };
    const codebookFile = path.join(tmp, 'codebook.qvr');
    await scaleout.trainCodebook('IVF16,PQ16x8', base.subarray(0, 4000 * dim), codebookFile, { dim, seed: 5, iterations: 4 });
    const shardFiles: string[] = [];
    for (const p of scaleout.planShards(n, SHARDS)) {
      const file = path.join(tmp, scaleout.shardFileName(p.shardId));
      const ids = BigInt64Array.from({ length: p.count }, (_, i) => BigInt(p.offset + i));
      const categories = Int32Array.from({ length: p.count }, (_, i) => (p.offset + i) % 7);
      await scaleout.encodeShard(codebookFile, base.subarray(p.offset * dim, (p.offset + p.count) * dim), ids, p.shardId, file, { categories });
      shardFiles.push(file);
    }
    // The reference: one index holding everything (the merged file), and one without shard 0 for partial results.
    const whole = await Index.load((await scaleout.mergeShards(shardFiles, path.join(tmp, 'whole.qvr'))).path, { mmap: true });
    const rest = await Index.load((await scaleout.mergeShards(shardFiles.slice(1), path.join(tmp, 'rest.qvr'))).path, { mmap: true });
    t.teardown(() => {
      whole.close();
      rest.close();
    });

    // Shard 0 runs as two replicas in child processes (so one can be killed); shards 1-3 in this process.
    const replicas: Child[] = [0, 1].map(() =>
      spawnTs(path.join(ROOT, 'test', 'fixtures', 'scaleout', 'shard-server.ts'), {
        QUIVER_TEST_NATS_URL: url,
        QUIVER_TEST_SHARD_ID: '0',
        QUIVER_TEST_SHARD_FILE: shardFiles[0],
      }),
    );
    t.teardown(() => Promise.all(replicas.map((r) => r.kill())));
    const local = await Promise.all([1, 2, 3].map((shardId) => scaleout.serveShard({ servers: url, shardId, index: shardFiles[shardId], threads: 1 })));
    t.teardown(() => Promise.all(local.map((s) => s.close())));
    await Promise.all(replicas.map((r) => r.next<{ event: string }>((m) => m.event === 'ready', 60_000)));

    const client = await scaleout.ShardedSearchClient.connect({ servers: url, shards: SHARDS, dim, deadlineMs: 3000, attempts: 3 });
    t.teardown(() => client.close());

    await t.test('sharded results equal one index holding everything', async (t) => {
      for (const nprobe of [1, 4]) {
        const want = await whole.search(queries, K, { nprobe });
        const got = await client.search(queries, K, { nprobe });
        t.equal(got.partial, false);
        t.same(got.missingShards, []);
        t.equal(got.metric, 'l2');
        t.same(got.ids, want.ids, `ids, nprobe ${nprobe}`);
        t.same(got.distances, want.distances, `distances, nprobe ${nprobe}`);
      }
      // k beyond what a list holds pads like one index does.
      const few = await client.search(queries.subarray(0, 2 * dim), 700, { nprobe: 1 });
      const fewWant = await whole.search(queries.subarray(0, 2 * dim), 700, { nprobe: 1 });
      t.same(few.ids, fewWant.ids, 'padding with -1n matches');
    });

    await t.test('filtered sharded results equal the filtered search of one index', async (t) => {
      // Every third id plus ids no shard holds; a filter of 3000 ids (24 KB) also makes the 32 KiB max_payload
      // split the batch into many more chunks, each repeating it.
      const filter = BigInt64Array.from({ length: 3000 }, (_, i) => BigInt(i * 3 + 1));
      filter[7] = 123456789n;
      const cases: [string, { filter?: BigInt64Array | bigint[]; categories?: number[] | Int32Array }][] = [
        ['allow-list', { filter }],
        ['allow-list as bigint[]', { filter: Array.from(filter.subarray(0, 500)) }],
        ['categories', { categories: [1, 4] }],
        ['allow-list and categories', { filter, categories: Int32Array.from([0, 2, 6]) }],
        ['empty allow-list', { filter: new BigInt64Array(0) }],
        ['unknown category', { categories: [99] }],
      ];
      for (const [name, options] of cases) {
        for (const nprobe of [1, 4]) {
          const want = await whole.search(queries, K, { nprobe, ...options });
          const got = await client.search(queries, K, { nprobe, ...options });
          t.equal(got.partial, false, `${name}, nprobe ${nprobe}: complete`);
          t.same(got.ids, want.ids, `${name}, nprobe ${nprobe}: ids`);
          t.same(got.distances, want.distances, `${name}, nprobe ${nprobe}: distances`);
        }
      }
      // The filter really filters: every id returned is allowed and of an allowed category.
      const allowed = new Set(Array.from(filter));
      const got = await client.search(queries, K, { nprobe: 4, filter, categories: [0, 2, 6] });
      t.ok(
        Array.from(got.ids).every((id) => id === -1n || (allowed.has(id) && [0, 2, 6].includes(Number(id) % 7))),
        'only allowed ids of allowed categories',
      );
      t.ok(Array.from(got.ids).some((id) => id !== -1n), 'and some are found');
    });

    await t.test('per-category sharded results equal the per-category search of one index', async (t) => {
      const cases: [string, Parameters<typeof client.search>[2]][] = [
        ['k per category', { categories: [3, 0, 5], perCategory: true }],
        ['4 per category, with an allow-list', { categories: Int32Array.from([1, 6]), perCategory: 4, filter: BigInt64Array.from({ length: 2000 }, (_, i) => BigInt(i * 2)) }],
        ['a category no row has', { categories: [2, 99], perCategory: true }],
      ];
      for (const [name, options] of cases) {
        for (const nprobe of [1, 4]) {
          const want = await whole.search(queries, K, { nprobe, ...options });
          const got = await client.search(queries, K, { nprobe, ...options });
          t.equal(got.partial, false, `${name}, nprobe ${nprobe}: complete`);
          t.equal(got.k, want.k, `${name}: k per group`);
          t.same(got.groups, want.groups, `${name}: groups`);
          t.equal(got.ids.length, want.ids.length, `${name}: nq × groups × k results`);
          t.same(got.ids, want.ids, `${name}, nprobe ${nprobe}: ids`);
          t.same(got.distances, want.distances, `${name}, nprobe ${nprobe}: distances`);
        }
      }
      // Each group holds its own category only.
      const got = await client.search(queries, K, { nprobe: 4, categories: [3, 0, 5], perCategory: true });
      const groupOf = (i: number) => [3, 0, 5][Math.floor(i / K) % 3];
      t.ok(Array.from(got.ids).every((id, i) => id === -1n || Number(id) % 7 === groupOf(i)), 'every group holds its category');
      t.ok(Array.from(got.ids).some((id) => id !== -1n), 'and some are found');
      await t.rejects(client.search(queries, K, { perCategory: true }), { name: 'RangeError', message: /^options.perCategory: needs a non-empty/ });
      await t.rejects(client.search(queries, K, { categories: [1], perCategory: 'yes' as never }), { name: 'TypeError', message: /^options.perCategory:/ });
      await t.rejects(client.search(queries, K, { categories: [1], perCategory: 0 }), { name: 'RangeError', message: /^options.perCategory:/ });
    });

    await t.test('two replicas share the load; killing one loses nothing', async (t) => {
      for (let i = 0; i < 20; i++) await client.search(queries.subarray(i * dim, (i + 1) * dim), K);
      const counts = await Promise.all(
        replicas.map(async (r) => {
          r.send({ cmd: 'served' });
          return (await r.next<{ event: string; served: number }>((m) => m.event === 'served')).served;
        }),
      );
      t.ok(counts.every((c) => c > 0), `both replicas answered requests (${counts.join(' and ')})`);
      await replicas[0].kill('SIGKILL');
      const want = await whole.search(queries, K, { nprobe: 2 });
      for (let i = 0; i < 5; i++) {
        const got = await client.search(queries, K, { nprobe: 2 });
        t.equal(got.partial, false, `search ${i} after the kill is complete`);
        t.same(got.ids, want.ids, `search ${i} after the kill: same ids`);
      }
    });

    await t.test('a dead shard and a silent shard give partial results that name them', async (t) => {
      await replicas[1].kill('SIGKILL'); // shard 0 has no replica left
      const want = await rest.search(queries, K, { nprobe: 2 });
      const started = Date.now();
      const got = await client.search(queries, K, { nprobe: 2, deadlineMs: 2000 });
      t.equal(got.partial, true);
      t.same(got.missingShards, [0]);
      t.same(got.ids, want.ids, 'the other shards still answer, merged as one index of them would');
      t.same(got.distances, want.distances);
      t.ok(Date.now() - started < 1500, 'a shard with no responders is given up without waiting out the deadline');

      // Shard 3 replaced by a subscriber that never answers: the client gives up at the deadline.
      await local[2].close();
      const { connect } = await import('nats');
      const mute = await connect({ servers: url });
      t.teardown(() => mute.close());
      mute.subscribe('quiver.search.3', { queue: 'quiver.search.3', callback: () => {} });
      await mute.flush();
      const t0 = Date.now();
      const silent = await client.search(queries.subarray(0, dim), K, { deadlineMs: 400 });
      const waited = Date.now() - t0;
      t.same(silent.missingShards, [0, 3]);
      t.ok(waited >= 350 && waited < 2000, `the silent shard was waited for until the deadline (${waited} ms)`);
    });

    await t.test('bad arguments name the argument', async (t) => {
      await t.rejects(client.search([1, 2] as never, K), { name: 'TypeError', message: /^queries:/ });
      await t.rejects(client.search(new Float32Array(dim + 1), K), { name: 'RangeError', message: /^queries:/ });
      await t.rejects(client.search(queries, 0), { name: 'RangeError', message: /^k:/ });
      await t.rejects(client.search(queries, K, { nprob: 2 } as never), { name: 'TypeError', message: /unknown option "nprob"/ });
      await t.rejects(client.search(queries, K, { filter: [1, 2] as never }), { name: 'TypeError', message: /^options.filter: expected bigint ids/ });
      await t.rejects(client.search(queries, K, { filter: new Float64Array(2) as never }), { name: 'TypeError', message: /^options.filter:/ });
      await t.rejects(client.search(queries, K, { filter: [1n << 64n] }), { name: 'RangeError', message: /^options.filter:.*64-bit/ });
      await t.rejects(client.search(queries, K, { categories: [-1] }), { name: 'RangeError', message: /^options.categories:/ });
      await t.rejects(client.search(queries, K, { categories: 'a' as never }), { name: 'TypeError', message: /^options.categories:/ });
      // A filter that cannot fit the server's max_payload (32 KiB) with even one query.
      await t.rejects(client.search(queries, K, { filter: new BigInt64Array(5000) }), { name: 'RangeError', message: /^options.filter: 5000 ids do not fit/ });
      await t.rejects(scaleout.ShardedSearchClient.connect({ servers: url, shards: 0, dim }), { name: 'RangeError', message: /^options.shards:/ });
      await t.rejects(scaleout.ShardedSearchClient.connect({ servers: url, shards: [1, 1], dim }), { name: 'RangeError', message: /listed twice/ });
      await t.rejects(scaleout.ShardedSearchClient.connect({ servers: [], shards: 1, dim }), { name: 'TypeError', message: /^options.servers:/ });
      await t.rejects(scaleout.ShardedSearchClient.connect({ servers: url, shards: 1, dim, subject: 'a.*' }), { name: 'RangeError', message: /^options.subject:/ });
      await t.rejects(scaleout.serveShard({ servers: url, shardId: -1, index: shardFiles[0] }), { name: 'RangeError', message: /^options.shardId:/ });
      await t.rejects(scaleout.serveShard({ servers: url, shardId: 0, index: 5 as never }), { name: 'TypeError', message: /^options.index:/ });
      // A shard asked with the wrong dimension answers with an error, which is an error, not a partial result.
      const wrong = await scaleout.ShardedSearchClient.connect({ servers: url, shards: [1], dim: 64 });
      t.teardown(() => wrong.close());
      await t.rejects(wrong.search(new Float32Array(64), 3), { code: 'ERR_QUIVER_SHARD', message: /dimension 64/ });
    });
  });
}
