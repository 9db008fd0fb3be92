#!/usr/bin/env node
// Accuracy benchmark (issue 3): quiver's codecs against faiss 1.7.3's at the same code budget (64 and 128
// bits). For each codec: training and encoding time, MSE of the reconstructions (squared L2 error per vector,
// averaged), and recall of an exact search over the reconstructions (1-recall@1/@10/@100, 10-recall@10) —
// the ranking that asymmetric distance computation produces — so both systems are scored the same way.
// Specs quiver does not support yet are reported as "unsupported: <error>" rather than stopping the run.
//
//   node bench/accuracy.js --dataset sift10k --bits 64,128 [--out bench/results/accuracy-sift10k]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Command, InvalidArgumentError } = require('commander');

const { ROOT, engineName, integerOption, loadDatasetOrSkip, loadDist } = require('./common');

const QUIVER_SPECS = {
  64: 'PQ8x8;OPQ8,PQ8x8;RQ8x8,beam=1,refit=0;RQ8x8,beam=1;RQ8x8;RQ8x8,beam=16;TRQ8x8;TRQ8x8,beam=5;TRQ1x8,PQ7x8;TRQ1x8,PQ14x4;PRQ2x4x8;PRQ2x4x8,beam=5,refit=3',
  128: 'PQ16x8;OPQ16,PQ16x8;RQ16x8,beam=1;RQ16x8;RQ16x8,beam=16;TRQ16x8;TRQ1x8,PQ15x8;TRQ1x8,PQ30x4;PRQ2x8x8;PRQ2x8x8,beam=5,refit=3',
};

// faiss's counterparts. RQ beams are set explicitly before training (faiss trains and encodes with the same
// max_beam_size; its default is 5, as quiver's RQ default): "RQ8x8" is the default of both. LSQ has no quiver
// counterpart and PRQ keeps faiss's default beam (reported in the output).
const FAISS_CODECS = {
  64: [
    { name: 'PQ8x8', factory: 'PQ8x8' },
    { name: 'OPQ8,PQ8x8', factory: 'OPQ8,PQ8x8' },
    { name: 'RQ8x8,beam=1', factory: 'RQ8x8', beam: 1 },
    { name: 'RQ8x8', factory: 'RQ8x8', beam: 5 },
    { name: 'RQ8x8,beam=16', factory: 'RQ8x8', beam: 16 },
    { name: 'LSQ8x8', factory: 'LSQ8x8' },
    { name: 'PRQ2x4x8', factory: 'PRQ2x4x8' },
  ],
  128: [
    { name: 'PQ16x8', factory: 'PQ16x8' },
    { name: 'OPQ16,PQ16x8', factory: 'OPQ16,PQ16x8' },
    { name: 'RQ16x8,beam=1', factory: 'RQ16x8', beam: 1 },
    { name: 'RQ16x8', factory: 'RQ16x8', beam: 5 },
    { name: 'RQ16x8,beam=16', factory: 'RQ16x8', beam: 16 },
    { name: 'LSQ16x8', factory: 'LSQ16x8' },
    { name: 'PRQ2x8x8', factory: 'PRQ2x8x8' },
  ],
};

const quiver = loadDist('accuracy', 'index.js');
const suite = loadDist('accuracy', 'suite.js');

function recallOf(dataset, ids, k) {
  return {
    r1: quiver.oneRecallAt(ids, k, dataset.groundTruth, dataset.gtK, 1),
    r10: quiver.oneRecallAt(ids, k, dataset.groundTruth, dataset.gtK, 10),
    r100: quiver.oneRecallAt(ids, k, dataset.groundTruth, dataset.gtK, Math.min(100, k)),
    tenAt10: quiver.kRecallAt(ids, k, dataset.groundTruth, dataset.gtK, 10),
  };
}

function meanSquaredError(original, decoded, dim) {
  let total = 0;
  for (let i = 0; i < original.length; i += dim) {
    let err = 0;
    for (let j = 0; j < dim; j++) {
      const d = original[i + j] - decoded[i + j];
      err += d * d;
    }
    total += err;
  }
  return total / (original.length / dim);
}

async function measureQuiver(dataset, spec, k, seed) {
  const { dim } = dataset;
  const train = dataset.base.subarray(0, (dataset.trainCount ?? dataset.baseCount) * dim);
  let codec;
  let start = performance.now();
  try {
    codec = await quiver.Codec.train(spec, train, { dim, seed });
  } catch (error) {
    return { system: 'quiver', name: spec, error: `unsupported: ${error.message}` };
  }
  const trainSeconds = (performance.now() - start) / 1000;
  start = performance.now();
  const codes = await codec.encodeAsync(dataset.base);
  const encodeSeconds = (performance.now() - start) / 1000;
  const decoded = await codec.decodeAsync(codes);
  const flat = await quiver.Index.train('Flat', decoded, { dim });
  await flat.add(decoded);
  const { ids } = await flat.search(dataset.queries, k);
  flat.close();
  return {
    system: 'quiver',
    name: spec,
    spec: codec.spec,
    codeBytes: codec.codeSize,
    trainSeconds,
    encodeSeconds,
    mse: meanSquaredError(dataset.base, decoded, dim),
    ...recallOf(dataset, ids, k),
  };
}

async function measureFaiss(dataset, codecs, k, python, onProgress) {
  const script = path.join(ROOT, 'bench', 'peers', 'faiss_peer.py');
  const probe = spawnProbe(python, script);
  if (probe.skip) return { skip: probe.skip };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-accuracy-'));
  try {
    const answer = await suite.runPythonPeer(
      python,
      script,
      'accuracy',
      {
        base: suite.writeBinVectors(dir, 'base', dataset.base, dataset.baseCount, dataset.dim),
        queries: suite.writeBinVectors(dir, 'queries', dataset.queries, dataset.queryCount, dataset.dim),
        trainCount: dataset.trainCount,
        codecs,
        k,
        outDir: dir,
      },
      (line) => {
        if (line.startsWith('{')) onProgress(JSON.parse(line).progress);
      },
    );
    const rows = answer.codecs.map((c) => {
      const base = { system: `faiss ${answer.version}`, name: c.name, spec: c.factory + (c.beam ? ` (beam ${c.beam})` : '') };
      if (c.error) return { ...base, error: `faiss error: ${c.error}` };
      const buf = fs.readFileSync(c.idsFile);
      const ids = new BigInt64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
      return { ...base, codeBytes: c.codeBytes, trainSeconds: c.trainSeconds, encodeSeconds: c.encodeSeconds, mse: c.mse, ...recallOf(dataset, ids, k) };
    });
    return { version: answer.version, threads: answer.threads, rows };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function spawnProbe(python, script) {
  const { spawnSync } = require('node:child_process');
  const run = spawnSync(python, [script, 'version'], { encoding: 'utf8' });
  if (run.error || run.status !== 0) {
    return { skip: `faiss unavailable (${python}: ${(run.error?.message ?? run.stderr.trim().split('\n').pop()) || 'failed'}); apt-get install -y python3-faiss` };
  }
  return {};
}

const fixed = (v, digits) => (typeof v === 'number' ? v.toFixed(digits) : '—');

function markdownTable(bits, rows) {
  const header = '| method | system | spec | bytes | MSE | 1-R@1 | 1-R@10 | 1-R@100 | 10-R@10 | train s | encode s |';
  const rule = '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|';
  const lines = rows.map((r) =>
    r.error
      ? `| ${r.name} | ${r.system} | ${r.error.replace(/\|/g, '\\|')} | | | | | | | | |`
      : `| ${r.name} | ${r.system} | ${r.spec} | ${r.codeBytes} | ${fixed(r.mse, 1)} | ${fixed(r.r1, 3)} | ${fixed(r.r10, 3)} | ${fixed(r.r100, 3)} | ${fixed(r.tenAt10, 3)} | ${fixed(r.trainSeconds, 2)} | ${fixed(r.encodeSeconds, 3)} |`,
  );
  return [`### ${bits}-bit codes`, '', header, rule, ...lines, ''].join('\n');
}

/** Orders rows by method so each quiver row sits above its faiss counterpart. */
function interleave(quiverRows, faissRows) {
  const out = [];
  const used = new Set();
  for (const q of quiverRows) {
    out.push(q);
    const f = faissRows.find((r) => r.name === q.name);
    if (f) {
      out.push(f);
      used.add(f);
    }
  }
  return out.concat(faissRows.filter((r) => !used.has(r)));
}

async function main(argv) {
  const program = new Command()
    .name('accuracy')
    .description('quiver vs faiss codecs at 64 and 128 bits: MSE, recall over reconstructions, train and encode time')
    .option('--dataset <name>', 'preset (sift10k, fashion-mnist), .hdf5 file, or base file with --queries-file/--gt-file', 'sift10k')
    .option('--queries-file <file>')
    .option('--gt-file <file>')
    .option('--bits <list>', 'code budgets', '64,128')
    .option('--specs64 <list>', 'quiver specs for 64-bit codes, ";"-separated', QUIVER_SPECS[64])
    .option('--specs128 <list>', 'quiver specs for 128-bit codes, ";"-separated', QUIVER_SPECS[128])
    .option('--faiss-codecs <list>', 'faiss codecs to run, by name (default: all counterparts)')
    .option('--no-faiss', 'quiver only')
    .option('--python <path>', 'python with faiss importable', '/usr/bin/python3')
    .option('--seed <n>', 'training seed', integerOption('--seed', 0), 1234)
    .option('--train-count <n>', 'training vectors (the first n of the base; default: the preset\'s)', integerOption('--train-count'))
    .option('--query-count <n>', 'queries (the first n; default: the preset\'s)', integerOption('--query-count'))
    .option('--out <dir>', 'also write accuracy.json and accuracy.md here');
  program.parse(argv);
  const opts = program.opts();

  const dataset = await loadDatasetOrSkip(suite, opts.dataset, {
    queries: opts.queriesFile,
    groundTruth: opts.gtFile,
    trainCount: opts.trainCount,
    queryCount: opts.queryCount,
  });
  if (!dataset) return 0;
  const k = Math.min(100, dataset.gtK, dataset.baseCount);
  const machine = { ...suite.machineInfo(), engine: engineName() };
  const report = { dataset: { name: dataset.name, baseCount: dataset.baseCount, queryCount: dataset.queryCount, dim: dataset.dim, trainCount: dataset.trainCount ?? dataset.baseCount }, machine, budgets: {} };
  const sections = [];
  const write = () => {
    const markdown = [
      `## Codec accuracy on ${dataset.name}: quiver vs faiss`,
      '',
      `${dataset.description}; ${dataset.baseCount} base vectors encoded, ${dataset.queryCount} queries, d = ${dataset.dim}, ` +
        `trained on ${report.dataset.trainCount}. Machine: ${machine.cpu}, ${machine.cores} threads, Node ${machine.node}, SIMD ${machine.simd}, ` +
        `quiver ${machine.engine}, ` +
        `load average ${os.loadavg()[0].toFixed(1)}, ${machine.date}.`,
      '',
      'MSE = squared L2 reconstruction error per vector, averaged over the base. Recall is that of an exact search over the',
      'reconstructions (what asymmetric distance computation ranks by), against the exact ground truth. bytes = code size per',
      'vector as stored (quiver\'s RQ-family codes carry a 4-byte norm). faiss is Debian\'s 1.7.3 without SIMD: its times are',
      'not a speed reference. Both train with all threads.',
      '',
      ...sections,
    ].join('\n');
    if (opts.out) {
      fs.mkdirSync(opts.out, { recursive: true });
      fs.writeFileSync(path.join(opts.out, 'accuracy.json'), JSON.stringify(report, null, 2) + '\n');
      fs.writeFileSync(path.join(opts.out, 'accuracy.md'), markdown);
    }
    return markdown;
  };
  for (const bits of opts.bits.split(',').map((b) => Number(b.trim()))) {
    if (!QUIVER_SPECS[bits]) throw new InvalidArgumentError(`--bits: ${bits} is not 64 or 128`);
    const specs = (bits === 64 ? opts.specs64 : opts.specs128).split(';').map((s) => s.trim()).filter(Boolean);
    const quiverRows = [];
    for (const spec of specs) {
      process.stderr.write(`${bits} bits: quiver ${spec}…\n`);
      quiverRows.push(await measureQuiver(dataset, spec, k, opts.seed));
    }
    let faissRows = [];
    let faissNote = '';
    if (opts.faiss) {
      const wanted = opts.faissCodecs ? new Set(opts.faissCodecs.split(';').map((s) => s.trim())) : null;
      const codecs = FAISS_CODECS[bits].filter((c) => !wanted || wanted.has(c.name));
      process.stderr.write(`${bits} bits: faiss ${codecs.map((c) => c.name).join(', ')} (slow: Debian's build has no SIMD)…\n`);
      const faiss = await measureFaiss(dataset, codecs, k, opts.python, (name) => process.stderr.write(`  faiss ${name} done\n`));
      if (faiss.skip) faissNote = `faiss skipped: ${faiss.skip}`;
      else faissRows = faiss.rows;
    }
    const rows = interleave(quiverRows, faissRows);
    report.budgets[bits] = rows;
    sections.push(markdownTable(bits, rows) + (faissNote ? `\n${faissNote}\n` : ''));
    write();
  }
  console.log(write());
  return 0;
}

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    console.error(`accuracy: ${error.stack ?? error}`);
    process.exitCode = 1;
  },
);
