#!/usr/bin/env node
// Runs the benchmark suite (lib/suite.ts, through the compiled dist/) on one or more datasets with quiver
// specs and peers, and writes results.json, results.md and results.svg per dataset.
//
//   node --expose-gc bench/run-suite.js --dataset sift10k --specs "Flat;PQ8x8;PQ16x8;PQ32x8" \
//     --peers usearch,hnswlib,lancedb,faiss --out bench/results/sift10k
//
// A dataset whose files are missing, or a peer that is not installed, is skipped with a message.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Command, InvalidArgumentError, Option } = require('commander');

const { ROOT, loadDist, integerOption } = require('./common');

const intList = (name) => (value) => {
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new InvalidArgumentError(`${name} must be a comma-separated list of positive integers`);
  }
  return list;
};
const specList = (value) => value.split(';').map((s) => s.trim()).filter(Boolean);

/**
 * Which engine was measured. With QUIVER_ADDON (an addon built elsewhere, e.g. from a clean checkout of a
 * commit) that file is named; otherwise the commit, marked when the working tree's engine differs from it.
 */
function engineFacts() {
  const addon = process.env.QUIVER_ADDON ? { addon: process.env.QUIVER_ADDON } : {};
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'native', 'lib', 'binding.gyp'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    if (addon.addon) return { commit: `${commit} (TypeScript${dirty ? ', with uncommitted changes' : ''})`, ...addon };
    return { commit: dirty ? `${commit} + uncommitted changes to native/lib` : commit };
  } catch {
    return addon;
  }
}

function loadAnchors(file, datasetName) {
  if (!file || !fs.existsSync(file)) return undefined;
  const all = JSON.parse(fs.readFileSync(file, 'utf8'));
  const set = all.sets?.[datasetName];
  return set ? { system: set.system, source: all.source, conditions: set.conditions, rows: set.rows } : undefined;
}

function buildProgram() {
  const program = new Command();
  program
    .name('run-suite')
    .description('quiver benchmark suite: recall, q/s, build time, bytes/vector and memory against peers')
    .option('--dataset <list>', 'comma-separated presets (sift10k, fashion-mnist), .hdf5 files or a base vector file', 'sift10k')
    .option('--queries-file <file>', 'queries, when --dataset is a base vector file')
    .option('--gt-file <file>', 'ground truth (.ivecs/.ibin), when --dataset is a base vector file')
    .addOption(new Option('--metric <metric>', 'metric, when --dataset is a base vector file').choices(['l2', 'ip', 'cosine']).default('l2'))
    .option('--query-count <n>', 'use only the first n queries', integerOption('--query-count'))
    .option('--train-count <n>', 'train on the first n base vectors', integerOption('--train-count'))
    .option('--specs <list>', 'quiver specs separated by ";"', 'Flat;PQ8x8;PQ16x8;PQ32x8')
    .option('--peers <list>', 'comma-separated peers: usearch, hnswlib, lancedb, faiss, or none', 'usearch,hnswlib,lancedb,faiss')
    .option('--faiss-specs <list>', 'faiss factory strings separated by ";" (default: the counterparts of --specs)')
    .option('--python <path>', 'python with faiss importable', '/usr/bin/python3')
    .option('--nprobe <list>', 'nprobe sweep for IVF indexes', intList('--nprobe'), [4, 16, 64])
    .option('--refine <list>', 'refine sweep for ",Refine" specs', intList('--refine'), [1, 4, 16])
    .option('--ef <list>', 'ef sweep for HNSW peers', intList('--ef'), [16, 32, 64, 128])
    .option('--hnsw-m <n>', 'HNSW degree M for the graph peers', integerOption('--hnsw-m'), 16)
    .option('--ef-construction <n>', 'HNSW efConstruction for the graph peers', integerOption('--ef-construction'), 128)
    .option('--lancedb-partitions <n>', 'LanceDB IVF partitions (default √n)', integerOption('--lancedb-partitions'))
    .option('--lancedb-subvectors <n>', 'LanceDB PQ sub-vectors', integerOption('--lancedb-subvectors'), 16)
    .option('-k, --k <n>', 'results per query for timing and recall@1/@10', integerOption('-k'), 10)
    .option('--recall-k <n>', 'results per query for recall@100', integerOption('--recall-k'), 100)
    .option('--min-seconds <s>', 'minimum seconds per timing round', (v) => {
      const n = Number(v);
      if (!(n > 0)) throw new InvalidArgumentError('--min-seconds must be a positive number');
      return n;
    }, 0.2)
    .option('--rounds <n>', 'timing rounds per figure (the best counts)', integerOption('--rounds'), 3)
    .option('--seed <n>', 'training seed', integerOption('--seed'), 1234)
    .option('--anchors <file>', 'anchor figures to print beside ours', path.join(ROOT, 'bench', 'anchors.json'))
    .option('--out <dir>', 'output folder (with several datasets: one sub-folder each)')
    .option('--json', 'also print the result JSON to stdout')
    .option('--render <results.json>', 'only re-write results.md and results.svg beside an existing results.json')
    .option('--no-progress', 'no progress display');
  return program;
}

async function main(argv) {
  const program = buildProgram();
  program.parse(argv);
  const opts = program.opts();
  const suite = loadDist('run-suite', 'suite.js');
  if (opts.render) {
    const result = JSON.parse(fs.readFileSync(opts.render, 'utf8'));
    const files = suite.writeSuiteOutputs(result, path.dirname(opts.render));
    console.error(`re-rendered ${files.markdown} and ${files.svg}`);
    return 0;
  }
  const datasets = opts.dataset.split(',').map((s) => s.trim()).filter(Boolean);
  const peerNames = opts.peers === 'none' ? [] : opts.peers.split(',').map((s) => s.trim()).filter(Boolean);
  const specs = specList(opts.specs);
  let failures = 0;
  for (const name of datasets) {
    let dataset;
    try {
      dataset = await suite.loadDataset(name, {
        queries: opts.queriesFile,
        groundTruth: opts.gtFile,
        metric: opts.metric,
        queryCount: opts.queryCount,
        trainCount: opts.trainCount,
      });
    } catch (error) {
      if (error.code === 'ERR_QUIVER_DATASET_UNAVAILABLE') {
        console.error(`skip dataset ${name}: ${error.message}`);
        continue;
      }
      throw error;
    }
    const peers = suite.createPeers(peerNames, {
      hnsw: { m: opts.hnswM, efConstruction: opts.efConstruction },
      lancedb: { partitions: opts.lancedbPartitions, subVectors: opts.lancedbSubvectors },
      faiss: {
        script: path.join(ROOT, 'bench', 'peers', 'faiss_peer.py'),
        python: opts.python,
        factories: opts.faissSpecs ? specList(opts.faissSpecs) : undefined,
      },
    });
    const result = await suite.runSuite({
      dataset,
      specs,
      nprobe: opts.nprobe,
      refine: opts.refine,
      ef: opts.ef,
      k: opts.k,
      recallK: opts.recallK,
      minSeconds: opts.minSeconds,
      rounds: opts.rounds,
      seed: opts.seed,
      peers,
      anchors: loadAnchors(opts.anchors, dataset.name),
      machine: engineFacts(),
      onEvent: opts.progress ? suite.suiteProgress() : undefined,
    });
    const out = opts.out
      ? datasets.length > 1 ? path.join(opts.out, dataset.name) : opts.out
      : path.join(ROOT, 'bench', 'results', dataset.name);
    const files = suite.writeSuiteOutputs(result, out);
    console.error(`${dataset.name}: ${result.rows.length} rows, ${result.skipped.length} skipped → ${Object.values(files).join(', ')}`);
    for (const s of result.skipped) console.error(`  skipped ${s.system}${s.spec ? ' ' + s.spec : ''}: ${s.reason}`);
    if (opts.json) console.log(JSON.stringify(result, null, 2));
    if (result.rows.length === 0) failures++;
  }
  return failures ? 1 : 0;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`run-suite: ${error.stack ?? error}`);
    process.exitCode = 1;
  },
);
