#!/usr/bin/env node
// Where the cost of an async search goes: one awaited call at a time on a 16-vector Flat index (negligible
// work), next to the same search done synchronously and to Node's own libuv thread-pool round trips
// (fs.promises.stat, crypto.pbkdf2 with 1 iteration), which pay the same hop: queue to a pool thread, wake it,
// run, then wake the event loop (uv_async) and resolve the promise. Reports the best and the median of 5
// rounds of N calls, in µs per call, and the load average. Run after `npm run build`:
//   node bench/micro/async-overhead.js [N]
'use strict';
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Index } = require(path.join(__dirname, '..', '..', 'dist', 'cjs', 'index.js'));

const N = Number(process.argv[2] || 4000);

async function time(name, call) {
  for (let i = 0; i < 500; i++) await call(); // warm-up
  const rounds = [];
  for (let r = 0; r < 5; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < N; i++) await call();
    rounds.push(Number(process.hrtime.bigint() - start) / N / 1000);
  }
  rounds.sort((a, b) => a - b);
  const row = { call: name, bestMicroseconds: rounds[0], medianMicroseconds: rounds[2] };
  console.log(`${name.padEnd(44)} best ${rounds[0].toFixed(2).padStart(7)} µs   median ${rounds[2].toFixed(2).padStart(7)} µs`);
  return row;
}

(async () => {
  const dim = 16;
  const base = Float32Array.from({ length: 16 * dim }, (_, i) => Math.sin(i));
  const index = Index.trainSync('Flat', base, { dim });
  index.addSync(base);
  const q = base.subarray(0, dim);
  console.log(`# ${os.cpus()[0].model}, ${os.cpus().length} CPUs, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const rows = [];
  rows.push(await time('await Promise.resolve() (floor)', () => Promise.resolve()));
  rows.push(await time('await setImmediate (one loop turn)', () => new Promise((resolve) => setImmediate(resolve))));
  rows.push(await time('index.searchSync, 1 query', async () => index.searchSync(q, 1)));
  rows.push(await time('index.search (async), 1 query', () => index.search(q, 1)));
  rows.push(await time('fs.promises.stat (libuv pool hop)', () => fs.promises.stat('/')));
  rows.push(await time('crypto.pbkdf2, 1 iteration (libuv pool hop)', () => new Promise((resolve) => crypto.pbkdf2('a', 'b', 1, 8, 'sha1', resolve))));
  console.log(`# load average after: ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  if (process.env.QUIVER_BENCH_JSON) fs.writeFileSync(process.env.QUIVER_BENCH_JSON, JSON.stringify({ machine: os.cpus()[0].model, loadAverage: os.loadavg(), n: N, rows }, null, 2) + '\n');
})();
