// The bad-input matrix: every public entry point, fed wrong types, lengths, values and states, must throw a
// TypeError or RangeError (or reject with one) whose message names the argument — and never crash.
import t from 'tap';

import { Codec, Index, readVectors, setSimdLevel } from '../lib/index';
import { randomFloats } from './helpers';

const dim = 8;
const data = randomFloats(300 * dim, 4);
const flat = Index.trainSync('Flat', data, { dim });
flat.addSync(data);
const codec = Codec.trainSync('PQ3x4', data, { dim, iterations: 3 }); // 12 bits: 2-byte codes
const codecIndex = Index.trainSync('PQ2x4', data, { dim, iterations: 2 });
const NaNs = Float32Array.from(data.subarray(0, dim * 2));
NaNs[11] = NaN;
const infs = Float32Array.from(data.subarray(0, dim));
infs[0] = -Infinity;
// Past the first chunk the finiteness check tests at once (1 024 floats): the message still names the element.
const lateInf = Float32Array.from(data.subarray(0, dim * 200));
lateInf[1500] = Infinity;

type Case = [label: string, run: () => unknown, type: typeof TypeError | typeof RangeError, pattern: RegExp];

const cases: Case[] = [
  // Index.train / trainSync
  ['train: spec not a string', () => Index.trainSync(42 as never, data, { dim }), TypeError, /spec: expected a string, got 42/],
  ['train: unknown spec', () => Index.trainSync('HNSW32', data, { dim }), RangeError, /spec "HNSW32".*expected/],
  ['train: malformed spec', () => Index.trainSync('PQ4y8', data, { dim }), RangeError, /PQ4y8/],
  ['train: PQ M > dim', () => Index.trainSync('PQ9', data, { dim }), RangeError, /spec "PQ9".*M=9.*dim=8/],
  ['train: PCA keeps more than dim', () => Index.trainSync('PCA9,PQ3x4', data, { dim }), RangeError, /spec "PCA9,PQ3x4".*between 1 and d = 8/],
  ['train: PCA without a codec', () => Index.trainSync('PCA4', data, { dim }), RangeError, /spec "PCA4": PCA4 must be followed by the codec/],
  ['codec: PCA with options of its own', () => Codec.trainSync('PCA4,iters=2,PQ2x4', data, { dim }), RangeError, /PCA4 takes no options \("iters" given\)/],
  ['codec: PCA twice', () => Codec.trainSync('PCA4,PCA2,PQ2x4', data, { dim }), RangeError, /PCA may appear only once/],
  ['train: SPLIT into more parts than dim', () => Index.trainSync('SPLIT9,PQ1x4', data, { dim }), RangeError, /spec "SPLIT9,PQ1x4".*between 1 and 8 parts/],
  ['codec: SPLIT without a codec', () => Codec.trainSync('SPLIT2', data, { dim }), RangeError, /spec "SPLIT2": SPLIT2 must be followed by the codec/],
  ['codec: SPLIT parts too small for PCA', () => Codec.trainSync('SPLIT2,PCA5,PQ1x4', data, { dim }), RangeError, /PCA5 must keep between 1 and d = 4/],
  ['train: options missing', () => Index.trainSync('Flat', data, undefined as never), TypeError, /options: expected an object/],
  ['train: dim missing', () => Index.trainSync('Flat', data, {} as never), TypeError, /options\.dim: expected an integer/],
  ['train: dim 0', () => Index.trainSync('Flat', data, { dim: 0 }), RangeError, /options\.dim: expected an integer from 1/],
  ['train: dim fractional', () => Index.trainSync('Flat', data, { dim: 2.5 }), RangeError, /options\.dim.*got 2\.5/],
  ['train: dim NaN', () => Index.trainSync('Flat', data, { dim: NaN }), RangeError, /options\.dim.*got NaN/],
  ['train: unknown metric', () => Index.trainSync('Flat', data, { dim, metric: 'hamming' as never }), RangeError, /options\.metric: expected 'l2', 'ip' or 'cosine', got "hamming"/],
  ['train: unknown option', () => Index.trainSync('Flat', data, { dim, nlist: 3 } as never), TypeError, /unknown option "nlist"/],
  ['train: seed negative', () => Index.trainSync('Flat', data, { dim, seed: -1 }), RangeError, /options\.seed/],
  ['train: threads huge', () => Index.trainSync('Flat', data, { dim, threads: 1e9 }), RangeError, /options\.threads/],
  ['train: onProgress not a function', () => Index.trainSync('Flat', data, { dim, onProgress: 3 as never }), TypeError, /options\.onProgress: expected a function/],
  ['train: vectors is an Array', () => Index.trainSync('Flat', [1, 2] as never, { dim }), TypeError, /vectors: expected a Float32Array.*got an Array of length 2/],
  ['train: vectors is Float64Array', () => Index.trainSync('Flat', new Float64Array(dim) as never, { dim }), TypeError, /vectors: expected a Float32Array.*Float64Array/],
  ['train: vectors wrong length', () => Index.trainSync('Flat', new Float32Array(dim + 1), { dim }), RangeError, /vectors: .*multiple of dim 8, got length 9/],
  ['train: vectors empty', () => Index.trainSync('Flat', new Float32Array(0), { dim }), RangeError, /vectors: .*non-empty/],
  ['train: vectors hold NaN', () => Index.trainSync('PQ2x4', NaNs, { dim }), RangeError, /vectors: expected finite numbers, got nan at element 11 \(vector 1, component 3\)/],
  ['train: too few vectors for 256 centroids', () => Index.trainSync('PQ2x8', data.subarray(0, 10 * dim), { dim }), RangeError, /vectors: PQ2x8 needs at least 256 training vectors.*got 10/],
  // add
  ['add: vectors of the wrong dim', () => flat.addSync(new Float32Array(dim * 2 + 3)), RangeError, /vectors: .*multiple of dim 8, got length 19/],
  ['add: vectors not typed', () => flat.addSync('abc' as never), TypeError, /vectors: expected a Float32Array/],
  ['add: ids not BigInt64Array', () => flat.addSync(data.subarray(0, dim), [1n] as never), TypeError, /ids: expected a BigInt64Array/],
  ['add: ids wrong length', () => flat.addSync(data.subarray(0, dim), new BigInt64Array(2)), RangeError, /ids: expected 1 ids.*got 2/],
  ['add: infinity', () => flat.addSync(infs), RangeError, /vectors: expected finite numbers, got -inf/],
  ['add: unknown option', () => flat.addSync(data.subarray(0, dim), null, { replace: true } as never), TypeError, /options: unknown option "replace"/],
  // search
  ['search: k = 0', () => flat.searchSync(data.subarray(0, dim), 0), RangeError, /k: expected an integer from 1/],
  ['search: k negative', () => flat.searchSync(data.subarray(0, dim), -3), RangeError, /k: expected an integer from 1.*got -3/],
  ['search: k huge', () => flat.searchSync(data.subarray(0, dim), 2 ** 40), RangeError, /k: expected an integer from 1 to/],
  ['search: k NaN', () => flat.searchSync(data.subarray(0, dim), NaN), RangeError, /k: .*got NaN/],
  ['search: k a string', () => flat.searchSync(data.subarray(0, dim), '10' as never), TypeError, /k: expected an integer.*got "10"/],
  ['search: k a bigint', () => flat.searchSync(data.subarray(0, dim), 10n as never), TypeError, /k: expected an integer.*got 10n/],
  ['search: dim mismatch', () => flat.searchSync(new Float32Array(dim - 1), 1), RangeError, /queries: .*multiple of dim 8, got length 7/],
  ['search: queries hold NaN', () => flat.searchSync(NaNs, 1), RangeError, /queries: expected finite numbers/],
  ['search: a query past the first chunk holds Infinity', () => flat.searchSync(lateInf, 1), RangeError,
    /queries: expected finite numbers, got inf at element 1500 \(vector 187, component 4\)/],
  ['search: queries null', () => flat.searchSync(null as never, 1), TypeError, /queries: expected a Float32Array.*got null/],
  ['search: refine 0', () => flat.searchSync(data.subarray(0, dim), 1, { refine: 0 }), RangeError, /options\.refine/],
  ['search: refine without stored vectors', () => {
    const pq = Index.trainSync('PQ2x4', data, { dim, iterations: 2 });
    pq.addSync(data);
    return pq.searchSync(data.subarray(0, dim), 1, { refine: 4 });
  }, RangeError, /refine=4 needs stored vectors.*,Refine/],
  ['search: nprobe negative', () => flat.searchSync(data.subarray(0, dim), 1, { nprobe: -1 }), RangeError, /options\.nprobe/],
  ['search: unknown option', () => flat.searchSync(data.subarray(0, dim), 1, { efSearch: 3 } as never), TypeError, /unknown option "efSearch"/],
  ['search: options not an object', () => flat.searchSync(data.subarray(0, dim), 1, 7 as never), TypeError, /options: expected an options object, got 7/],
  // Codec
  ['codec: spec Flat is no codec', () => Codec.trainSync('Flat', data, { dim }), RangeError, /spec "Flat": unknown component "Flat"; expected PQ/],
  ['codec: metric is not a codec option', () => Codec.trainSync('PQ2x4', data, { dim, metric: 'l2' } as never), TypeError, /unknown option "metric"/],
  ['codec: encode wrong dim', () => codec.encode(new Float32Array(3)), RangeError, /vectors: .*multiple of dim 8/],
  ['codec: decode wrong type', () => codec.decode(new Float32Array(4) as never), TypeError, /codes: expected a Uint8Array/],
  ['codec: decode wrong length', () => codec.decode(new Uint8Array(3)), RangeError, /codes: .*multiple of codeSize 2, got 3/],
  ['codec: encode NaN', () => codec.encode(NaNs), RangeError, /vectors: expected finite numbers/],
  // misc
  ['setSimdLevel: unknown level', () => setSimdLevel('sse9'), RangeError, /level: expected one of .*got "sse9"/],
  ['save: path not a string', () => flat.saveSync(3 as never), TypeError, /path: expected a string, got 3/],
  ['save: path empty', () => flat.saveSync(''), RangeError, /path: expected a non-empty file path, got ""/],
  ['exportCodebooks: dir not a string', () => codecIndex.exportCodebooksSync(3 as never), TypeError, /dir: expected a string, got 3/],
  ['exportCodebooks: dir empty', () => codecIndex.exportCodebooksSync(''), RangeError, /dir: expected a non-empty folder path, got ""/],
  ['exportCodebooks (async): dir not a string', () => codecIndex.exportCodebooks(3 as never), TypeError, /dir: expected a string, got 3/],
  ['readVectors: path not a string', () => readVectors(3 as never), TypeError, /path: expected a string/],
  ['readVectors: unknown extension', () => readVectors('/tmp/x.txt'), RangeError, /cannot tell the format/],
  ['readVectors: bad count', () => readVectors('/tmp/x.fvecs', { count: -1 }), RangeError, /options\.count/],
];

for (const [label, run, type, pattern] of cases) {
  t.test(label, async (t) => {
    let error: unknown;
    try {
      await run();
    } catch (e) {
      error = e;
    }
    t.ok(error instanceof type, `${type.name} expected, got ${error}`);
    t.match((error as Error)?.message ?? '', pattern);
  });
}

t.test('async methods reject (never throw synchronously past the promise) with the same errors', async (t) => {
  await t.rejects(Index.train('PQ2x4', NaNs, { dim }), RangeError);
  await t.rejects(flat.search(data.subarray(0, dim), 0), RangeError);
  await t.rejects(flat.add(new Float32Array(3)), RangeError);
  await t.rejects(flat.search(NaNs, 1), /queries: expected finite numbers/);
  await t.rejects(codec.encodeAsync(NaNs), /vectors: expected finite numbers/);
});

t.test('searching an untrained index is impossible through the API; the native state check still answers', async (t) => {
  // Index.train always trains; the native object refuses search before training with ERR_QUIVER_STATE.
  const { native } = await import('../lib/native');
  const raw = new (native().NativeIndex)('PQ2x4', dim, 'l2');
  t.throws(() => raw.searchSync(data.subarray(0, dim), 1), { code: 'ERR_QUIVER_STATE', message: /not trained/ });
  t.throws(() => raw.addSync(data.subarray(0, dim), null), { code: 'ERR_QUIVER_STATE' });
  t.throws(() => new (native().NativeIndex)('Flat', 0, 'l2'), RangeError);
  t.throws(() => new (native().NativeIndex)('Flat', 4, 'manhattan'), /metric: expected/);
});
