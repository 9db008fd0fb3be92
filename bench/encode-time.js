#!/usr/bin/env node
// Encoding time of codecs on one thread, relative to the first spec listed (the bar of issue 3 compares a
// codec's encoding with PQ's): each spec is trained on the dataset's training rows, then each encodes the first
// --count base vectors once per round, --reps rounds alternating between the specs, on one thread; the best run
// counts (a busy machine only slows runs down). All specs are timed in the same process, so the ratios compare
// like with like.
//
//   node bench/encode-time.js --dataset fashion-mnist --specs "PQ8x8;RQ8x8;TRQ8x8,beam=5,sub=64,pd=10" \
//     [--train-count 10000] [--count 20000] [--reps 3] [--out bench/results/encode-time-fashion-mnist.md]
'use strict';
const os = require('node:os');
const { Command } = require('commander');
const { engineName, integerOption, loadDatasetOrSkip, loadDist, runMain, writeReport } = require('./common');

async function main() {
  const opts = new Command()
    .name('encode-time')
    .description('one-thread encoding time of codecs, as ratios to the first spec')
    .option('--dataset <name>', 'preset (sift10k, fashion-mnist), .hdf5 file, or base file', 'fashion-mnist')
    .requiredOption('--specs <list>', 'codec specs, ";"-separated; the first is the reference (e.g. PQ8x8)')
    .option('--train-count <n>', 'training rows (the first n of the base; default: the preset\'s)', integerOption('--train-count'))
    .option('--count <n>', 'base vectors encoded per run', integerOption('--count'), 20000)
    .option('--reps <n>', 'runs per spec (the best counts)', integerOption('--reps'), 3)
    .option('--seed <n>', 'training seed', integerOption('--seed'), 1)
    .option('--out <file>', 'also write the Markdown table here')
    .parse()
    .opts();
  const quiver = loadDist('encode-time', 'index.js');
  const suite = loadDist('encode-time', 'suite.js');
  const dataset = await loadDatasetOrSkip(suite, opts.dataset, { trainCount: opts.trainCount });
  if (!dataset) return 0;
  const { dim } = dataset;
  const train = dataset.base.subarray(0, (dataset.trainCount ?? dataset.baseCount) * dim);
  const count = Math.min(opts.count, dataset.baseCount);
  const rows = dataset.base.subarray(0, count * dim);
  const specs = opts.specs.split(';').map((s) => s.trim()).filter(Boolean);
  // Every codec is trained first, then the runs alternate between them (round r times each codec once), so
  // that the machine's drift over minutes (±20–40 % on shared machines) falls on all of them alike instead of
  // on whichever codec was timed last. Per codec: the best run, and the ratio to the first spec's best.
  const codecs = [];
  for (const spec of specs) {
    process.stderr.write(`${spec}: training…\n`);
    codecs.push(await quiver.Codec.train(spec, train, { dim, seed: opts.seed }));
  }
  const best = codecs.map(() => Infinity);
  for (let r = 0; r < opts.reps; r++) {
    codecs.forEach((codec, i) => {
      const start = process.hrtime.bigint();
      codec.encode(rows, { threads: 1 });
      best[i] = Math.min(best[i], Number(process.hrtime.bigint() - start) / 1e6);
    });
    process.stderr.write(`round ${r + 1}/${opts.reps}: ${best.map((ms) => ms.toFixed(0)).join(' ')} ms\n`);
  }
  const results = codecs.map((codec, i) => ({ spec: codec.spec, ms: best[i] }));
  const machine = suite.machineInfo();
  const engine = engineName();
  const lines = [
    '## One-thread encoding time',
    '',
    `Encoding ${count} ${dataset.name} vectors (d = ${dim}) on one thread, best of ${opts.reps} alternating rounds; trained on ` +
      `${train.length / dim} rows, seed ${opts.seed}. Machine: ${machine.cpu}, SIMD ${quiver.simdLevel()}, ` +
      `Node ${machine.node}, quiver ${engine}, load average ${os.loadavg()[0].toFixed(1)}, ${machine.date}.`,
    '',
    `| spec | ms | µs/vector | vs ${results[0].spec} |`,
    '|---|---:|---:|---:|',
    ...results.map((r) => `| ${r.spec} | ${r.ms.toFixed(0)} | ${((r.ms * 1000) / count).toFixed(1)} | ${(r.ms / results[0].ms).toFixed(2)}× |`),
  ];
  console.log(lines.join('\n'));
  writeReport(opts.out, lines);
  return 0;
}

runMain(main);
