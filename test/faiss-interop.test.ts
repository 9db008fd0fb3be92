// faiss file interop on the embedded SIFT slice (9 900 base vectors, 100 held-out queries): quiver writes a
// faiss file, Debian's faiss 1.7.3 (/usr/bin/python3 + python3-faiss, via test/faiss_interop.py) reads it and its
// search returns the ids and distances quiver's search returns; faiss trains and writes, quiver reads and finds
// what faiss finds. Damaged files must fail with clear errors. The faiss parts skip, saying so, when
// /usr/bin/python3 or its faiss module is missing.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { Index, readVectors, type SearchResult } from '../lib/index';
import { DEMO_DATA, ROOT, randomFloats } from './helpers';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, 'faiss_interop.py');
const K = 10;
const NPROBE = 8;
// Training on a slice with few iterations keeps the file within its CI budget; quality is not what is tested.
const TRAIN = 2560;

function runPython(request: object): Record<string, unknown> {
  const r = spawnSync(PYTHON, [SCRIPT], { input: JSON.stringify(request), encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`faiss_interop.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function faissVersion(): string | undefined {
  if (!fs.existsSync(PYTHON)) return undefined;
  const r = spawnSync(PYTHON, [SCRIPT], { input: '{"op":"version"}', encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  try {
    return JSON.parse(r.stdout).version as string;
  } catch {
    return undefined;
  }
}

function writeFbin(file: string, data: Float32Array, dim: number): void {
  const header = Buffer.alloc(8);
  header.writeInt32LE(data.length / dim, 0);
  header.writeInt32LE(dim, 4);
  fs.writeFileSync(file, Buffer.concat([header, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

function readResults(prefix: string): { ids: BigInt64Array; distances: Float32Array } {
  const ids = fs.readFileSync(prefix + '.ids');
  const dist = fs.readFileSync(prefix + '.dist');
  return {
    ids: new BigInt64Array(ids.buffer.slice(ids.byteOffset, ids.byteOffset + ids.byteLength)),
    distances: new Float32Array(dist.buffer.slice(dist.byteOffset, dist.byteOffset + dist.byteLength)),
  };
}

// The same distance at every rank (to float rounding: the two sum ADC tables in different orders), and the same
// ids at almost every rank: rounding may swap neighbours whose distances tie, nothing more.
function compare(
  t: Tap.Test,
  label: string,
  ours: { ids: BigInt64Array; distances: Float32Array },
  theirs: { ids: BigInt64Array; distances: Float32Array },
): void {
  t.equal(ours.ids.length, theirs.ids.length, `${label}: result counts`);
  let same = 0;
  let worst = 0;
  for (let i = 0; i < ours.ids.length; i++) {
    if (ours.ids[i] === theirs.ids[i]) same++;
    const a = ours.distances[i];
    const b = theirs.distances[i];
    worst = Math.max(worst, Math.abs(a - b) / Math.max(1, Math.abs(b)));
  }
  const agreement = same / ours.ids.length;
  t.ok(agreement >= 0.95, `${label}: ${(agreement * 100).toFixed(1)}% of the ${ours.ids.length} result ids agree (>= 95%)`);
  t.ok(worst <= 1e-5, `${label}: distances agree to ${worst.toExponential(2)} relative (<= 1e-5)`);
}

function expectError(t: Tap.Test, fn: () => unknown, code: string, pattern: RegExp, label: string): void {
  try {
    fn();
    t.fail(`${label}: expected ${code}`);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    t.equal(err.code, code, `${label}: ${err.code}`);
    t.match(err.message, pattern, `${label}: message says why ("${err.message.slice(0, 120)}")`);
  }
}

t.test('faiss interop', async (t) => {
  const base = await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_base.bvecs'));
  const queries = await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_query.bvecs'));
  const b = base.data as Float32Array;
  const q = queries.data as Float32Array;
  const dim = base.dim;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-faiss-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const baseFile = path.join(dir, 'base.fbin');
  const queryFile = path.join(dir, 'queries.fbin');
  writeFbin(baseFile, b, dim);
  writeFbin(queryFile, q, dim);
  const version = faissVersion();

  // [spec, metric, custom ids, nprobe, faiss type that must come back]
  const exports: [string, 'l2' | 'ip', boolean, number, string][] = [
    ['PQ16x8', 'l2', false, 1, 'IndexPQ'],
    ['PQ16x8', 'ip', true, 1, 'IndexIDMap'],
    ['OPQ16,PQ16x8,iters=4', 'l2', false, 1, 'IndexPreTransform'],
    ['PQ32x4fs', 'l2', false, 1, 'IndexPQ'],
    ['RQ4x8', 'l2', true, 1, 'IndexIDMap'],
    ['RQ5x6,norm=u8', 'l2', false, 1, 'IndexResidualQuantizer'],
    ['IVF64,PQ16x8', 'l2', false, NPROBE, 'IndexIVFPQ'],
    ['IVF64,RQ5x6', 'l2', false, NPROBE, 'IndexIVFResidualQuantizer'],
  ];

  t.test('quiver writes, faiss reads and finds the same neighbours; quiver reads its own file back', async (t) => {
    for (const [spec, metric, customIds, nprobe, faissType] of exports) {
      const label = `${spec} (${metric})`;
      const index = await Index.train(spec, b.subarray(0, TRAIN * dim), { dim, metric, seed: 1234, iterations: 8 });
      const ids = customIds ? BigInt64Array.from({ length: base.n }, (_, i) => 1000n + 7n * BigInt(i)) : null;
      await index.add(b, ids);
      const ours = await index.search(q, K, { nprobe });
      const file = path.join(dir, `quiver-${spec.replace(/[^A-Za-z0-9]/g, '_')}-${metric}.faiss`);
      await index.saveFaiss(file);

      const back = Index.loadFaissSync(file);
      t.equal(back.size, base.n, `${label}: reads back ${base.n} vectors`);
      const again = back.searchSync(q, K, { nprobe });
      if (spec.endsWith('fs')) {
        // Read back as plain PQ<M>x4, whose table sums round differently from fast-scan's exact re-scoring.
        t.equal(back.spec, spec.replace('fs', ''), `${label}: read back as plain 4-bit PQ`);
        compare(t, `${label} read back`, again, ours);
      } else {
        t.equal(back.spec, index.spec.replace(/,iters=\d+/, ''), `${label}: read back with the same spec (OPQ's iteration count is not stored)`);
        t.same(Array.from(again.ids), Array.from(ours.ids), `${label}: read back, quiver finds the same ids`);
        t.same(Array.from(again.distances), Array.from(ours.distances), `${label}: … and the same distances`);
      }

      if (!version) continue;
      const out = path.join(dir, 'faiss-search');
      const info = runPython({ op: 'search', index: file, queries: queryFile, k: K, nprobe, out });
      t.equal(info.type, faissType, `${label}: faiss reads it as ${faissType}`);
      t.equal(info.ntotal, base.n, `${label}: faiss sees ${base.n} vectors`);
      compare(t, `${label} quiver → faiss`, ours, readResults(out));
    }
  });

  t.test('faiss writes, quiver reads and finds the same neighbours', async (t) => {
    if (!version) {
      t.skip(`${PYTHON} with the faiss module (Debian python3-faiss) is not available`);
      return;
    }
    t.comment(`faiss ${version}`);
    // faiss files carry the encoder's beam (these were built with faiss's beam 1); quiver's RQ default is beam 5,
    // so the imported spec names it.
    const builds: [string, Record<string, unknown>, string][] = [
      ['IndexPQ 16x8 L2', { kind: 'pq', metric: 'l2', M: 16, nbits: 8 }, 'PQ16x8'],
      ['IndexPQ 8x8 IP in an IndexIDMap', { kind: 'pq', metric: 'ip', M: 8, nbits: 8, ids_offset: 5 }, 'PQ8x8'],
      ['OPQ16 + IndexPQ 16x8', { kind: 'opq', metric: 'l2', M: 16, nbits: 8 }, 'OPQ16,PQ16x8'],
      ['IndexResidualQuantizer 4x8 norm float', { kind: 'rq', metric: 'l2', M: 4, nbits: 8, norm: 'float' }, 'RQ4x8,beam=1'],
      ['IndexResidualQuantizer 3x6 norm qint8', { kind: 'rq', metric: 'l2', M: 3, nbits: 6, norm: 'qint8' }, 'RQ3x6,beam=1,norm=u8'],
      ['IndexIVFPQ 64, 16x8', { kind: 'ivfpq', metric: 'l2', M: 16, nbits: 8, nlist: 64 }, 'IVF64,PQ16x8'],
      ['IndexIVFResidualQuantizer 64, 3x8', { kind: 'ivfrq', metric: 'l2', M: 3, nbits: 8, nlist: 64 }, 'IVF64,RQ3x8,beam=1'],
    ];
    for (const [label, params, spec] of builds) {
      const file = path.join(dir, `faiss-${params.kind}-${params.M}.faiss`);
      const out = path.join(dir, 'faiss-built');
      const started = Date.now();
      runPython({ op: 'build', ...params, base: baseFile, train_count: TRAIN, queries: queryFile, k: K, nprobe: NPROBE, index: file, out });
      const index = await Index.loadFaiss(file);
      t.equal(index.spec, spec, `${label}: read as ${spec} (faiss build ${Date.now() - started} ms)`);
      t.equal(index.size, base.n, `${label}: ${base.n} vectors`);
      t.equal(index.metric, params.metric, `${label}: metric ${params.metric}`);
      const ours: SearchResult = await index.search(q, K, { nprobe: NPROBE });
      compare(t, `${label} faiss → quiver`, ours, readResults(out));
    }

    // RQ without a stored norm (ST_decompress), in an IndexIDMap: quiver recomputes ‖x̂‖² exactly. faiss decodes
    // every vector for every query in this mode, so a smaller slice keeps it quick.
    const smallBase = path.join(dir, 'base-small.fbin');
    const smallQueries = path.join(dir, 'queries-small.fbin');
    writeFbin(smallBase, b.subarray(0, 2000 * dim), dim);
    writeFbin(smallQueries, q.subarray(0, 20 * dim), dim);
    const file = path.join(dir, 'faiss-rq-decompress.faiss');
    const out = path.join(dir, 'faiss-decompress');
    runPython({
      op: 'build', kind: 'rq', metric: 'l2', M: 3, nbits: 8, norm: 'decompress', ids_offset: 11,
      base: smallBase, train_count: 2000, queries: smallQueries, k: K, index: file, out,
    });
    const rq = await Index.loadFaiss(file);
    t.equal(rq.spec, 'RQ3x8,beam=1', 'IndexIDMap(IndexResidualQuantizer, ST_decompress): read as RQ3x8,beam=1 with f32 norms');
    t.ok(rq.has(11n + 3n * 1999n), 'the IndexIDMap ids are kept');
    compare(t, 'RQ3x8 ST_decompress faiss → quiver', await rq.search(q.subarray(0, 20 * dim), K), readResults(out));
  });

  t.test('what faiss cannot represent is refused with a reason', async (t) => {
    const small = randomFloats(600 * 16, 7);
    const opts = { dim: 16, seed: 1, iterations: 4 };
    const cases: [string, 'l2' | 'ip' | 'cosine', RegExp][] = [
      ['IVF4,TRQ,PQ4x4', 'l2', /no form for TRQ/],
      ['TRQ2x4', 'l2', /TRQ/],
      ['PRQ2x2x4', 'l2', /PRQ/],
      ['SPLIT2,PQ2x4', 'l2', /SPLIT2,PQ2x4/],
      ['PQ4x4', 'cosine', /cosine/],
      ['IVF4,PQ4x4', 'ip', /inner-product IVF/],
      ['PQ4x4,Refine', 'l2', /Refine/],
      ['PQ3x4', 'l2', /divide|uneven/],
      ['Flat', 'l2', /not exported/],
    ];
    for (const [spec, metric, why] of cases) {
      const index = await Index.train(spec, small, { ...opts, metric });
      index.addSync(small.subarray(0, 160));
      expectError(t, () => index.toFaissBuffer(), 'ERR_QUIVER_UNSUPPORTED', why, `${spec} (${metric})`);
    }
    const withCategories = await Index.train('PQ4x4', small, opts);
    withCategories.addSync(small.subarray(0, 32), null, { categories: [1, 2] });
    expectError(t, () => withCategories.toFaissBuffer(), 'ERR_QUIVER_UNSUPPORTED', /categories/, 'categories');
    const empty = await Index.train('PQ4x4', small, opts);
    t.ok(empty.toFaissBuffer().length > 0, 'a trained, empty index exports');
  });

  t.test('damaged faiss files fail with clear errors, never a crash', async (t) => {
    const small = randomFloats(600 * 16, 11);
    const files: Buffer[] = [];
    for (const spec of ['PQ4x8', 'OPQ4,PQ4x8', 'RQ3x5,norm=u8', 'IVF4,PQ4x8', 'IVF4,RQ2x6']) {
      const index = await Index.train(spec, small, { dim: 16, seed: 3, iterations: 4 });
      index.addSync(small.subarray(0, 50 * 16), BigInt64Array.from({ length: 50 }, (_, i) => BigInt(i * 2)));
      files.push(index.toFaissBuffer());
    }
    let truncations = 0;
    for (const bytes of files) {
      Index.fromFaissBuffer(bytes); // the intact file loads
      for (let len = 0; len < bytes.length; len += 7) {
        truncations++;
        try {
          Index.fromFaissBuffer(bytes.subarray(0, len));
          t.fail(`a ${len}-byte prefix of a ${bytes.length}-byte file loaded`);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code !== 'ERR_QUIVER_CORRUPT') t.fail(`prefix ${len}: ${code} ${(e as Error).message}`);
        }
      }
    }
    t.pass(`${truncations} truncated files all fail with ERR_QUIVER_CORRUPT`);

    // Seeded single-byte changes: each either loads (a changed code or centroid) or fails with a quiver error.
    const noise = randomFloats(4000, 5);
    let failed = 0;
    let loaded = 0;
    for (let i = 0; i < 2000; i++) {
      const bytes = Buffer.from(files[i % files.length]);
      const at = Math.floor(((noise[2 * i] + 1) / 2) * bytes.length);
      bytes[at] ^= 1 + Math.floor(((noise[2 * i + 1] + 1) / 2) * 255);
      try {
        const index = Index.fromFaissBuffer(bytes);
        index.searchSync(small.subarray(0, 16), 3, { nprobe: 2 });
        loaded++;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (!/^ERR_QUIVER_(CORRUPT|UNSUPPORTED)$/.test(code)) t.fail(`flip at ${at}: ${code} ${(e as Error).message}`);
        failed++;
      }
    }
    t.pass(`2000 single-byte changes: ${failed} refused with quiver errors, ${loaded} loaded and searched`);

    const pq = files[0];
    const wrongType = Buffer.from(pq);
    wrongType.write('IxSQ', 0, 'latin1');
    expectError(t, () => Index.fromFaissBuffer(wrongType), 'ERR_QUIVER_UNSUPPORTED', /"IxSQ" is not one quiver reads/, 'unknown fourcc');
    const hugeCount = Buffer.from(pq);
    hugeCount.writeBigUInt64LE(2n ** 62n, pq.indexOf('IxPq') + 4 + 33 + 24); // IxPq, header, d, M, nbits, then the count
    expectError(t, () => Index.fromFaissBuffer(hugeCount), 'ERR_QUIVER_CORRUPT', /PQ centroids/, 'absurd centroid count');
    const trailing = Buffer.concat([pq, Buffer.from([0])]);
    expectError(t, () => Index.fromFaissBuffer(trailing), 'ERR_QUIVER_CORRUPT', /unexpected bytes/, 'trailing bytes');
    expectError(t, () => Index.loadFaissSync(path.join(os.tmpdir(), 'no-such-quiver-file.faiss')), 'ERR_QUIVER_IO', /no-such/, 'missing file');
    t.throws(() => Index.fromFaissBuffer('nope' as unknown as Uint8Array), TypeError, 'a string is a TypeError');
  });

  t.test('quiver export / quiver import on the command line', async (t) => {
    const bin = path.join(ROOT, 'bin', 'quiver.js');
    const index = await Index.train('IVF16,PQ8x8', b.subarray(0, 3000 * dim), { dim, seed: 4, iterations: 6 });
    await index.add(b.subarray(0, 3000 * dim));
    const qvr = path.join(dir, 'cli.qvr');
    await index.save(qvr);
    const faissFile = path.join(dir, 'cli.faiss');
    const books = path.join(dir, 'cli-books');
    const run = spawnSync(process.execPath, [bin, 'export', qvr, '--faiss', faissFile, '--codebooks', books], { encoding: 'utf8' });
    t.equal(run.status, 0, run.stderr);
    t.match(run.stdout, /ivf_centroids \[16, 128\], pq_centroids \[8, 256, 16\]/);
    const back = path.join(dir, 'cli-back.qvr');
    const imp = spawnSync(process.execPath, [bin, 'import', faissFile, '-o', back], { encoding: 'utf8' });
    t.equal(imp.status, 0, imp.stderr);
    t.match(imp.stdout, /IVF16,PQ8x8: 3000 vectors/);
    const again = await Index.load(back);
    const before = await index.search(q, K, { nprobe: 4 });
    const after = await again.search(q, K, { nprobe: 4 });
    t.same(Array.from(after.ids), Array.from(before.ids), 'qvr → faiss → qvr searches as before');
    const none = spawnSync(process.execPath, [bin, 'export', qvr], { encoding: 'utf8' });
    t.equal(none.status, 1);
    t.match(none.stderr, /--faiss <file>, --codebooks <dir> or both/);
  });

  t.test('plain export: centroids and codebooks as .npy files with a manifest', async (t) => {
    const index = await Index.train('IVF16,PQ8x8', b.subarray(0, 4000 * dim), { dim, seed: 2 });
    const out = path.join(dir, 'codebooks');
    const manifest = await index.exportCodebooks(out);
    t.same(manifest.arrays.map((a) => [a.name, a.shape]), [
      ['ivf_centroids', [16, dim]],
      ['pq_centroids', [8, 256, dim / 8]],
    ]);
    t.equal(manifest.residual, true);
    t.same(JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')), manifest, 'manifest.json holds the manifest');
    // The arrays are the index's: the faiss file (layout in native/core/faiss_io.h) holds the same floats.
    const faissBytes = index.toFaissBuffer();
    for (const a of manifest.arrays) {
      const npy = fs.readFileSync(path.join(out, a.file));
      t.equal(npy.subarray(0, 6).toString('latin1'), '\x93NUMPY', `${a.file}: npy magic`);
      t.equal(a.dataOffset % 64, 0, `${a.file}: data 64-byte aligned`);
      t.equal(npy.length, a.dataOffset + a.bytes, `${a.file}: size`);
      t.ok(faissBytes.indexOf(npy.subarray(a.dataOffset)) > 0, `${a.file}: the same floats as in the faiss file`);
    }
    if (version) {
      const check = spawnSync(PYTHON, ['-c', `import numpy as np, json, sys
m = json.load(open(sys.argv[1] + '/manifest.json'))
print(json.dumps([list(np.load(sys.argv[1] + '/' + a['file']).shape) for a in m['arrays']]))`, out], { encoding: 'utf8' });
      t.same(JSON.parse(check.stdout), manifest.arrays.map((a) => a.shape), 'numpy reads the shapes back');
    }
    const rq = await Index.train('RQ2x4,norm=u8', b.subarray(0, 2000 * dim), { dim, seed: 2 });
    const m2 = rq.exportCodebooksSync(path.join(dir, 'rq'));
    t.same(m2.arrays.map((a) => a.shape), [[2, 16, dim]]);
    t.equal(m2.norm?.storage, 'u8');
    t.ok(m2.norm!.hi > m2.norm!.lo, 'u8 norm range recorded');
    const flat = await Index.train('Flat', b.subarray(0, 100 * dim), { dim });
    expectError(t, () => flat.exportCodebooksSync(path.join(dir, 'flat')), 'ERR_QUIVER_UNSUPPORTED', /no codebook/, 'Flat');
  });
});
