// The benchmark suite runner: on a tiny synthetic set and on the embedded SIFT slice it measures every
// configuration, scores Flat at recall 1, compares peers, skips what is missing, and writes sane
// JSON / Markdown / SVG. Timings are cut to a few milliseconds each so the whole file runs in seconds.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import {
  createPeers,
  faissFactoryFor,
  formatMarkdown,
  loadHdf5Dataset,
  loadH5wasm,
  loadVecsDataset,
  makeDataset,
  quiverSweep,
  renderSvg,
  runSuite,
  writeSuiteOutputs,
  type PeerAdapter,
  type SuiteDataset,
  type SuiteEvent,
} from '../lib/suite';
import { bruteForce, DEMO_DATA, randomFloats, ROOT } from './helpers';

const out = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-suite-'));
t.teardown(() => fs.rmSync(out, { recursive: true, force: true }));

function syntheticDataset(): SuiteDataset {
  const dim = 16;
  const baseCount = 500;
  const queryCount = 20;
  const gtK = 100;
  const base = randomFloats(baseCount * dim, 7);
  const queries = randomFloats(queryCount * dim, 8);
  const truth = bruteForce(base, queries, dim, gtK);
  return makeDataset({
    name: 'synthetic',
    description: 'uniform random floats',
    metric: 'l2',
    dim,
    base,
    baseCount,
    queries,
    queryCount,
    groundTruth: Int32Array.from(truth.ids.flat()),
    gtK,
  });
}

/** An in-process peer that answers exactly by brute force: exercises the adapter path without a library. */
function exactPeer(dataset: SuiteDataset): PeerAdapter {
  const truth = bruteForce(dataset.base, dataset.queries, dataset.dim, 100);
  const answer = (k: number) => BigInt64Array.from(truth.ids.flatMap((row) => row.slice(0, k).map(BigInt)));
  return {
    name: 'exact-js',
    role: 'speed',
    probe: async () => ({ version: 'test' }),
    configurations: () => [{ label: 'brute force', sweepSize: 1, options: {} }],
    build: async () => ({
      spec: 'brute force',
      bytesPerVector: 4 * dataset.dim,
      trainSeconds: 0,
      addSeconds: 0,
      sweep: [{}],
      threadModes: [1],
      searchBatch: (_q, k) => answer(k),
      searchOne: (i, k) => truth.ids[i].slice(0, k),
      close() {},
    }),
  };
}

const missingPeer: PeerAdapter = {
  name: 'absent',
  role: 'speed',
  probe: async () => ({ skip: 'the npm package absent is not installed' }),
  configurations: () => [],
  build: async () => {
    throw new Error('never built');
  },
};

t.test('the sweep grid follows the spec: nprobe for IVF, refine for ",Refine", one point otherwise', async (t) => {
  const plan = { nprobe: [1, 8], refine: [1, 4] };
  t.same(quiverSweep('PQ16x8', plan), [{}]);
  t.same(quiverSweep('PQ16x8,Refine', plan), [{ refine: 1 }, { refine: 4 }]);
  t.equal(quiverSweep('IVF64,PQ16x8,Refine', plan).length, 4);
  t.same(quiverSweep('PQ16x8,Refine,store=int8', plan), [{ refine: 1 }, { refine: 4 }], 'refine stores sweep refine too');
  // faiss counterparts of the refine stores (faiss 1.7.3 builds all three).
  t.equal(faissFactoryFor('PQ16x8,Refine'), 'PQ16x8,RFlat');
  t.equal(faissFactoryFor('IVF64,PQ16x8,Refine,store=fp16'), 'IVF64,PQ16x8,Refine(SQfp16)');
  t.equal(faissFactoryFor('IVF64,PQ32x4fs,Refine,store=int8'), 'IVF64,PQ32x4fs,Refine(SQ8)');
});

t.test('bad sweep settings are RangeErrors that name the setting', async (t) => {
  const dataset = syntheticDataset();
  await t.rejects(runSuite({ dataset, specs: ['Flat'], k: 0 }), { name: 'RangeError', message: /^k: / });
  await t.rejects(runSuite({ dataset, specs: ['Flat'], ef: [] }), { name: 'RangeError', message: /^ef: / });
  await t.rejects(runSuite({ dataset, specs: ['Flat'], minSeconds: -1 }), { name: 'RangeError', message: /^minSeconds: / });
});

t.test('a tiny synthetic run: Flat is exact, PQ is not, peers are measured or skipped, files are written', async (t) => {
  const dataset = syntheticDataset();
  const events: SuiteEvent[] = [];
  const result = await runSuite({
    dataset,
    specs: ['Flat', 'PQ4x4', 'PQ4x4,Refine', 'NoSuchSpec'],
    refine: [1, 8],
    ef: [16, 64],
    minSeconds: 0.01,
    peers: [
      exactPeer(dataset),
      missingPeer,
      ...createPeers(['usearch', 'hnswlib', 'faiss'], {
        faiss: { script: path.join(ROOT, 'bench', 'peers', 'faiss_peer.py'), factories: ['Flat'] },
      }),
    ],
    onEvent: (e) => events.push(e),
  });

  t.equal(result.schema, 'quiver-suite/1');
  t.equal(result.plan.k, 10);
  t.equal(result.plan.recallK, 100);
  const quiver = result.rows.filter((r) => r.system === 'quiver');
  t.same(quiver.map((r) => `${r.spec} ${JSON.stringify(r.params)}`), ['Flat {}', 'PQ4x4 {}', 'PQ4x4,Refine {"refine":1}', 'PQ4x4,Refine {"refine":8}']);

  const flat = quiver[0];
  for (const r of ['1', '10', '100']) {
    t.equal(flat.oneRecall[r], 1, `Flat 1-recall@${r}`);
    t.equal(flat.kRecall[r], 1, `Flat ${r}-recall@${r}`);
  }
  t.equal(flat.bytesPerVector, 64);
  t.ok(flat.qps.batch1! > 0 && flat.qps.batchAll! > 0 && flat.qps.single1! > 0 && flat.qps.singleAll! > 0, 'four q/s figures');

  const pq = quiver[1];
  t.equal(pq.bytesPerVector, 2);
  t.ok(pq.kRecall['10'] > 0 && pq.kRecall['10'] < 1, `PQ4x4 10-recall@10 ${pq.kRecall['10']}`);
  t.ok(pq.trainSeconds > 0, 'training is timed');
  const [refine1, refine8] = quiver.slice(2);
  t.equal(refine1.bytesPerVector, 2 + 64, 'the refine store counts in bytes/vector');
  t.ok(refine8.kRecall['10'] >= refine1.kRecall['10'], 'refining more candidates does not lose recall');

  t.ok(
    result.skipped.some((s) => s.system === 'quiver' && s.spec === 'NoSuchSpec' && /^unsupported: .*NoSuchSpec/.test(s.reason)),
    'a bad spec is a skip, not a crash',
  );
  t.ok(result.skipped.some((s) => s.system === 'absent' && /not installed/.test(s.reason)), 'a missing peer is a skip');

  const exact = result.rows.find((r) => r.system === 'exact-js')!;
  t.equal(exact.kRecall['10'], 1);
  t.equal(exact.qps.batchAll, null, 'a one-thread peer has no all-threads figure');
  const ratio = result.ratios.find((r) => r.peer === 'exact-js' && r.spec === 'PQ4x4' && r.mode === 'single')!;
  t.equal(ratio.peerSpec, 'brute force');
  t.ok(ratio.ratio! > 0);

  for (const peer of ['usearch', 'hnswlib-node', 'faiss']) {
    const rows = result.rows.filter((r) => r.system === peer);
    const skipped = result.skipped.find((s) => s.system === peer);
    t.ok(rows.length > 0 || skipped, `${peer}: measured or skipped with a reason`);
    for (const row of rows) t.ok(row.kRecall['10'] > 0.5, `${peer} ${row.spec} ${JSON.stringify(row.params)} recall ${row.kRecall['10']}`);
  }
  const faissFlat = result.rows.find((r) => r.system === 'faiss');
  if (faissFlat) {
    t.equal(faissFlat.role, 'accuracy');
    t.equal(faissFlat.kRecall['10'], 1, 'faiss Flat agrees with the ground truth');
  }

  t.equal(events[0].type, 'start');
  t.equal(events[events.length - 1].type, 'end');
  const last = events.filter((e) => e.type === 'search' || e.type === 'skip').pop() as { done: number; total: number };
  t.equal(last.done, last.total, 'progress reaches its total');

  const files = writeSuiteOutputs(result, path.join(out, 'synthetic'));
  const json = JSON.parse(fs.readFileSync(files.json, 'utf8'));
  t.equal(json.rows.length, result.rows.length);
  const markdown = fs.readFileSync(files.markdown, 'utf8');
  t.match(markdown, /^# quiver benchmark suite: synthetic/);
  t.match(markdown, /\| quiver [^|]+\| Flat \| +\| 64 \|/);
  t.match(markdown, /## Skipped[\s\S]*NoSuchSpec/);
  const svg = fs.readFileSync(files.svg, 'utf8');
  t.match(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.match(svg, /<\/svg>\n$/);
  t.match(svg, /quiver PQ4x4,Refine/);
  t.notMatch(svg, /NaN|undefined|Infinity/);
});

t.test('the embedded SIFT slice with two specs', async (t) => {
  const dataset = await loadVecsDataset({
    name: 'sift10k',
    base: path.join(DEMO_DATA, 'bigann10k_heldout_base.bvecs'),
    queries: path.join(DEMO_DATA, 'bigann10k_heldout_query.bvecs'),
    groundTruth: path.join(DEMO_DATA, 'bigann10k_heldout_groundtruth.ivecs'),
  });
  t.equal(dataset.baseCount, 9900);
  const result = await runSuite({ dataset, specs: ['Flat', 'PQ8x8'], minSeconds: 0.01 });
  const [flat, pq] = result.rows;
  t.equal(flat.kRecall['10'], 1);
  t.equal(flat.oneRecall['100'], 1);
  t.equal(flat.bytesPerVector, 512);
  t.equal(pq.bytesPerVector, 8);
  t.ok(pq.kRecall['10'] > 0.45 && pq.kRecall['10'] < 0.7, `PQ8x8 10-recall@10 ${pq.kRecall['10']} (faiss: 0.565)`);
  t.ok(pq.oneRecall['100'] > 0.95, `PQ8x8 1-recall@100 ${pq.oneRecall['100']}`);
  t.match(formatMarkdown(result), /\| PQ8x8 \| +\| 8 \|/);
  t.match(renderSvg(result), /sift10k: recall vs queries per second/);
});

t.test('ann-benchmarks HDF5 files load through h5wasm', async (t) => {
  const h5 = await loadH5wasm();
  const file = path.join(out, 'tiny-angular.hdf5');
  const f = new (h5.File as unknown as new (p: string, m: string) => {
    create_dataset(o: { name: string; data: unknown; shape: number[] }): void;
    create_attribute(name: string, value: string): void;
    close(): void;
  })(file, 'w');
  f.create_dataset({ name: 'train', data: new Float32Array([1, 0, 0, 1, 1, 1]), shape: [3, 2] });
  f.create_dataset({ name: 'test', data: new Float32Array([1, 0.1, 0, 2]), shape: [2, 2] });
  f.create_dataset({ name: 'neighbors', data: new Int32Array([0, 2, 1, 2]), shape: [2, 2] });
  f.create_dataset({ name: 'distances', data: new Float32Array([0, 0, 0, 0]), shape: [2, 2] });
  f.create_attribute('distance', 'angular');
  f.close();
  const dataset = await loadHdf5Dataset(file, { queryCount: 1 });
  t.equal(dataset.metric, 'cosine');
  t.equal(dataset.dim, 2);
  t.equal(dataset.baseCount, 3);
  t.equal(dataset.queryCount, 1);
  t.same([...dataset.groundTruth], [0, 2]);
  t.same([...dataset.queries], [1, Math.fround(0.1)]);
});
