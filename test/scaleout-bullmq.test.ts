// Distributed build on BullMQ against a real redis-server: a 1-shard and a 4-shard flow give the file of the
// one-machine build byte for byte, progress is reported, and a worker killed mid-job (a child process, SIGKILL)
// has its job taken over by another worker, with the same final bytes. Skips when redis-server is absent.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { readVectors, scaleout } from '../lib/index';
import { DEMO_DATA, ROOT } from './helpers';
import { findBinary, spawnTs, startRedis } from './scaleout-servers';

const LOCK_MS = 1500; // short, so that a dead worker's job is recovered within seconds
const STALLED_MS = 500;

if (!findBinary('redis-server')) {
  t.comment('SKIP: redis-server is not installed (Debian: apt-get install redis-server); the BullMQ tests need a real Redis');
  t.pass('skipped: no redis-server');
} else {
  t.test('distributed build on BullMQ', async (t) => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-bullmq-'));
    t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
    const redis = await startRedis();
    t.teardown(() => redis?.stop());
    const connection = { host: '127.0.0.1', port: redis!.port };

    const vectorsFile = path.join(DEMO_DATA, 'bigann10k_heldout_base.bvecs');
    const { data, dim } = await readVectors(vectorsFile, { count: 3000 });
    const codebookFile = path.join(tmp, 'codebook.qvr');
    await scaleout.trainCodebook('IVF16,PQ16x8', data as Float32Array, codebookFile, { dim, seed: 3, iterations: 4 });
    const local = await scaleout.buildLocal({ codebookFile, vectorsFile, workDir: path.join(tmp, 'local'), outFile: path.join(tmp, 'local.qvr') });
    const want = fs.readFileSync(local.path);

    await t.test('1-shard and 4-shard flows give the one-machine bytes, with progress', async (t) => {
      const worker = await scaleout.startBuildWorker({ connection, queueName: 'flows', concurrency: 2, threads: 1 });
      t.teardown(() => worker.close());
      for (const shards of [1, 4]) {
        const progress: scaleout.BuildProgress[] = [];
        const result = await scaleout.buildDistributed({
          connection,
          queueName: 'flows',
          codebookFile,
          vectorsFile,
          shards,
          workDir: path.join(tmp, `work-${shards}`),
          outFile: path.join(tmp, `flow-${shards}.qvr`),
          buildId: `flow-${shards}`,
          onProgress: (p) => progress.push(p),
        });
        t.ok(fs.readFileSync(result.path).equals(want), `${shards}-shard flow: byte-identical to the one-machine build`);
        t.equal(result.sha256, local.sha256);
        t.same(result.shards.map((s) => s.shardId), Array.from({ length: shards }, (_, i) => i));
        t.equal(progress.at(-1)?.phase, 'done', 'the last report says done');
        t.equal(progress.at(-1)?.shardsDone, shards, 'every shard reported as encoded');
        t.ok(progress.some((p) => p.phase === 'encode' && p.step === 'encode'), 'encode jobs report their step');
        t.ok(progress.some((p) => p.phase === 'merge'), 'the merge is reported');
      }
    });

    await t.test('a worker killed mid-job: its job is recovered by another worker, same bytes', async (t) => {
      const env = {
        QUIVER_TEST_REDIS_PORT: String(redis!.port),
        QUIVER_TEST_QUEUE: 'kill',
        QUIVER_TEST_LOCK_MS: String(LOCK_MS),
        QUIVER_TEST_STALLED_MS: String(STALLED_MS),
      };
      const doomed = spawnTs(path.join(ROOT, 'test', 'fixtures', 'scaleout', 'build-worker.ts'), { ...env, QUIVER_TEST_HANG: '1' });
      t.teardown(() => doomed.kill());
      await doomed.next<{ event: string }>((m) => m.event === 'ready', 60_000);
      const build = scaleout.buildDistributed({
        connection,
        queueName: 'kill',
        codebookFile,
        vectorsFile,
        shards: 4,
        workDir: path.join(tmp, 'work-kill'),
        outFile: path.join(tmp, 'flow-kill.qvr'),
        buildId: 'kill',
      });
      const started = await doomed.next<{ event: string; job: scaleout.BuildJobInfo }>((m) => m.event === 'start');
      t.equal(started.job.name, 'encode', 'the doomed worker took an encode job');
      await doomed.kill('SIGKILL');

      const seen: scaleout.BuildJobInfo[] = [];
      const rescuer = await scaleout.startBuildWorker({
        connection,
        queueName: 'kill',
        threads: 1,
        lockDurationMs: LOCK_MS,
        stalledIntervalMs: STALLED_MS,
        onJobStart: (job) => void seen.push(job),
      });
      t.teardown(() => rescuer.close());
      const result = await build;
      t.ok(fs.readFileSync(result.path).equals(want), 'byte-identical to the one-machine build');
      const again = seen.find((j) => j.id === started.job.id);
      t.ok(again, `the killed job ${started.job.id} ran again on the other worker`);
      t.ok((again?.stalledCount ?? 0) >= 1, 'BullMQ counted it as recovered from a stalled worker');
      t.equal(seen.filter((j) => j.name === 'encode').length, 4, 'the other worker ran all four encode jobs');
    });

    await t.test('bad arguments name the argument; a missing package is named', async (t) => {
      await t.rejects(scaleout.buildDistributed(undefined as never), { name: 'TypeError', message: /^options:/ });
      const base = { connection, codebookFile, vectorsFile, shards: 2, workDir: tmp, outFile: path.join(tmp, 'x.qvr') };
      await t.rejects(scaleout.buildDistributed({ ...base, shards: 0 }), { name: 'RangeError', message: /^options.shards:/ });
      await t.rejects(scaleout.buildDistributed({ ...base, buildId: 'a:b' }), { name: 'RangeError', message: /^options.buildId:/ });
      await t.rejects(scaleout.buildDistributed({ ...base, connection: { port: 'x' } as never }), { name: 'TypeError', message: /^options.connection.port:/ });
      await t.rejects(scaleout.buildDistributed({ ...base, shard: 2 } as never), { name: 'TypeError', message: /unknown option "shard"/ });
      await t.rejects(scaleout.startBuildWorker({ connection, concurrency: 0 }), { name: 'RangeError', message: /^options.concurrency:/ });
      await t.rejects(scaleout.startBuildWorker({ connection, onJobStart: 3 } as never), { name: 'TypeError', message: /^options.onJobStart:/ });
      // A codebook without its manifest is refused before any job is queued.
      const bare = path.join(tmp, 'bare.qvr');
      fs.copyFileSync(codebookFile, bare);
      await t.rejects(scaleout.buildDistributed({ ...base, codebookFile: bare }), { code: 'ERR_QUIVER_MANIFEST' });
    });
  });
}
