// Distributed search on NATS against a real nats-server: shards served from mapped shard files answer like one
// index holding everything (batches split to fit a small max_payload), two replicas of a shard share the load
// and one of them can be killed (a child process, SIGKILL) without losing results, a dead shard and a silent
// shard give partial results that name them, and bad arguments name the argument. Skips without nats-server.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { Index, readVectors, scaleout } from '../lib/index';
import { DEMO_DATA, ROOT } from './helpers';
import { findBinary, spawnTs, startNats, type Child } from './scaleout-servers';

const SHARDS = 4;
const K = 10;

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
      await scaleout.encodeShard(codebookFile, base.subarray(p.offset * dim, (p.offset + p.count) * dim), ids, p.shardId, file);
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
