#!/usr/bin/env node
// Micro-benchmarks (benchmark.js) of quiver's hot paths, one thread, per SIMD level the CPU supports:
//   (a) ADC scan throughput of exhaustive PQ indexes: codes scanned per second per core
//       (= base size × queries per second, one query per call, k = 10);
//   (b) the boundary cost of one call: searchSync (one thread, and threads left to the default) and the async
//       search of 1 query on a 16-vector Flat index,
//       where the work is negligible and what remains is argument checks, copies and (async) the thread hop;
//   (c) exhaustive Flat search on the same base, for reference (float vectors scanned per second).
// Synthetic uniform data: throughput does not depend on what the vectors mean.
//
//   node bench/micro/benchmark.js [--n 200000] [--dim 128] [--specs "PQ8x8;PQ16x8;PQ16x4fs;PQ32x4fs"] [--json FILE]
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Benchmark = require('benchmark');
const { Command, InvalidArgumentError } = require('commander');

const ROOT = path.join(__dirname, '..', '..');
const entry = path.join(ROOT, 'dist', 'cjs', 'index.js');
if (!fs.existsSync(entry)) {
  console.error(`micro: ${entry} is missing; build first with "npm run build"`);
  process.exit(1);
}
const quiver = require(entry);
const { machineInfo } = require(path.join(ROOT, 'dist', 'cjs', 'suite', 'measure.js'));

/** Deterministic uniform floats in [0, 1) (xorshift32), so every run scans the same codes. */
function uniform(count, seed) {
  const out = new Float32Array(count);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 4294967296;
  }
  return out;
}

/** Runs one benchmark.js case and resolves with its mean seconds per call and relative margin of error. */
function measure(name, fn, options = {}) {
  return new Promise((resolve, reject) => {
    const bench = new Benchmark(name, {
      ...options,
      minSamples: 5,
      maxTime: options.maxTime ?? 1.5,
      fn,
      onComplete: (event) => {
        const b = event.target;
        if (b.error) reject(b.error);
        else resolve({ name, hz: b.hz, meanSeconds: b.stats.mean, rme: b.stats.rme, samples: b.stats.sample.length });
      },
    });
    bench.run({ async: true });
  });
}

const positiveInt = (name) => (v) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer`);
  return n;
};

async function main() {
  const opts = new Command()
    .name('micro')
    .option('--n <n>', 'base vectors for the scan benchmarks', positiveInt('--n'), 200000)
    .option('--dim <d>', 'dimension', positiveInt('--dim'), 128)
    .option('--specs <list>', 'exhaustive PQ specs to scan, ";"-separated', 'PQ8x8;PQ16x8;PQ32x8;PQ16x4fs;PQ32x4fs')
    .option('--levels <list>', 'SIMD levels (default: every supported one)')
    .option('--json <file>', 'also write the results as JSON')
    .parse(process.argv)
    .opts();
  const { n, dim } = opts;
  const levels = opts.levels ? opts.levels.split(',') : quiver.supportedSimdLevels();
  const specs = opts.specs.split(';').map((s) => s.trim()).filter(Boolean);
  const machine = machineInfo();
  console.log(`quiver micro-benchmarks: ${machine.cpu}, Node ${machine.node}, levels ${levels.join(', ')}; n = ${n}, d = ${dim}, one thread`);

  const base = uniform(n * dim, 1);
  const queries = uniform(64 * dim, 2);
  const query = (i) => queries.subarray((i % 64) * dim, ((i % 64) + 1) * dim);
  const trainCount = Math.min(n, 20000);
  // Other processes slow every figure here; the load average tells a reader how much.
  const results = { machine, loadAverageAtStart: os.loadavg()[0], n, dim, scan: [], flat: [], boundary: [] };

  // (a) ADC scan: build each index once (training is not what is measured), then scan at every level.
  for (const spec of specs) {
    let index;
    try {
      index = await quiver.Index.train(spec, base.subarray(0, trainCount * dim), { dim, seed: 1 });
      await index.add(base);
    } catch (error) {
      console.log(`(a) ${spec}: skipped: ${error.message}`);
      results.scan.push({ spec, error: error.message });
      continue;
    }
    for (const level of levels) {
      quiver.setSimdLevel(level);
      let i = 0;
      const r = await measure(`${spec} ${level}`, () => index.searchSync(query(i++), 10, { threads: 1 }));
      const codesPerSecond = n * r.hz;
      results.scan.push({ spec, level, codeBytes: index.codeSize, queriesPerSecond: r.hz, codesPerSecond, rme: r.rme });
      console.log(
        `(a) ADC scan ${spec.padEnd(9)} ${level.padEnd(7)} ${(codesPerSecond / 1e6).toFixed(0).padStart(6)} M codes/s/core ` +
          `(${r.hz.toFixed(0)} q/s, ±${r.rme.toFixed(1)}%)`,
      );
    }
    index.close();
  }

  // (c) Flat on the same base, for reference.
  const flat = await quiver.Index.train('Flat', base.subarray(0, dim), { dim });
  await flat.add(base);
  for (const level of levels) {
    quiver.setSimdLevel(level);
    let i = 0;
    const r = await measure(`Flat ${level}`, () => flat.searchSync(query(i++), 10, { threads: 1 }));
    results.flat.push({ level, queriesPerSecond: r.hz, vectorsPerSecond: n * r.hz, rme: r.rme });
    console.log(`(c) Flat scan       ${level.padEnd(7)} ${((n * r.hz) / 1e6).toFixed(1).padStart(6)} M vectors/s/core (${r.hz.toFixed(1)} q/s, ±${r.rme.toFixed(1)}%)`);
  }
  flat.close();
  quiver.setSimdLevel(levels[levels.length - 1]);

  // (b) boundary cost: the smallest possible work per call.
  const tinyDim = 8;
  const tinyBase = uniform(16 * tinyDim, 3);
  const tiny = await quiver.Index.train('Flat', tinyBase, { dim: tinyDim });
  await tiny.add(tinyBase);
  const tinyQuery = tinyBase.subarray(0, tinyDim);
  const sync = await measure('searchSync, 1 query', () => tiny.searchSync(tinyQuery, 1, { threads: 1 }));
  // Threads left to the default, as most callers leave them: the call then also asks how many threads exist.
  const syncDefault = await measure('searchSync, default threads', () => tiny.searchSync(tinyQuery, 1));
  const asyncCall = await measure(
    'search (async), 1 query',
    (deferred) => {
      tiny.search(tinyQuery, 1, { threads: 1 }).then(() => deferred.resolve());
    },
    { defer: true },
  );
  tiny.close();
  for (const r of [sync, syncDefault, asyncCall]) {
    results.boundary.push({ call: r.name, callsPerSecond: r.hz, microsecondsPerCall: r.meanSeconds * 1e6, rme: r.rme });
    console.log(`(b) boundary ${r.name.padEnd(24)} ${(r.meanSeconds * 1e6).toFixed(2).padStart(7)} µs/call (${r.hz.toFixed(0)} calls/s, ±${r.rme.toFixed(1)}%)`);
  }

  results.loadAverageAtEnd = os.loadavg()[0];
  console.log(`load average (1 min) at start ${results.loadAverageAtStart.toFixed(2)}, at end ${results.loadAverageAtEnd.toFixed(2)} on ${machine.cores} threads`);
  if (opts.json) {
    fs.mkdirSync(path.dirname(path.resolve(opts.json)), { recursive: true });
    fs.writeFileSync(opts.json, JSON.stringify(results, null, 2) + '\n');
  }
}

main().catch((error) => {
  console.error(`micro: ${error.stack ?? error}`);
  process.exitCode = 1;
});
