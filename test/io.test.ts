// Dataset readers: every format round-trips, ranges are read, malformed files give ERR_QUIVER_CORRUPT.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import { readVectors } from '../lib/index';
import { DEMO_DATA } from './helpers';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-io-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const n = 5;
const dim = 3;
const values = Array.from({ length: n * dim }, (_, i) => (i % 7) * 3 - 4); // small ints: exact in every format

function vecs(file: string, bytes: number, write: (b: Buffer, o: number, v: number) => void) {
  const buf = Buffer.alloc(n * (4 + dim * bytes));
  for (let i = 0; i < n; i++) {
    const at = i * (4 + dim * bytes);
    buf.writeInt32LE(dim, at);
    for (let j = 0; j < dim; j++) write(buf, at + 4 + j * bytes, values[i * dim + j]);
  }
  fs.writeFileSync(path.join(dir, file), buf);
}

function bin(file: string, bytes: number, write: (b: Buffer, o: number, v: number) => void) {
  const buf = Buffer.alloc(8 + n * dim * bytes);
  buf.writeInt32LE(n, 0);
  buf.writeInt32LE(dim, 4);
  for (let i = 0; i < n * dim; i++) write(buf, 8 + i * bytes, values[i]);
  fs.writeFileSync(path.join(dir, file), buf);
}

vecs('a.fvecs', 4, (b, o, v) => b.writeFloatLE(v, o));
vecs('a.ivecs', 4, (b, o, v) => b.writeInt32LE(v, o));
vecs('a.bvecs', 1, (b, o, v) => b.writeUInt8(v + 4, o));
bin('a.fbin', 4, (b, o, v) => b.writeFloatLE(v, o));
bin('a.ibin', 4, (b, o, v) => b.writeInt32LE(v, o));
bin('a.u8bin', 1, (b, o, v) => b.writeUInt8(v + 4, o));
bin('a.i8bin', 1, (b, o, v) => b.writeInt8(v, o));

t.test('every format reads back what was written', async (t) => {
  for (const [file, shift, type] of [
    ['a.fvecs', 0, Float32Array], ['a.ivecs', 0, Int32Array], ['a.bvecs', 4, Float32Array],
    ['a.fbin', 0, Float32Array], ['a.ibin', 0, Int32Array], ['a.u8bin', 4, Float32Array], ['a.i8bin', 0, Float32Array],
  ] as const) {
    const v = await readVectors(path.join(dir, file));
    t.equal(v.n, n, file);
    t.equal(v.dim, dim, file);
    t.ok(v.data instanceof type, `${file} gives ${type.name}`);
    t.same(Array.from(v.data), values.map((x) => x + shift), file);
  }
});

t.test('offset and count read a range', async (t) => {
  for (const file of ['a.fvecs', 'a.bvecs', 'a.fbin']) {
    const v = await readVectors(path.join(dir, file), { offset: 1, count: 2 });
    t.equal(v.n, 2);
    const shift = file === 'a.bvecs' ? 4 : 0;
    t.same(Array.from(v.data), values.slice(dim, 3 * dim).map((x) => x + shift), file);
    t.equal((await readVectors(path.join(dir, file), { offset: 10 })).n, 0, 'past the end: nothing');
  }
  const explicit = await readVectors(path.join(dir, 'a.fvecs'), { format: 'fvecs', count: 1 });
  t.equal(explicit.n, 1);
});

t.test('malformed files are rejected with ERR_QUIVER_CORRUPT', async (t) => {
  const write = (name: string, bytes: Buffer) => {
    fs.writeFileSync(path.join(dir, name), bytes);
    return path.join(dir, name);
  };
  const good = fs.readFileSync(path.join(dir, 'a.fvecs'));
  await t.rejects(readVectors(write('trunc.fvecs', good.subarray(0, good.length - 2))), { code: 'ERR_QUIVER_CORRUPT', message: /not a multiple/ });
  const mixed = Buffer.from(good);
  mixed.writeInt32LE(4, 16); // second record claims dimension 4
  await t.rejects(readVectors(write('mixed.fvecs', mixed)), { code: 'ERR_QUIVER_CORRUPT', message: /vector 1 has dimension 4/ });
  const negative = Buffer.from(good);
  negative.writeInt32LE(-5, 0);
  await t.rejects(readVectors(write('neg.fvecs', negative)), { code: 'ERR_QUIVER_CORRUPT', message: /dimension -5/ });
  const fbin = fs.readFileSync(path.join(dir, 'a.fbin'));
  const lying = Buffer.from(fbin);
  lying.writeInt32LE(1_000_000, 0);
  await t.rejects(readVectors(write('lying.fbin', lying)), { code: 'ERR_QUIVER_CORRUPT', message: /only/ });
  await t.rejects(readVectors(write('tiny.fbin', Buffer.alloc(3))), { code: 'ERR_QUIVER_CORRUPT' });
  await t.rejects(readVectors(path.join(dir, 'missing.fvecs')), { code: 'ENOENT' });
});

t.test('the embedded SIFT slice reads as documented', async (t) => {
  const base = await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_base.bvecs'));
  t.equal(base.n, 9900);
  t.equal(base.dim, 128);
  t.ok(Array.from(base.data.subarray(0, 1000)).every((x) => Number.isInteger(x) && x >= 0 && x <= 255));
  const dist = await readVectors(path.join(DEMO_DATA, 'bigann10k_heldout_groundtruth_dist.fvecs'));
  t.equal(dist.n, 100);
  t.ok(dist.data[0] <= dist.data[1], 'distances ascend');
});
