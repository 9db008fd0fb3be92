#!/usr/bin/env node
// How much of a dataset's variance the p leading principal components keep, as `PCA<p>,<codec>` computes them
// (the variance it drops per vector is what its training reports as the 'pca' phase's error): the floor under
// the squared error of any PCA<p> codec, and a guide for choosing p.
//
//   node bench/pca-energy.js --dataset fashion-mnist [--train-count 10000] [--dims 32,64,128,256] [--out FILE]
'use strict';
const os = require('node:os');
const { Command, InvalidArgumentError } = require('commander');
const { integerOption, loadDatasetOrSkip, loadDist, runMain, writeReport } = require('./common');

function dimList(value) {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new InvalidArgumentError(`--dims must be a comma-separated list of positive integers, got "${value}"`);
  }
  return list;
}

async function main() {
  const opts = new Command()
    .name('pca-energy')
    .description('variance kept and dropped by the p leading principal components, as PCA<p> codecs train them')
    .option('--dataset <name>', 'preset (sift10k, fashion-mnist), .hdf5 file, or base file', 'fashion-mnist')
    .option('--train-count <n>', 'training rows (the first n of the base; default: the preset\'s)', integerOption('--train-count'))
    .option('--dims <list>', 'values of p', dimList, [32, 64, 96, 128, 192, 256, 384, 512])
    .option('--out <file>', 'also write the Markdown table here')
    .parse()
    .opts();
  const quiver = loadDist('pca-energy', 'index.js');
  const suite = loadDist('pca-energy', 'suite.js');
  const dataset = await loadDatasetOrSkip(suite, opts.dataset, { trainCount: opts.trainCount });
  if (!dataset) return 0;
  const { dim } = dataset;
  const n = dataset.trainCount ?? dataset.baseCount;
  const train = dataset.base.subarray(0, n * dim);
  // Total variance per vector of the training rows (float64 sums).
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j] += train[i * dim + j] / n;
  let total = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) total += (train[i * dim + j] - mean[j]) ** 2 / n;
  const rows = [];
  for (const p of opts.dims.filter((p) => p <= dim)) {
    let dropped;
    // The smallest inner codec (PQ1x1): only the projection's report matters here.
    quiver.Codec.trainSync(`PCA${p},PQ1x1`, train, {
      dim,
      seed: 1,
      onProgress: (report) => {
        if (report.phase === 'pca') dropped = report.error;
      },
    });
    rows.push({ p, dropped });
  }
  const machine = suite.machineInfo();
  const lines = [
    `## Variance kept by the leading principal components: ${dataset.name}`,
    '',
    `${n} training rows, d = ${dim}, total variance ${total.toFixed(0)} per vector. Dropped = the variance per vector ` +
      `outside the p components (the squared-error floor of any PCA<p> codec). ${machine.cpu}, Node ${machine.node}, ` +
      `load average ${os.loadavg()[0].toFixed(1)}, ${machine.date}.`,
    '',
    '| p | kept | dropped per vector |',
    '|---:|---:|---:|',
    ...rows.map((r) => `| ${r.p} | ${(100 * (1 - r.dropped / total)).toFixed(1)} % | ${r.dropped.toFixed(0)} |`),
  ];
  console.log(lines.join('\n'));
  writeReport(opts.out, lines);
  return 0;
}

runMain(main);
