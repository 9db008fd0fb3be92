// The ONNX paths on small graphs the tests write themselves (no download): onnxruntime-node must load what
// encodeOnnxModel writes and give the numbers computed here in JS. Also image preprocessing with sharp, to the
// exact pixel value.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import t from 'tap';

import {
  OnnxEmbedder,
  OnnxReranker,
  LocalFeatureStore,
  ProductEmbedder,
  VectorStore,
  bilinearScoreModel,
  concatProjectionModel,
  encodeOnnxModel,
  linearProjectionModel,
  prepareImages,
  type ImageInput,
  type RawImage,
} from '../lib/pipeline/index';
import { randomFloats } from './helpers';
import { TableEmbedder, unit } from './pipeline-helpers';

// sharp is loaded here only to encode test images; the library under test loads it lazily itself.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const sharp = require('sharp') as (input: Uint8Array, o: { raw: { width: number; height: number; channels: number } }) => { png(): { toBuffer(): Promise<Buffer> } };

const closeTo = (a: number, b: number, eps = 1e-5) => Math.abs(a - b) <= eps * Math.max(1, Math.abs(b));
/** Whether two arrays have the same length and agree within a relative 1e-5 everywhere. */
const allClose = (actual: ArrayLike<number>, expected: ArrayLike<number>) =>
  actual.length === expected.length && Array.from(expected).every((e, i) => closeTo(actual[i], e));

/** x (n × inDim) · W (inDim × outDim) + b, in float64. */
function project(x: ArrayLike<number>, n: number, W: Float32Array, inDim: number, outDim: number, b?: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o] : 0;
      for (let j = 0; j < inDim; j++) s += x[i * inDim + j] * W[j * outDim + o];
      out.push(s);
    }
  }
  return out;
}

t.test('a linear projection head: OnnxEmbedder over vectors gives x·W + b', async (t) => {
  const [inDim, outDim] = [6, 4];
  const W = randomFloats(inDim * outDim, 1);
  const b = randomFloats(outDim, 2);
  const model = linearProjectionModel(W, inDim, outDim, b);
  const embedder = await OnnxEmbedder.create(model, { input: { type: 'vector', dim: inDim }, batchSize: 2 });
  t.equal(embedder.dim, outDim, 'dim read from the model output shape');
  t.same(embedder.inputNames, ['input']);
  const x = randomFloats(5 * inDim, 3);
  const inputs = Array.from({ length: 5 }, (_, i) => x.slice(i * inDim, (i + 1) * inDim));
  t.ok(allClose(await embedder.embed(inputs), project(x, 5, W, inDim, outDim, b)), 'x·W + b over 3 batches');

  const normalized = await OnnxEmbedder.create(model, { input: { type: 'vector', dim: inDim }, normalize: true });
  const v = await normalized.embed(inputs.slice(0, 1));
  t.ok(closeTo(Math.hypot(...v), 1), 'normalize: unit rows');

  // The same model from a file path; closing makes later calls fail clearly.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-onnx-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'head.onnx');
  fs.writeFileSync(file, model);
  const fromFile = await OnnxEmbedder.create(file, { input: { type: 'vector', dim: inDim } });
  t.ok(allClose(await fromFile.embed(inputs.slice(0, 2)), project(x, 2, W, inDim, outDim, b)), 'loaded from a file');
  await fromFile.close();
  await t.rejects(fromFile.embed(inputs.slice(0, 1)), { code: 'ERR_QUIVER_CLOSED' });
  await embedder.close();
  await normalized.close();
});

t.test('a text model: user tokenizer, padding, attention mask, mean and first-token pooling', async (t) => {
  // Token embedding table lookup, zeroed at padded positions: [batch, tokens] ids → [batch, tokens, dim].
  const vocab = ['[pad]', 'red', 'blue', 'shirt', 'dress', 'long'];
  const dim = 3;
  const table = randomFloats(vocab.length * dim, 5);
  const model = encodeOnnxModel({
    inputs: [
      { name: 'input_ids', type: 'int64', shape: ['batch', 'tokens'] },
      { name: 'attention_mask', type: 'int64', shape: ['batch', 'tokens'] },
    ],
    outputs: [{ name: 'last_hidden_state', type: 'float32', shape: ['batch', 'tokens', dim] }],
    nodes: [
      { op: 'Gather', inputs: ['table', 'input_ids'], outputs: ['hidden'], attributes: { axis: 0 } },
      { op: 'Cast', inputs: ['attention_mask'], outputs: ['maskF'], attributes: { to: 1 } },
      { op: 'Unsqueeze', inputs: ['maskF', 'axis2'], outputs: ['mask3'] },
      { op: 'Mul', inputs: ['hidden', 'mask3'], outputs: ['last_hidden_state'] },
    ],
    initializers: [
      { name: 'table', dims: [vocab.length, dim], data: table },
      { name: 'axis2', dims: [1], data: BigInt64Array.of(2n) },
    ],
  });
  const tokenizer = (text: string) => text.split(' ').map((w) => vocab.indexOf(w));
  const texts = ['red shirt', 'long blue dress', 'blue'];
  const meanOf = (text: string) => {
    const ids = tokenizer(text);
    return Array.from({ length: dim }, (_, j) => ids.reduce((s, id) => s + table[id * dim + j], 0) / ids.length);
  };
  const embedder = await OnnxEmbedder.create(model, { input: { type: 'text', tokenizer } });
  t.equal(embedder.dim, dim);
  t.ok(allClose(await embedder.embed(texts), texts.flatMap(meanOf)), 'mean over real tokens only (padding excluded)');

  const first = await OnnxEmbedder.create(model, { input: { type: 'text', tokenizer, maxLength: 2 }, pooling: 'first' });
  t.ok(allClose(await first.embed(texts), texts.flatMap((s) => Array.from(table.subarray(tokenizer(s)[0] * dim, tokenizer(s)[0] * dim + dim)))), "'first' pooling");
  const cut = await OnnxEmbedder.create(model, { input: { type: 'text', tokenizer, maxLength: 2 } });
  t.ok(allClose(await cut.embed(['long blue dress']), meanOf('long blue')), 'maxLength cuts long texts');
  await t.rejects(embedder.embed(['red unknownword']), { name: 'RangeError', message: /tokenizer: token 1 of inputs\[0\] is -1/ });
  for (const e of [embedder, first, cut]) await e.close();
});

/** 6 × 4 RGB test image: pixel (x, y, c) = 10x + 50y + c. */
const W6H4: RawImage = (() => {
  const data = new Uint8Array(6 * 4 * 3);
  for (let y = 0; y < 4; y++) for (let x = 0; x < 6; x++) for (let c = 0; c < 3; c++) data[(y * 6 + x) * 3 + c] = 10 * x + 50 * y + c;
  return { data, width: 6, height: 4, channels: 3 };
})();
const mean = [0.5, 0.4, 0.3];
const std = [0.2, 0.25, 0.5];
/** What the centre 4 × 4 crop of W6H4 normalises to, NCHW, computed the way the library is specified to. */
function expectedCrop(): Float32Array {
  const out = new Float32Array(3 * 4 * 4);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < 4; y++) {
      for (let x = 0; x < 4; x++) out[c * 16 + y * 4 + x] = ((10 * (x + 1) + 50 * y + c) * (1 / 255) - mean[c]) / std[c];
    }
  }
  return out;
}

t.test('image preprocessing with sharp: centre crop, scale, mean/std, NCHW — exact values', async (t) => {
  const expected = expectedCrop();
  const raw = await prepareImages([W6H4], { size: 4, mean, std });
  t.same(Array.from(raw), Array.from(expected), 'raw pixels: the centre 4 columns of 6, normalised, channel planes');
  const png = await sharp(W6H4.data as Uint8Array, { raw: { width: 6, height: 4, channels: 3 } }).png().toBuffer();
  t.same(Array.from(await prepareImages([png], { size: 4, mean, std })), Array.from(expected), 'the same image as PNG bytes');
  const nhwc = await prepareImages([W6H4], { size: 4, mean, std, layout: 'NHWC' });
  t.equal(nhwc[(1 * 4 + 2) * 3 + 1], expected[1 * 16 + 1 * 4 + 2], 'NHWC puts channels last');

  const grey: RawImage = { data: Uint8Array.from({ length: 9 }, (_, i) => i * 20), width: 3, height: 3, channels: 1 };
  const rgb = await prepareImages([grey], { size: 3, scale: 1 });
  t.same(Array.from(rgb.subarray(0, 9)), Array.from(rgb.subarray(18, 27)), 'grey is replicated into R, G and B');
  t.same(Array.from(rgb.subarray(0, 9)), Array.from(grey.data), 'scale 1, mean 0, std 1: the pixel values themselves');

  // Resize: the shorter side goes to `resize`, then the centre crop; a flat colour stays exactly that colour.
  const flat: RawImage = { data: new Uint8Array(20 * 10 * 3).fill(200), width: 20, height: 10, channels: 3 };
  const small = await prepareImages([flat, W6H4], { size: [2, 3], resize: 5, scale: 1 });
  t.equal(small.length, 2 * 3 * 2 * 3, 'two images of 3 channels × 2 × 3');
  t.ok(small.subarray(0, 18).every((v) => v === 200), 'flat colour survives resize and crop');
});

t.test('an image model: OnnxEmbedder feeds the preprocessed NCHW batch', async (t) => {
  // Per-channel mean of the image: [batch, 3, H, W] → [batch, 3].
  const model = encodeOnnxModel({
    inputs: [{ name: 'pixel_values', type: 'float32', shape: ['batch', 3, 4, 4] }],
    outputs: [{ name: 'pooled', type: 'float32', shape: ['batch', 3] }],
    nodes: [{ op: 'ReduceMean', inputs: ['pixel_values'], outputs: ['pooled'], attributes: { axes: [2, 3], keepdims: 0 } }],
  });
  const embedder = await OnnxEmbedder.create(model, { input: { type: 'image', preprocessing: { size: 4, mean, std } } });
  t.equal(embedder.dim, 3);
  const expected = expectedCrop();
  const channelMean = [0, 1, 2].map((c) => expected.subarray(c * 16, c * 16 + 16).reduce((a, b) => a + b, 0) / 16);
  const inputs: ImageInput[] = [W6H4, W6H4];
  t.ok(allClose(await embedder.embed(inputs), [...channelMean, ...channelMean]), 'channel means of the normalised crop');
  await embedder.close();
});

t.test('OnnxReranker with a bilinear pair scorer: scores = q·W·c, unknown ids -Infinity', async (t) => {
  const dim = 5;
  const W = randomFloats(dim * dim, 7);
  const store = new VectorStore(dim);
  const cands = randomFloats(6 * dim, 8);
  store.set(BigInt64Array.of(10n, 11n, 12n, 13n, 14n, 15n), cands);
  const reranker = await OnnxReranker.create(bilinearScoreModel(W, dim), { candidates: store, batchSize: 4 });
  const q = randomFloats(dim, 9);
  const ids = BigInt64Array.of(15n, 99n, 10n, 12n, 11n, 13n, 14n);
  const scores = await reranker.rerank({ vector: q }, ids);
  const qW = project(q, 1, W, dim, dim);
  const want = Array.from(ids, (id) => {
    if (id === 99n) return -Infinity;
    const row = Number(id - 10n);
    return qW.reduce((s, x, j) => s + x * cands[row * dim + j], 0);
  });
  t.equal(scores[1], -Infinity, 'an id missing from the store');
  t.ok(allClose(Array.from(scores).filter(Number.isFinite), want.filter(Number.isFinite)), 'q·W·c for 6 candidates over 2 runs');
  await reranker.close();
});

t.test('OnnxReranker with local feature sets: padding and masks reach the model', async (t) => {
  // score = q·c + (number of real candidate local features) + Σ query local features.
  const [dim, localDim] = [2, 3];
  const model = encodeOnnxModel({
    inputs: [
      { name: 'query', type: 'float32', shape: ['pairs', dim] },
      { name: 'candidate', type: 'float32', shape: ['pairs', dim] },
      { name: 'query_local', type: 'float32', shape: ['pairs', 'nq', localDim] },
      { name: 'candidate_local', type: 'float32', shape: ['pairs', 'nc', localDim] },
      { name: 'candidate_local_mask', type: 'float32', shape: ['pairs', 'nc'] },
    ],
    outputs: [{ name: 'score', type: 'float32', shape: ['pairs'] }],
    nodes: [
      { op: 'Mul', inputs: ['query', 'candidate'], outputs: ['qc'] },
      { op: 'ReduceSum', inputs: ['qc', 'ax1'], outputs: ['global'], attributes: { keepdims: 0 } },
      { op: 'ReduceSum', inputs: ['candidate_local_mask', 'ax1'], outputs: ['count'], attributes: { keepdims: 0 } },
      { op: 'ReduceSum', inputs: ['query_local', 'ax12'], outputs: ['qsum'], attributes: { keepdims: 0 } },
      // candidate_local is read but contributes 0·x, so the graph keeps the input while the sum stays simple.
      { op: 'ReduceSum', inputs: ['candidate_local', 'ax12'], outputs: ['csum'], attributes: { keepdims: 0 } },
      { op: 'Mul', inputs: ['csum', 'zero'], outputs: ['czero'] },
      { op: 'Add', inputs: ['global', 'count'], outputs: ['s1'] },
      { op: 'Add', inputs: ['s1', 'qsum'], outputs: ['s2'] },
      { op: 'Add', inputs: ['s2', 'czero'], outputs: ['score'] },
    ],
    initializers: [
      { name: 'ax1', dims: [1], data: BigInt64Array.of(1n) },
      { name: 'ax12', dims: [2], data: BigInt64Array.of(1n, 2n) },
      { name: 'zero', dims: [], data: Float32Array.of(0) },
    ],
  });
  const globals = new VectorStore(dim);
  globals.set(BigInt64Array.of(1n, 2n, 3n), Float32Array.of(1, 0, 0, 1, 1, 1));
  const locals = new LocalFeatureStore(localDim);
  locals.set(1n, new Float32Array(3 * localDim).fill(0.5)); // 3 local features
  locals.set(2n, new Float32Array(1 * localDim)); // 1
  // 3n has none: an all-padding set, mask all 0
  const queryLocal = Float32Array.of(1, 2, 3, 4, 5, 6); // two query local features, sum 21
  const reranker = await OnnxReranker.create<string>(model, { candidates: globals, candidateLocal: locals, queryLocal: () => queryLocal });
  const scores = await reranker.rerank({ vector: Float32Array.of(2, 3), input: 'q' }, BigInt64Array.of(1n, 2n, 3n));
  t.same(Array.from(scores), [2 + 3 + 21, 3 + 1 + 21, 5 + 0 + 21]);
  await reranker.close();
});

t.test('ProductEmbedder with an ONNX fusion head (two inputs, and one concatenated input)', async (t) => {
  const images: Record<string, number[]> = { a: [1, 2, 2], b: [0, 3, 4] };
  const texts: Record<string, number[]> = { x: [3, 4], y: [1, 0] };
  const image = new TableEmbedder<ImageInput>(3, (k) => Float32Array.from(images[k as string]));
  const text = new TableEmbedder<string>(2, (k) => Float32Array.from(texts[k]));
  const outDim = 4;
  const W = randomFloats(5 * outDim, 11);
  const b = randomFloats(outDim, 12);
  const products = [{ image: 'a', text: 'x' }, { image: 'b' }, { text: 'y' }];
  const joint = products.flatMap((p) => [
    ...(p.image ? Array.from(unit(images[p.image])) : [0, 0, 0]),
    ...(p.text ? Array.from(unit(texts[p.text])) : [0, 0]),
  ]);
  const raw = project(joint, 3, W, 5, outDim, b);
  const expected = [0, 1, 2].flatMap((i) => {
    const row = raw.slice(i * outDim, (i + 1) * outDim);
    const n = Math.hypot(...row);
    return row.map((v) => v / n);
  });
  const twoInputs = await ProductEmbedder.create({ image, text, fusion: { type: 'onnx', model: concatProjectionModel(W, 3, 2, outDim, b) } });
  t.equal(twoInputs.dim, outDim);
  t.equal(twoInputs.fusion, 'onnx');
  t.ok(allClose(await twoInputs.embed(products), expected), 'normalize(concat(û, t̂)·W + b), zeros for a missing part');
  const oneInput = await ProductEmbedder.create({ image, text, fusion: { type: 'onnx', model: linearProjectionModel(W, 5, outDim, b) } });
  t.ok(allClose(await oneInput.embed(products), expected), 'a one-input head gets the concatenation');
  const unnormalized = await ProductEmbedder.create({ image, text, fusion: { type: 'onnx', model: linearProjectionModel(W, 5, outDim, b), normalize: false } });
  t.ok(allClose(await unnormalized.embed(products), raw), 'normalize: false keeps the head output as is');
  for (const e of [twoInputs, oneInput, unnormalized]) await e.close();
  await t.rejects(
    ProductEmbedder.create({ image, text, fusion: { type: 'onnx', model: linearProjectionModel(W, 5, outDim).subarray(0, 0) } }),
    { name: 'RangeError', message: /model: expected the bytes of an ONNX model, got 0 bytes/ },
  );
  await t.rejects(
    ProductEmbedder.create({ image, text, fusion: { type: 'onnx', model: linearProjectionModel(randomFloats(4 * outDim, 1), 4, outDim) } }),
    { name: 'RangeError', message: /takes 4 values per row, but the concatenation of the image and text embeddings has 5/ },
  );
});

t.test('a file that is not an ONNX model fails with the loader message', async (t) => {
  await t.rejects(OnnxEmbedder.create(new Uint8Array([1, 2, 3, 4]), { input: { type: 'vector', dim: 2 } }), {
    message: /OnnxEmbedder: onnxruntime cannot load the model \(4 bytes\)/,
  });
});
