// The built package loads as CommonJS and as ESM (one shared copy of the classes) and inside worker_threads
// (the addon is context-aware).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import t from 'tap';

import { ROOT } from './helpers';

const built = fs.existsSync(path.join(ROOT, 'dist/cjs/index.js')) && fs.existsSync(path.join(ROOT, 'dist/esm/index.mjs'));

t.test('require and import give the same API', { skip: built ? false : 'dist/ is not built (npm run build:ts)' }, async (t) => {
  const script = `
    const cjs = require('quiver');
    import('quiver').then((esm) => {
      const names = Object.keys(cjs).sort();
      if (JSON.stringify(names) !== JSON.stringify(Object.keys(esm).filter((n) => n !== 'default').sort())) throw new Error('export lists differ');
      if (esm.Index !== cjs.Index) throw new Error('two copies of Index');
      const dim = 4;
      const v = new Float32Array([0,0,0,0, 1,1,1,1, 5,5,5,5]);
      const index = esm.Index.trainSync('Flat', v, { dim });
      index.addSync(v);
      console.log(JSON.stringify({ names, hit: String(index.searchSync(new Float32Array([1,1,1,0.9]), 1).ids[0]) }));
    });`;
  // Resolve 'quiver' by its own name, as a user would (package self-reference through "exports").
  const out = execFileSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
  const parsed = JSON.parse(out);
  t.ok(parsed.names.includes('Index') && parsed.names.includes('Codec') && parsed.names.includes('readVectors'));
  t.equal(parsed.hit, '1');
});

t.test('works inside worker_threads, several at once', { skip: built ? false : 'dist/ is not built' }, async (t) => {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const { Index } = require(${JSON.stringify(path.join(ROOT, 'dist/cjs/index.js'))});
    (async () => {
      const dim = 8;
      const v = new Float32Array(200 * dim).map((_, i) => Math.sin(i * (workerData + 1)));
      const index = await Index.train('PQ2x4', v, { dim, iterations: 3 });
      await index.add(v);
      const r = await index.search(v.subarray(0, dim), 3);
      parentPort.postMessage(r.ids.length);
    })().catch((e) => parentPort.postMessage(String(e)));`;
  const results = await Promise.all(
    [0, 1, 2].map(
      (i) =>
        new Promise((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: i });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  t.same(results, [3, 3, 3]);
});
