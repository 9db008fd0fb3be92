#!/usr/bin/env node
// Compares search speed of two or more builds of the addon on one saved index, from JavaScript, one thread:
// rounds alternate between the builds (a fresh process each, QUIVER_ADDON selecting the build), so that this
// machine's drift (±20 % over minutes) falls on every build alike; prints best and median q/s per build, one
// query per call and all queries in one call, and checks that every build returns the same ids.
//
//   node bench/save-index.js --dataset fashion-mnist --spec PQ32x4fs --out /tmp/quiver-bench
//   node bench/ab-search.js --index /tmp/quiver-bench/PQ32x4fs.qvr --queries /tmp/quiver-bench/queries.fvecs \
//       --addons /tmp/before.node,/tmp/after.node [--rounds 10] [--seconds 1] [--k 10] [--out report.md]
'use strict';
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const { Command } = require('commander');
const { loadDist, integerOption, writeReport, runMain } = require('./common');

// Child mode: time one build (the one QUIVER_ADDON names) and print one JSON line.
async function child(options) {
  const { Index } = loadDist('ab-search', 'index.js');
  const { readVectors } = loadDist('ab-search', 'io.js');
  const { data: queries, n, dim } = await readVectors(options.queries);
  const index = Index.loadSync(options.index);
  const search = { threads: 1 };
  const k = options.k;
  const first = index.searchSync(queries, k, search);  // warm-up, and the ids every build must agree on
  const hash = crypto.createHash('sha256').update(Buffer.from(first.ids.buffer)).digest('hex').slice(0, 16);
  const budget = BigInt(Math.round(options.seconds * 1e9));
  const rate = (pass) => {
    const start = process.hrtime.bigint();
    let done = 0;
    while (process.hrtime.bigint() - start < budget) done += pass();
    return done / (Number(process.hrtime.bigint() - start) / 1e9);
  };
  const single = rate(() => {
    for (let i = 0; i < n; i++) index.searchSync(queries.subarray(i * dim, (i + 1) * dim), k, search);
    return n;
  });
  const batch = rate(() => {
    index.searchSync(queries, k, search);
    return n;
  });
  console.log(JSON.stringify({ single, batch, hash, rows: index.size }));
  return 0;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function parent(options) {
  const addons = (options.addons ?? '').split(',').filter(Boolean);
  if (addons.length < 1) {
    console.error('ab-search: --addons: expected one or more comma-separated .node files');
    return 2;
  }
  const runs = new Map(addons.map((a) => [a, []]));
  const args = [__filename, '--child', '--index', options.index, '--queries', options.queries, '--k', String(options.k),
    '--seconds', String(options.seconds)];
  for (let round = 0; round < options.rounds; round++) {
    for (const addon of addons) {
      const r = spawnSync(process.execPath, args, { env: { ...process.env, QUIVER_ADDON: path.resolve(addon) }, encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`build ${addon} failed (exit ${r.status}):\n${r.stderr}`);
      runs.get(addon).push(JSON.parse(r.stdout.trim().split('\n').pop()));
    }
  }
  const hashes = new Set([...runs.values()].flat().map((r) => r.hash));
  const rows = runs.get(addons[0])[0].rows;
  const load = require('node:os').loadavg().map((v) => v.toFixed(2)).join(' ');
  const lines = [
    `Index ${options.index} (${rows} rows), queries ${options.queries}, k = ${options.k}, one thread; ` +
      `${options.rounds} alternating rounds of ${options.seconds} s per figure; load average after: ${load}; ` +
      `${new Date().toISOString()}.`,
    `Results identical across builds: ${hashes.size === 1 ? 'yes' : `NO (${[...hashes].join(', ')})`}.`,
    '',
    '| build | single q/s best | median | codes/s (median) | batch q/s best | median | codes/s (median) |',
    '|---|---:|---:|---:|---:|---:|---:|',
  ];
  const fmt = (v) => Math.round(v).toLocaleString('en-US');
  const giga = (v) => `${((v * rows) / 1e9).toFixed(2)} G`;
  for (const [addon, list] of runs) {
    const singles = list.map((r) => r.single), batches = list.map((r) => r.batch);
    lines.push(`| ${addon} | ${fmt(Math.max(...singles))} | ${fmt(median(singles))} | ${giga(median(singles))} | ` +
      `${fmt(Math.max(...batches))} | ${fmt(median(batches))} | ${giga(median(batches))} |`);
  }
  console.log(lines.join('\n'));
  writeReport(options.out, lines);
  return hashes.size === 1 ? 0 : 1;
}

const program = new Command('ab-search')
  .description('alternating A/B timing of addon builds on one saved index (one thread)')
  .requiredOption('--index <file>', 'saved index (bench/save-index.js)')
  .requiredOption('--queries <file>', 'queries (.fvecs, .fbin, …)')
  .option('--addons <list>', 'comma-separated addon builds (.node files); required except in --child mode')
  .option('--rounds <n>', 'alternating rounds', integerOption('--rounds'), 10)
  .option('--seconds <s>', 'seconds per timing', (v) => {
    const s = Number(v);
    if (!(s > 0)) throw new Error(`--seconds must be a positive number, got "${v}"`);
    return s;
  }, 1)
  .option('-k, --k <n>', 'results per query', integerOption('--k'), 10)
  .option('--out <file>', 'also write the Markdown table here')
  .option('--child', 'internal: time the build QUIVER_ADDON names');
program.parse();
const options = program.opts();
runMain(() => (options.child ? child(options) : parent(options)));
