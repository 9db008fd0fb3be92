#!/usr/bin/env node
// Scale-out walk-through on the embedded SIFT slice: train a codebook, encode 4 shards, merge them, search the
// merged file in place (mmap). With QUIVER_REDIS=host:port the shards are encoded by a BullMQ flow instead (a
// worker runs in this process; start more with startBuildWorker anywhere); with QUIVER_NATS=nats://host:port
// the 4 shard files are also served over NATS and searched through a ShardedSearchClient.
// Run after `npm run build`: node examples/scaleout.js
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Index, readVectors, scaleout } = require(path.join(__dirname, '..', 'dist', 'cjs', 'index.js'));

async function main() {
  const data = path.join(__dirname, '..', 'data', 'bigann10k');
  const vectorsFile = path.join(data, 'bigann10k_heldout_base.bvecs');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-scaleout-example-'));
  const { data: base, dim } = await readVectors(vectorsFile);
  const { data: queries } = await readVectors(path.join(data, 'bigann10k_heldout_query.bvecs'), { count: 3 });

  // 1. One codebook for everybody: a trained, empty index plus codebook.qvr.json (SHA-256, spec, dim, metric).
  const codebook = await scaleout.trainCodebook('IVF16,PQ16x8', base, path.join(dir, 'codebook.qvr'), { dim, seed: 1 });
  console.log(`codebook ${codebook.spec}, sha256 ${codebook.sha256.slice(0, 16)}…`);

  // 2. Encode 4 shards and merge them, on this machine or as a BullMQ flow.
  const outFile = path.join(dir, 'merged.qvr');
  let merged;
  if (process.env.QUIVER_REDIS) {
    const [host, port] = process.env.QUIVER_REDIS.split(':');
    const connection = { host, port: Number(port) };
    const worker = await scaleout.startBuildWorker({ connection });
    merged = await scaleout.buildDistributed({
      connection, codebookFile: codebook.path, vectorsFile, shards: 4, workDir: path.join(dir, 'shards'), outFile,
      onProgress: (p) => console.log(`  ${p.phase}: ${p.shardsDone}/${p.shards} shards encoded`),
    });
    await worker.close();
  } else {
    merged = await scaleout.buildLocal({ codebookFile: codebook.path, vectorsFile, shards: 4, workDir: path.join(dir, 'shards'), outFile });
  }
  console.log(`merged ${merged.count} vectors from shards ${merged.shards.map((s) => s.shardId).join(', ')}`);

  // 3. Search the merged file without loading its lists: they stay in the mapped file.
  const index = await Index.load(outFile, { mmap: true });
  const local = await index.search(queries, 5, { nprobe: 4 });
  console.log('merged file, first query:', Array.from(local.ids.subarray(0, 5), String).join(' '));

  // 4. Optionally: one shard server per shard file over NATS, and a client that scatters and gathers.
  if (process.env.QUIVER_NATS) {
    const servers = process.env.QUIVER_NATS;
    const files = merged.shards.map((s) => s.path);
    const shardServers = await Promise.all(files.map((file, shardId) => scaleout.serveShard({ servers, shardId, index: file })));
    const client = await scaleout.ShardedSearchClient.connect({ servers, shards: files.length, dim, deadlineMs: 1000 });
    const remote = await client.search(queries, 5, { nprobe: 4 });
    console.log('over NATS,   first query:', Array.from(remote.ids.subarray(0, 5), String).join(' '), remote.partial ? '(partial)' : '');
    await client.close();
    await Promise.all(shardServers.map((s) => s.close()));
  }
  index.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
