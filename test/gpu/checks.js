'use strict';
// GPU checks through the public API: the same functions run under tap (test/gpu.test.ts, here and in CI, where
// they skip without a GPU) and under plain Node on the GPU machine (test/gpu/run.js), which has no node_modules.
// Each check throws an AssertionError on failure and returns a short summary line on success.
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..');

function loadSift() {
  const dir = path.join(root, 'data', 'bigann10k');
  const read = (file) => {
    const bytes = fs.readFileSync(path.join(dir, file));
    const dim = bytes.readInt32LE(0);
    const n = bytes.length / (4 + dim);
    const out = new Float32Array(n * dim);
    for (let i = 0; i < n; ++i) for (let j = 0; j < dim; ++j) out[i * dim + j] = bytes[i * (4 + dim) + 4 + j];
    return { n, dim, data: out };
  };
  return { base: read('bigann10k_heldout_base.bvecs'), queries: read('bigann10k_heldout_query.bvecs') };
}

function overlap(a, b, nq, k) {
  let same = 0;
  for (let q = 0; q < nq; ++q) {
    const set = new Set(Array.from(a.subarray(q * k, (q + 1) * k)));
    for (const id of b.subarray(q * k, (q + 1) * k)) if (set.has(id)) ++same;
  }
  return same / (nq * k);
}

function checks(quiver) {
  const { base, queries } = loadSift();
  const dim = base.dim;
  return {
    'quiver.gpu reports a usable device'() {
      const g = quiver.gpu;
      assert.equal(g.compiled, true);
      assert.equal(g.available, true, g.reason);
      assert.ok(g.name.length > 0 && g.totalMemory > 0);
      return `${g.name}, ${(g.totalMemory / 2 ** 30).toFixed(1)} GiB, compute ${g.computeCapability}`;
    },
    async 'train, add and search on the GPU match the CPU (PQ16x8, IVF64,PQ16x8)'() {
      const lines = [];
      for (const [spec, nprobe] of [['PQ16x8', 1], ['IVF64,PQ16x8', 16]]) {
        const gpuIndex = await quiver.Index.train(spec, base.data, { dim, device: 'cuda', seed: 7 });
        await gpuIndex.add(base.data, undefined, { device: 'cuda' });
        const cpuRes = await gpuIndex.search(queries.data, 10, { nprobe });
        const gpuRes = await gpuIndex.search(queries.data, 10, { nprobe, device: 'cuda' });
        const o = overlap(cpuRes.ids, gpuRes.ids, queries.n, 10);
        assert.ok(o >= 0.99, `${spec}: GPU and CPU results overlap ${o}`);
        // The same trained codebook encodes to (nearly) the same codes on either device.
        const sync = gpuIndex.searchSync(queries.data, 10, { nprobe, device: 'cuda' });
        assert.deepEqual(Array.from(sync.ids), Array.from(gpuRes.ids));
        lines.push(`${spec}: overlap ${o.toFixed(4)}`);
        gpuIndex.close();
      }
      return lines.join('; ');
    },
    async 'codec encode on the GPU equals the CPU (PQ16x8, RQ8x8 beam 4)'() {
      // Equal codes for PQ; for beam search, entries whose errors tie up to rounding may swap, so the check is
      // that every vector's reconstruction error matches.
      const lines = [];
      for (const spec of ['PQ16x8', 'RQ8x8,beam=4']) {
        const codec = await quiver.Codec.train(spec, base.data, { dim, iterations: 10 });
        const cpu = codec.encode(base.data);
        const gpu = await codec.encodeAsync(base.data, { device: 'cuda' });
        let same = 0;
        for (let i = 0; i < base.n; ++i) {
          const a = cpu.subarray(i * codec.codeSize, (i + 1) * codec.codeSize);
          const b = gpu.subarray(i * codec.codeSize, (i + 1) * codec.codeSize);
          if (Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0) ++same;
        }
        const rc = codec.decode(cpu), rg = codec.decode(gpu);
        let worse = 0;
        for (let i = 0; i < base.n; ++i) {
          let a = 0, b = 0;
          for (let j = 0; j < dim; ++j) {
            const x = base.data[i * dim + j];
            a += (x - rc[i * dim + j]) ** 2;
            b += (x - rg[i * dim + j]) ** 2;
          }
          if (b > a * (1 + 1e-4) + 1e-3) ++worse;
        }
        assert.ok(worse <= base.n / 1000, `${spec}: ${worse} vectors encode worse on the GPU`);
        if (spec.startsWith('PQ')) assert.ok(same >= 0.995 * base.n, `${spec}: ${same} of ${base.n} codes equal`);
        lines.push(`${spec}: ${(same / base.n * 100).toFixed(2)}% codes equal`);
      }
      return lines.join('; ');
    },
    'bad device values are clear errors'() {
      const index = quiver.Index.trainSync('Flat', base.data.subarray(0, dim * 10), { dim });
      index.addSync(base.data.subarray(0, dim * 10));
      assert.throws(() => index.searchSync(queries.data, 1, { device: 'tpu' }), /options\.device: expected 'cpu' or 'cuda'/);
      assert.throws(() => index.searchSync(queries.data, 1, { device: 1 }), TypeError);
      index.close();
      return 'ok';
    },
  };
}

module.exports = { checks, loadSift };
