// The quantizer family's claims at 64 bits on a second real dataset, Fashion-MNIST (d = 784), CI-sized: the
// first 5 000 training images as base, of which the codecs train on the first 2 500 (so half the encoded
// vectors were never seen in training), the first 100 test images as queries, ground truth recomputed exactly
// here. Fixed seed; the bounds sit below
// the values measured with it (comments), with room for SIMD-level rounding. The SIFT slice is covered by
// native/tests/test_codecs_sift.cpp; the full-size comparison with faiss is bench/accuracy.js
// (bench/results/accuracy-fashion-mnist/).
//
// What is asserted: MSE RQ < PQ; 10-recall@10 RQ ≥ PQ; on the same codebooks a beam of 4 lowers the MSE of
// greedy encoding; progressive-dimension k-means (pd=10) lowers greedy RQ's MSE; encoding and decoding are
// deterministic. TRQ runs with subspace transforms (sub=64: a 64 × 64 rotation per first-level cluster inside
// the residuals' leading principal subspace); full 784 × 784 transforms would cost an SVD of that size per
// cluster and round, minutes on a 2-core machine. Its test encodes 10 000 images (trained on the first 5 000),
// since with 2 500 training vectors most of the 256 clusters have too few members for a transform. At 128 bits
// (same setting as the TRQ test): SPLIT2,RQ8x8 matches PRQ2x8x8, the same model (MSE within 1 %), and
// SPLIT2,PCA128,TRQ8x8 with beam 4 beats PQ16x8 by wide margins.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import t from 'tap';

import { Codec } from '../lib/index';
import { sameBytes } from './helpers';

const IMAGES = '/usr/share/datasets/fashion-mnist';
const BASE = 5000;
const TRAIN = 2500;
const QUERIES = 100;
const SEED = 1234;

/** The first `count` images of an idx3 .gz file (big-endian header: magic 0x803, count, rows, cols) as floats. */
function readIdx(file: string, count: number): { data: Float32Array; dim: number } {
  const raw = zlib.gunzipSync(fs.readFileSync(file));
  if (raw.length < 16 || raw.readUInt32BE(0) !== 0x803) throw new Error(`${file}: not an idx3 image file`);
  const total = raw.readUInt32BE(4);
  const dim = raw.readUInt32BE(8) * raw.readUInt32BE(12);
  if (total < count || raw.length < 16 + total * dim) throw new Error(`${file}: truncated`);
  const data = new Float32Array(count * dim);
  for (let i = 0; i < count * dim; i++) data[i] = raw[16 + i];
  return { data, dim };
}

/** Ids of the k nearest rows of `base` (n × dim) to each query, by exact squared L2 (ties to the lower id). */
function exactNeighbours(base: Float32Array, queries: Float32Array, dim: number, k: number): Int32Array[] {
  const n = base.length / dim;
  const out: Int32Array[] = [];
  const dist = new Float64Array(n);
  for (let q = 0; q < queries.length / dim; q++) {
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) {
        const d = queries[q * dim + j] - base[i * dim + j];
        s += d * d;
      }
      dist[i] = s;
    }
    const ids = Array.from({ length: n }, (_, i) => i).sort((a, b) => dist[a] - dist[b] || a - b);
    out.push(Int32Array.from(ids.slice(0, k)));
  }
  return out;
}

function meanSquaredError(a: Float32Array, b: Float32Array, dim: number): number {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += (a[i] - b[i]) ** 2;
  return total / (a.length / dim);
}

function recallAt10(truth: Int32Array[], found: Int32Array[]): number {
  let hits = 0;
  for (let q = 0; q < truth.length; q++) {
    const want = new Set(truth[q].subarray(0, 10));
    for (const id of found[q].subarray(0, 10)) if (want.has(id)) hits++;
  }
  return hits / (10 * truth.length);
}

/** The vectors and exact neighbours a test measures codecs on. */
interface Setting {
  base: Float32Array;
  dim: number;
  trainCount: number;
  queries: Float32Array;
  truth: Int32Array[];
}

/** The first `count` training images as base (codecs train on the first trainCount), the first QUERIES test images. */
function loadSetting(count: number, trainCount: number): Setting {
  const { data: base, dim } = readIdx(path.join(IMAGES, 'train-images-idx3-ubyte.gz'), count);
  const { data: queries } = readIdx(path.join(IMAGES, 't10k-images-idx3-ubyte.gz'), QUERIES);
  return { base, dim, trainCount, queries, truth: exactNeighbours(base, queries, dim, 10) };
}

/**
 * Trains `spec` on the first trainCount base rows (seed SEED, 6 Lloyd iterations), encodes and decodes the whole
 * base, and checks the round trip: decoding twice gives the same vectors and re-encoding the first 256 rows the
 * same codes (and the code size, when given). Returns the MSE and the 10-recall@10 of an exact search over the
 * reconstructions.
 */
async function measureCodec(t: Tap.Test, setting: Setting, spec: string, codeSize?: number) {
  const { base, dim, trainCount, queries, truth } = setting;
  const codec = await Codec.train(spec, base.subarray(0, trainCount * dim), { dim, seed: SEED, iterations: 6 });
  if (codeSize !== undefined) t.equal(codec.codeSize, codeSize, `${spec}: ${codeSize} bytes a code`);
  const codes = await codec.encodeAsync(base);
  const decoded = await codec.decodeAsync(codes);
  t.ok(sameBytes(await codec.decodeAsync(codes), decoded), `${spec}: decode is deterministic`);
  t.ok(sameBytes(await codec.encodeAsync(base.subarray(0, 256 * dim)), codes.subarray(0, 256 * codec.codeSize)), `${spec}: encode is deterministic`);
  const result = { mse: meanSquaredError(base, decoded, dim), recall: recallAt10(truth, exactNeighbours(decoded, queries, dim, 10)) };
  t.comment(`${spec}: ${codec.codeSize} B, MSE ${result.mse.toFixed(0)}, 10-recall@10 ${result.recall.toFixed(3)}`);
  return result;
}

const present = ['train-images-idx3-ubyte.gz', 't10k-images-idx3-ubyte.gz'].every((f) => fs.existsSync(path.join(IMAGES, f)));

t.test('Fashion-MNIST, 64 bits: RQ beats PQ, beam lowers the error, codes round-trip', { skip: present ? false : `${IMAGES} holds no Fashion-MNIST images (apt-get install -y dataset-fashion-mnist)` }, async (t) => {
  const setting = loadSetting(BASE, TRAIN);
  t.equal(setting.dim, 784);
  const measure = (spec: string) => measureCodec(t, setting, spec);

  // Measured (seed 1234, 6 Lloyd iterations, AVX-512): PQ8x8 MSE 689 642 / 10-recall@10 0.574; RQ8x8 greedy
  // 622 457 / 0.642; the same codebooks with a beam of 4: 611 041 / 0.613. The beam lowers the error (−1.8 %) but
  // its recall on these 100 queries is lower than greedy's: with 2 500 training vectors for 2 048 codewords of
  // 784 dimensions the codebooks are fitted to the training half, and a wider search over them does not carry
  // over to ranking. That ordering is reported, not asserted. With pd=10 (progressive-dimension k-means for each
  // stage), greedy RQ8x8 reaches 569 617 / 0.663.
  const pq = await measure('PQ8x8');
  // Same training (greedy, no refit, same seed: the same codebooks), encoded greedily and with a beam of 4.
  const greedy = await measure('RQ8x8,beam=1,refit=0');
  const beam = await measure('RQ8x8,beam=4,trainbeam=1,refit=0');
  // Progressive-dimension k-means for every stage (pd=10), otherwise the same greedy RQ.
  const progressive = await measure('RQ8x8,beam=1,refit=0,pd=10');
  t.ok(pq.mse > 4e5 && pq.mse < 1e6, `PQ8x8 MSE ${pq.mse} is in the expected range (is this Fashion-MNIST?)`);
  t.ok(greedy.mse < 0.95 * pq.mse, `MSE: RQ8x8 greedy ${greedy.mse} < 0.95 × PQ8x8 ${pq.mse}`);
  t.ok(beam.mse < 0.995 * greedy.mse, `MSE: beam 4 ${beam.mse} < 0.995 × greedy ${greedy.mse} on the same codebooks`);
  t.ok(greedy.recall >= pq.recall + 0.03, `10-recall@10: RQ8x8 greedy ${greedy.recall} >= PQ8x8 ${pq.recall} + 0.03`);
  t.ok(progressive.mse < 0.96 * greedy.mse, `MSE: pd=10 ${progressive.mse} < 0.96 × greedy ${greedy.mse}`);
  t.ok(progressive.recall >= pq.recall + 0.03, `10-recall@10: pd=10 ${progressive.recall} >= PQ8x8 ${pq.recall} + 0.03`);
  t.comment(`not asserted: 10-recall@10 beam 4 ${beam.recall} vs greedy ${greedy.recall}`);
});

t.test('Fashion-MNIST, 64 bits: TRQ with subspace transforms beats RQ on half-unseen vectors', { skip: present ? false : `${IMAGES} holds no Fashion-MNIST images (apt-get install -y dataset-fashion-mnist)` }, async (t) => {
  const setting = loadSetting(2 * BASE, 2 * TRAIN);
  const measure = (spec: string) => measureCodec(t, setting, spec);
  // Measured (seed 1234, 6 Lloyd iterations, AVX-512): PQ8x8 702 775 / 0.539; greedy RQ8x8 with pd=10
  // 583 437 / 0.625; TRQ8x8 (same first level and stages, greedy, sub=64) 575 941 / 0.651. With every transform
  // held at the identity (reg=1e6) TRQ gives 583 715: the gain is the transforms'.
  const pq = await measure('PQ8x8');
  const rq = await measure('RQ8x8,beam=1,refit=0,pd=10');
  const trq = await measure('TRQ8x8,refit=0,pd=10,sub=64');
  t.ok(rq.mse < 0.9 * pq.mse, `MSE: RQ8x8 ${rq.mse} < 0.9 × PQ8x8 ${pq.mse}`);
  t.ok(trq.mse < 0.995 * rq.mse, `MSE: TRQ8x8,sub=64 ${trq.mse} < 0.995 × RQ8x8 ${rq.mse}`);
  t.ok(rq.recall >= pq.recall + 0.03, `10-recall@10: RQ8x8 ${rq.recall} >= PQ8x8 ${pq.recall} + 0.03`);
  t.ok(trq.recall >= rq.recall, `10-recall@10: TRQ8x8,sub=64 ${trq.recall} >= RQ8x8 ${rq.recall}`);
  // TRQ on the 128 leading principal components (PCA128,…, sub=32 as recommended there): encoding scores
  // codewords of 128 dimensions instead of 784. Measured: 613 777 / 0.639. On this small set, where half the
  // encoded vectors trained the codebooks, it does not reach full-dimensional TRQ's fit (575 941 / 0.651); at
  // full size (50 000 unseen vectors) it beats it (bench/results/accuracy-fashion-mnist/pca-trq/).
  const projected = await measure('PCA128,TRQ8x8,refit=0,pd=10,sub=32');
  t.ok(projected.mse < 0.9 * pq.mse, `MSE: PCA128,TRQ8x8 ${projected.mse} < 0.9 × PQ8x8 ${pq.mse}`);
  t.ok(projected.recall >= pq.recall + 0.03, `10-recall@10: PCA128,TRQ8x8 ${projected.recall} >= PQ8x8 ${pq.recall} + 0.03`);
});

t.test('Fashion-MNIST, 128 bits: SPLIT products (RQ halves as PRQ, PCA+TRQ halves) on half-unseen vectors', { skip: present ? false : `${IMAGES} holds no Fashion-MNIST images (apt-get install -y dataset-fashion-mnist)` }, async (t) => {
  // The full-size claims (SPLIT2,PCA128,TRQ8x8 against faiss's PRQ2x8x8 over 60 000 images) are
  // bench/results/accuracy-fashion-mnist/split/; here, CI-sized, the same setting as the TRQ test above.
  const setting = loadSetting(2 * BASE, 2 * TRAIN);
  const measure = (spec: string, codeSize: number) => measureCodec(t, setting, spec, codeSize);
  // Measured (seed 1234, 6 Lloyd iterations, AVX-512): PQ16x8 579 030 / 0.614; PRQ2x8x8 greedy 420 192 / 0.737;
  // SPLIT2,RQ8x8 greedy (the same model: an RQ8x8 per image half, 8 codes + a float32 norm each) 421 296 / 0.722;
  // SPLIT2,PCA128,TRQ8x8 with beam 4 405 266 / 0.746. At this size a product does not beat one RQ16x8 over the
  // whole image (greedy: 421 162 / 0.744) and the transforms add little over plain RQ halves (beam 4: 406 093 /
  // 0.759); neither is asserted.
  const pq = await measure('PQ16x8', 16);
  const prq = await measure('PRQ2x8x8,beam=1,refit=0,pd=10', 20);
  const split = await measure('SPLIT2,RQ8x8,beam=1,refit=0,pd=10', 24);
  const trq = await measure('SPLIT2,PCA128,TRQ8x8,beam=4,refit=0,sub=16,pd=10', 24);
  t.ok(Math.abs(split.mse - prq.mse) < 0.01 * prq.mse, `MSE: SPLIT2,RQ8x8 ${split.mse} within 1 % of PRQ2x8x8 ${prq.mse}`);
  t.ok(Math.abs(split.recall - prq.recall) <= 0.03, `10-recall@10: SPLIT2,RQ8x8 ${split.recall} within 0.03 of PRQ2x8x8 ${prq.recall}`);
  t.ok(trq.mse < 0.75 * pq.mse, `MSE: SPLIT2,PCA128,TRQ8x8 ${trq.mse} < 0.75 × PQ16x8 ${pq.mse}`);
  t.ok(trq.recall >= pq.recall + 0.08, `10-recall@10: SPLIT2,PCA128,TRQ8x8 ${trq.recall} >= PQ16x8 ${pq.recall} + 0.08`);
  t.ok(trq.mse < 0.98 * split.mse, `MSE: SPLIT2,PCA128,TRQ8x8 with beam 4 ${trq.mse} < 0.98 × greedy SPLIT2,RQ8x8 ${split.mse}`);
});
