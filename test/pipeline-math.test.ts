// The arithmetic of the pipeline without any model: fusion of image and text parts, vector stores, the exact
// and cross-modal rerankers, the label metrics and the IDX reader.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import t from 'tap';

import {
  CrossModalReranker,
  ExactReranker,
  ProductEmbedder,
  VectorStore,
  l2NormalizeRows,
  readIdx,
  retrievalMetrics,
  type ImageInput,
} from '../lib/pipeline/index';
import { similarity } from '../lib/pipeline/vectors';
import { TableEmbedder, dot, unit } from './pipeline-helpers';

const close = (a: number, b: number, eps = 1e-5) => Math.abs(a - b) <= eps * Math.max(1, Math.abs(b));

// Fake modality embedders: "images" and "texts" are names with fixed (deliberately not unit-length) vectors.
const imageVectors: Record<string, number[]> = { red: [3, 0, 4], blue: [0, 2, 0], purple: [1, 1, 1] };
const textVectors: Record<string, number[]> = { shirt: [1, 2], dress: [-2, 1], tunic: [1, 1] };
const imageEmbedder = new TableEmbedder<ImageInput>(3, (img) => Float32Array.from(imageVectors[img as string]));
const textEmbedder = new TableEmbedder<string>(2, (text) => Float32Array.from(textVectors[text]));
const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0) / (Math.hypot(...a) * Math.hypot(...b));

t.test('l2NormalizeRows and similarity', async (t) => {
  const rows = Float32Array.of(3, 4, 0, 0, 0, 2);
  l2NormalizeRows(rows, 2);
  t.same(Array.from(rows), Array.from(Float32Array.of(0.6, 0.8, 0, 0, 0, 1)), 'unit rows; an all-zero row stays zero');
  const a = [1, 2, 2];
  const b = [2, 0, 1];
  t.equal(similarity('ip', a, 0, b, 0, 3), 4);
  t.ok(close(similarity('cosine', a, 0, b, 0, 3), 4 / (3 * Math.sqrt(5))));
  t.equal(similarity('l2', a, 0, b, 0, 3), -(1 + 4 + 1), "'l2' scores are minus the squared distance");
  t.equal(similarity('cosine', [0, 0], 0, [1, 1], 0, 2), 0, 'cosine with a zero vector is 0, not NaN');
});

t.test('concat fusion: unit length, and dot = weighted mean of the per-modality cosines', async (t) => {
  const a = 2;
  const b = 1;
  const embedder = await ProductEmbedder.create({
    image: imageEmbedder,
    text: textEmbedder,
    fusion: { type: 'concat', imageWeight: a, textWeight: b },
  });
  t.equal(embedder.dim, 5);
  t.equal(embedder.fusion, 'concat');
  const products = [
    { image: 'red', text: 'shirt' },
    { image: 'purple', text: 'dress' },
    { image: 'blue', text: 'tunic' },
  ];
  const v = await embedder.embed(products);
  const first = Array.from(v.subarray(0, 5));
  const expected = [...Array.from(unit(imageVectors.red)).map((x) => (x * a) / Math.sqrt(5)), ...Array.from(unit(textVectors.shirt)).map((x) => (x * b) / Math.sqrt(5))];
  first.forEach((x, i) => t.ok(close(x, expected[i]), `component ${i}: ${x} = ${expected[i]}`));
  for (let i = 0; i < 3; i++) t.ok(close(dot(v, i * 5, v, i * 5, 5), 1), `product ${i} has unit length`);
  for (const [i, j] of [[0, 1], [0, 2], [1, 2]]) {
    const want = (a * a * cosine(imageVectors[products[i].image], imageVectors[products[j].image]) + b * b * cosine(textVectors[products[i].text], textVectors[products[j].text])) / (a * a + b * b);
    t.ok(close(dot(v, i * 5, v, j * 5, 5), want), `dot(p${i}, p${j}) = ${want.toFixed(5)}`);
  }
});

t.test('concat fusion: a one-modality query scores by that modality alone', async (t) => {
  const embedder = await ProductEmbedder.create({ image: imageEmbedder, text: textEmbedder, fusion: { type: 'concat', imageWeight: 3, textWeight: 1 } });
  const [textOnly, imageOnly, both] = [
    await embedder.embed([{ text: 'shirt' }]),
    await embedder.embed([{ image: 'blue' }]),
    await embedder.embed([{ image: 'red', text: 'tunic' }]),
  ];
  t.ok(close(dot(textOnly, 0, textOnly, 0, 5), 1), 'a text-only vector still has unit length');
  t.same(Array.from(textOnly.subarray(0, 3)), [0, 0, 0], 'the image block of a text-only query is zero');
  t.same(Array.from(imageOnly.subarray(3)), [0, 0], 'the text block of an image-only query is zero');
  // text-only query vs full product: (b / √(a²+b²)) · cos(text)
  t.ok(close(dot(textOnly, 0, both, 0, 5), (1 / Math.sqrt(10)) * cosine(textVectors.shirt, textVectors.tunic)));
  const parts = await embedder.embedParts([{ text: 'dress' }, { image: 'purple', text: 'shirt' }]);
  t.same(parts.hasImage, [false, true]);
  t.same(parts.hasText, [true, true]);
  t.ok(close(dot(parts.image, 3, parts.image, 3, 3), 1), 'parts come back unit length');
  t.same(Array.from(parts.image.subarray(0, 3)), [0, 0, 0]);
});

t.test('VectorStore: set, replace, get, score, gather', async (t) => {
  const store = new VectorStore(2, { capacity: 1 });
  store.set(BigInt64Array.of(10n, 20n), Float32Array.of(1, 0, 0, 2));
  store.set(BigInt64Array.of(30n), Float32Array.of(3, 4)); // grows past the capacity
  store.set(BigInt64Array.of(10n), Float32Array.of(-1, 0)); // replaces
  t.equal(store.size, 3);
  t.same(Array.from(store.get(10n)!), [-1, 0]);
  t.equal(store.get(99n), undefined);
  t.ok(store.has(30n));
  const q = Float32Array.of(1, 1);
  t.same(Array.from(store.score(q, BigInt64Array.of(30n, 10n, -1n, 99n), 'ip')), [7, -1, -Infinity, -Infinity], 'unknown and padding ids score -Infinity');
  t.same(Array.from(store.score(q, BigInt64Array.of(20n), 'l2')), [-2]);
  const { vectors, missing } = store.gather(BigInt64Array.of(20n, 5n, 30n));
  t.same(Array.from(vectors), [0, 2, 0, 0, 3, 4]);
  t.same(missing, [1]);
});

t.test('ExactReranker scores with the stored vectors under the chosen metric', async (t) => {
  const store = new VectorStore(2);
  store.set(BigInt64Array.of(1n, 2n, 3n), Float32Array.of(0, 1, 5, 5, 1, 0));
  const q = { vector: Float32Array.of(1, 0.1) };
  const l2 = await new ExactReranker(store).rerank(q, BigInt64Array.of(1n, 2n, 3n));
  t.ok(l2[2] > l2[0] && l2[0] > l2[1], 'l2: closest first (higher score)');
  const cos = await new ExactReranker(store, { metric: 'cosine' }).rerank(q, BigInt64Array.of(1n, 2n, 3n));
  t.ok(close(cos[1], (5 + 0.5) / (Math.hypot(1, 0.1) * Math.hypot(5, 5))));
});

t.test('CrossModalReranker: text query against image vectors, stored or embedded on demand', async (t) => {
  // A shared 2-d "text–image" space: words and pictures of the same colour point the same way.
  const space: Record<string, number[]> = { 'a red thing': [1, 0], 'a blue thing': [0, 1], redPhoto: [0.9, 0.1], bluePhoto: [0.1, 0.9], mixedPhoto: [0.5, 0.5] };
  const textEnc = new TableEmbedder<string>(2, (s) => Float32Array.from(space[s]));
  const imageEnc = new TableEmbedder<ImageInput>(2, (s) => Float32Array.from(space[s as string]));
  const photos = new Map<bigint, string>([[1n, 'redPhoto'], [2n, 'bluePhoto'], [3n, 'mixedPhoto']]);
  const loaded: bigint[][] = [];
  const reranker = new CrossModalReranker<string, ImageInput>({
    queryEmbedder: textEnc,
    candidates: { embedder: imageEnc, load: (ids) => (loaded.push(Array.from(ids)), Array.from(ids, (id) => photos.get(id)!)) },
  });
  const candidates = BigInt64Array.of(1n, 2n, 3n);
  const blue = await reranker.rerank({ input: 'a blue thing', vector: new Float32Array(2) }, candidates);
  t.ok(blue[1] > blue[2] && blue[2] > blue[0], 'blue photo first, then mixed, then red');
  const red = await reranker.rerank({ input: 'a red thing', vector: new Float32Array(2) }, candidates);
  t.ok(red[0] > red[2] && red[2] > red[1]);
  t.same(loaded, [[1n, 2n, 3n]], 'candidate images are embedded once and cached');

  const store = new VectorStore(2);
  store.set(BigInt64Array.of(7n), Float32Array.of(0, 3));
  const fromStore = new CrossModalReranker<string>({ queryEmbedder: textEnc, candidates: store });
  t.same(Array.from(await fromStore.rerank({ input: 'a blue thing', vector: new Float32Array(2) }, BigInt64Array.of(7n, 8n))), [1, -Infinity]);
  await t.rejects(fromStore.rerank({ vector: new Float32Array(2) }, BigInt64Array.of(7n)), { name: 'TypeError', message: /query\.input/ });
});

t.test('retrievalMetrics: recall@k and mAP@k by hand', async (t) => {
  // Labels of the indexed ids: 1..6 → A A B B A C. Two queries, labels A and B, 4 results each.
  const labels = new Map<bigint, number>([[1n, 0], [2n, 0], [3n, 1], [4n, 1], [5n, 0], [6n, 2]]);
  const ids = BigInt64Array.of(3n, 1n, 6n, 2n, /* q1 */ 6n, 5n, 1n, -1n);
  const m = retrievalMetrics({
    ids,
    perQuery: 4,
    queryLabels: [0, 1],
    labelOf: (id) => labels.get(id),
    relevantCount: (q) => (q === 0 ? 3 : 2),
    ks: [1, 2, 4],
  });
  t.equal(m.queries, 2);
  // q0: relevant at ranks 2 and 4 → recall@1 0, @2 1, @4 1; AP@1 0, AP@2 (1/2)/min(2,3) = 0.25, AP@4 (1/2 + 2/4)/3 = 1/3.
  // q1: no relevant result → all 0.
  t.same(m.recall, { 1: 0, 2: 0.5, 4: 0.5 });
  t.ok(close(m.map[1], 0) && close(m.map[2], 0.125) && close(m.map[4], 1 / 6), JSON.stringify(m.map));
  const perfect = retrievalMetrics({ ids: BigInt64Array.of(1n, 2n), perQuery: 2, queryLabels: [0], labelOf: (id) => labels.get(id), relevantCount: () => 3, ks: [2] });
  t.same(perfect, { queries: 1, recall: { 2: 1 }, map: { 2: 1 } }, 'first min(k, R) relevant → AP 1');
});

t.test('readIdx reads big-endian IDX files, plain and gzipped', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-idx-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // 2 images of 2 × 3 pixels: magic 00 00 08 03, dims 2, 2, 3 (uint32 big-endian), then 12 bytes.
  const header = Buffer.from([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]);
  const body = Buffer.from([0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255]);
  fs.writeFileSync(path.join(dir, 'a.idx'), Buffer.concat([header, body]));
  fs.writeFileSync(path.join(dir, 'a.idx.gz'), gzipSync(Buffer.concat([header, body])));
  for (const name of ['a.idx', 'a.idx.gz']) {
    const { dims, data } = await readIdx(path.join(dir, name));
    t.same(dims, [2, 2, 3], name);
    t.same(Array.from(data), Array.from(body), name);
  }
  fs.writeFileSync(path.join(dir, 'short.idx'), Buffer.concat([header, body.subarray(0, 5)]));
  await t.rejects(readIdx(path.join(dir, 'short.idx')), { code: 'ERR_QUIVER_CORRUPT', message: /need 12 values but the file holds 5/ });
  fs.writeFileSync(path.join(dir, 'float.idx'), Buffer.from([0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0]));
  await t.rejects(readIdx(path.join(dir, 'float.idx')), { message: /type 0xd is not supported/ });
});

const fashion = '/usr/share/datasets/fashion-mnist';
t.test('readIdx on the real Fashion-MNIST test set', { skip: fs.existsSync(fashion) ? false : `${fashion} is absent (apt-get install dataset-fashion-mnist)` }, async (t) => {
  const images = await readIdx(path.join(fashion, 't10k-images-idx3-ubyte.gz'));
  const labels = await readIdx(path.join(fashion, 't10k-labels-idx1-ubyte.gz'));
  t.same(images.dims, [10000, 28, 28]);
  t.same(labels.dims, [10000]);
  const counts = new Array(10).fill(0);
  for (const l of labels.data) counts[l]++;
  t.same(counts, new Array(10).fill(1000), 'Fashion-MNIST test: 1000 images of each of the 10 classes');
});
