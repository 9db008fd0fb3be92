// The command line: the demo prints real results; bad flags exit with code 2 and say why.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import t from 'tap';

import { ROOT } from './helpers';

const bin = path.join(ROOT, 'bin', 'quiver.js');

t.test('quiver demo --json measures Flat and PQ on the embedded data', async (t) => {
  const run = spawnSync(process.execPath, [bin, 'demo', '--specs', 'Flat;PQ8x8', '--json'], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  const result = JSON.parse(run.stdout);
  t.equal(result.base, 9900);
  t.equal(result.rows.length, 2);
  const [flat, pq] = result.rows;
  t.equal(flat.spec, 'Flat');
  t.equal(flat.recallAt1, 1);
  t.equal(flat.bytesPerVector, 512);
  t.equal(pq.bytesPerVector, 8);
  t.ok(pq.tenRecallAt10 > 0.5 && pq.tenRecallAt10 < 1, `PQ8x8 10-recall@10 ${pq.tenRecallAt10}`);
  t.ok(pq.batchQps > 0 && pq.singleQps > 0);
});

t.test('the demo table is printed without --json', async (t) => {
  const run = spawnSync(process.execPath, [bin, 'demo', '--specs', 'Flat', '--no-progress'], { encoding: 'utf8' });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /\| Flat +\| +512 \|/);
  t.match(run.stdout, /10-R@10/);
});

t.test('bad usage exits 2 with a message; runtime failures exit 1', async (t) => {
  const bad = spawnSync(process.execPath, [bin, 'demo', '--seed', 'abc'], { encoding: 'utf8' });
  t.equal(bad.status, 2);
  t.match(bad.stderr, /--seed must be an integer/);
  const unknown = spawnSync(process.execPath, [bin, 'frobnicate'], { encoding: 'utf8' });
  t.equal(unknown.status, 2);
  t.match(unknown.stderr, /unknown command/);
  const failing = spawnSync(process.execPath, [bin, 'demo', '--specs', 'PQ999', '--json'], { encoding: 'utf8' });
  t.equal(failing.status, 1);
  t.match(failing.stderr, /quiver: spec "PQ999"/);
});
