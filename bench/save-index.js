#!/usr/bin/env node
// Trains an index on a suite dataset (as bench/run-suite.js does: the preset's training vectors, seed 1), adds
// the base, and saves it with the queries (.fvecs) and ground truth (.ivecs) beside it, for programs that time
// searches without Node in the way (bench/cpp/search_index.cpp). Runs through the compiled dist/.
//
//   node bench/save-index.js --dataset fashion-mnist --spec "IVF1024,PQ16x8" --out /tmp/quiver-bench
// writes /tmp/quiver-bench/<spec>.qvr (spec with non-alphanumerics as _), queries.fvecs and groundtruth.ivecs.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { Command } = require('commander');

const { loadDist } = require('./common');

const suite = loadDist('save-index', 'suite.js');
const { Index } = loadDist('save-index', 'index.js');

function writeVecs(file, rows, dim, values, isInt) {
  const buf = Buffer.alloc(rows * (4 + 4 * dim));
  for (let r = 0; r < rows; r++) {
    const at = r * (4 + 4 * dim);
    buf.writeInt32LE(dim, at);
    for (let j = 0; j < dim; j++) {
      if (isInt) buf.writeInt32LE(Number(values[r * dim + j]), at + 4 + 4 * j);
      else buf.writeFloatLE(values[r * dim + j], at + 4 + 4 * j);
    }
  }
  fs.writeFileSync(file, buf);
}

async function main() {
  const program = new Command()
    .requiredOption('--dataset <name>', 'suite preset (sift10k, fashion-mnist)')
    .requiredOption('--spec <spec>', 'quiver index spec')
    .requiredOption('--out <dir>', 'output folder')
    .parse();
  const o = program.opts();
  const ds = await suite.loadDataset(o.dataset, {});
  fs.mkdirSync(o.out, { recursive: true });
  const trainRows = ds.trainCount ?? ds.baseCount;
  const index = Index.trainSync(o.spec, ds.base.subarray(0, trainRows * ds.dim), { dim: ds.dim, metric: ds.metric, seed: 1 });
  index.addSync(ds.base);
  const file = path.join(o.out, `${o.spec.replace(/[^A-Za-z0-9]/g, '_')}.qvr`);
  index.saveSync(file);
  writeVecs(path.join(o.out, 'queries.fvecs'), ds.queryCount, ds.dim, ds.queries, false);
  writeVecs(path.join(o.out, 'groundtruth.ivecs'), ds.queryCount, ds.gtK, ds.groundTruth, true);
  console.log(`${file}: ${ds.baseCount} vectors; ${ds.queryCount} queries and ground truth (${ds.gtK} deep) in ${o.out}`);
}

main().catch((e) => {
  console.error(e.message);
  process.exit(1);
});
