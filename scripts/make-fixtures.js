#!/usr/bin/env node
// Writes test/fixtures/: one saved file per index type (and a codec) built from the embedded SIFT slice with
// fixed seeds, the expected search results of each, and corrupted variants. The tests load these files and
// compare results, so a change of the file format (or of training) shows up as a failing test and has to be
// made deliberately: bump the format version, keep a reader for the old one, and regenerate with
//   npm run build && node scripts/make-fixtures.js
// Naming fixtures (node scripts/make-fixtures.js pq8x8-refine-fp16-l2 …) writes only those and updates their
// entries in expected.json, leaving every other file as it was (so files of older builds stay covered).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { Index, Codec, readVectors } = require('../dist/cjs/index.js');

const root = path.join(__dirname, '..');
const out = path.join(root, 'test', 'fixtures');

const SPECS = {
  'flat-l2': ['Flat', 'l2'],
  'pq8x8-l2': ['PQ8x8', 'l2'],
  'pq8x4-ip': ['PQ8x4', 'ip'],
  'pq4x8-refine-cosine': ['PQ4x8,Refine', 'cosine'],
  'pq16x4fs-l2': ['PQ16x4fs', 'l2'],
  'ivf8-pq8x8-l2': ['IVF8,PQ8x8', 'l2'],
  'ivf4-trq-pq8x4-refine-ip': ['IVF4,TRQ,PQ8x4,Refine', 'ip'],
  'rq4x8-l2': ['RQ4x8', 'l2'],
  'opq8-pq8x8-l2': ['OPQ8,PQ8x8', 'l2'],
  'trq1x8-pq8x4-l2': ['TRQ1x8,PQ8x4', 'l2'],
  'prq2x2x8-l2': ['PRQ2x2x8', 'l2'],
  'pq8x8-refine-fp16-l2': ['PQ8x8,Refine,store=fp16', 'l2'],
  'ivf4-pq8x4-refine-int8-ip': ['IVF4,PQ8x4,Refine,store=int8', 'ip'],
};

(async () => {
  fs.mkdirSync(out, { recursive: true });
  const all = await readVectors(path.join(root, 'data/bigann10k/bigann10k_heldout_base.bvecs'), { count: 600 });
  const dim = all.dim;
  const base = all.data.subarray(0, 500 * dim);
  const queries = all.data.subarray(500 * dim, 505 * dim);
  const only = process.argv.slice(2);
  for (const name of only) if (!SPECS[name]) throw new Error(`unknown fixture ${name}; known: ${Object.keys(SPECS).join(', ')}`);
  const expected = only.length
    ? JSON.parse(fs.readFileSync(path.join(out, 'expected.json'), 'utf8'))
    : { queries: Array.from(queries), k: 5, indexes: {} };
  for (const [name, [spec, metric]] of Object.entries(SPECS)) {
    if (only.length && !only.includes(name)) continue;
    const index = await Index.train(spec, base, { dim, metric, seed: 7, iterations: 5 });
    const ids = BigInt64Array.from({ length: 500 }, (_, i) => BigInt(i) * 3n + 1000n);
    const categories = Int32Array.from({ length: 500 }, (_, i) => i % 5);
    await index.add(base, ids, { categories });
    await index.remove([1003n, 1006n]);
    const r = await index.search(queries, 5, { refine: spec.includes('Refine') ? 4 : 1 });
    await index.save(path.join(out, `${name}.qvr`));
    expected.indexes[name] = { spec, metric, size: index.size, ids: Array.from(r.ids, String), distances: Array.from(r.distances) };
  }
  if (only.length) {
    fs.writeFileSync(path.join(out, 'expected.json'), JSON.stringify(expected) + '\n');
    console.log(`fixtures ${only.join(', ')} written to ${path.relative(root, out)}`);
    return;
  }
  const codec = await Codec.train('PQ8x8', base, { dim, seed: 7, iterations: 5 });
  await codec.save(path.join(out, 'pq8x8.qvc'));
  expected.codec = { spec: 'PQ8x8', codes: Array.from(codec.encode(queries)) };
  fs.writeFileSync(path.join(out, 'expected.json'), JSON.stringify(expected) + '\n');

  // Corrupted variants of the small PQ file: truncated, a flipped payload bit, wrong magic, future version.
  const good = fs.readFileSync(path.join(out, 'pq8x4-ip.qvr'));
  fs.writeFileSync(path.join(out, 'corrupt-truncated.qvr'), good.subarray(0, good.length - 100));
  const flipped = Buffer.from(good);
  flipped[Math.floor(good.length / 2)] ^= 0x10;
  fs.writeFileSync(path.join(out, 'corrupt-bitflip.qvr'), flipped);
  const magic = Buffer.from(good);
  magic.write('XXXX', 0, 'latin1');
  fs.writeFileSync(path.join(out, 'corrupt-magic.qvr'), magic);
  const version = Buffer.from(good);
  version.writeUInt32LE(99, 4);
  fs.writeFileSync(path.join(out, 'corrupt-version.qvr'), version);
  console.log(`fixtures written to ${path.relative(root, out)}`);
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
