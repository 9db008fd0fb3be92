// Bad input to every public pipeline entry point must throw (or reject with) a TypeError or RangeError that
// names the argument; a missing optional package must say which package to install.
import t from 'tap';

import { Index } from '../lib/index';
import {
  CrossModalReranker,
  ExactReranker,
  LocalFeatureStore,
  MissingPackageError,
  MobileNetV2Embedder,
  OnnxEmbedder,
  OnnxReranker,
  ProductEmbedder,
  SearchPipeline,
  UniversalSentenceEncoder,
  VectorStore,
  bilinearScoreModel,
  checkEmbedder,
  concatProjectionModel,
  embedInBatches,
  encodeOnnxModel,
  l2NormalizeRows,
  linearProjectionModel,
  loadOptional,
  prepareImages,
  readIdx,
  retrievalMetrics,
  type ImageInput,
} from '../lib/pipeline/index';
import { TableEmbedder } from './pipeline-helpers';

t.test('a missing optional package names itself and how to install it', async (t) => {
  const name = 'quiver-no-such-package-for-tests';
  let error: unknown;
  try {
    loadOptional(name, 'TestFeature');
  } catch (e) {
    error = e;
  }
  t.ok(error instanceof MissingPackageError);
  const e = error as MissingPackageError;
  t.equal(e.code, 'ERR_QUIVER_MISSING_PACKAGE');
  t.equal(e.packageName, name);
  t.match(e.message, `TestFeature needs the optional package "${name}", which is not installed; install it with: npm install ${name}`);
  t.match((e.cause as NodeJS.ErrnoException).code, 'MODULE_NOT_FOUND', 'the resolver error is kept as the cause');
  t.match(new MissingPackageError('onnxruntime-node', 'OnnxEmbedder').message, /npm install onnxruntime-node@1\.30\.0/, 'known packages come with the tested version');
  t.equal(loadOptional('sharp', 'x'), loadOptional('sharp', 'y'), 'a loaded package is cached');
});

const dim = 4;
const vectors = Float32Array.from({ length: 40 * dim }, (_, i) => Math.sin(i));
const embedder = new TableEmbedder<string>(dim, () => vectors.slice(0, dim));
const imageEmbedder = new TableEmbedder<ImageInput>(3, () => new Float32Array(3).fill(1));
const store = new VectorStore(dim);
store.set(BigInt64Array.of(1n), vectors.slice(0, dim));
const index = Index.trainSync('Flat', vectors, { dim });
const nan = Float32Array.of(1, NaN, 0, 0);
const goodImage = { data: new Uint8Array(12), width: 2, height: 2, channels: 3 as const };
const query = { vector: vectors.slice(0, dim) };

type Case = [label: string, run: () => unknown, type: typeof TypeError | typeof RangeError, pattern: RegExp];
const cases: Case[] = [
  // loadOptional
  ['loadOptional: name not a string', () => loadOptional(3 as never, 'x'), TypeError, /packageName: expected a non-empty string, got 3/],
  ['loadOptional: purpose not a string', () => loadOptional('sharp', undefined as never), TypeError, /purpose: expected a string/],
  // VectorStore
  ['VectorStore: dim 0', () => new VectorStore(0), RangeError, /dim: expected an integer from 1/],
  ['VectorStore: dim a string', () => new VectorStore('4' as never), TypeError, /dim: expected an integer/],
  ['VectorStore: unknown option', () => new VectorStore(4, { size: 3 } as never), TypeError, /options: unknown option "size"/],
  ['VectorStore.set: ids an Array', () => store.set([1n] as never, vectors.slice(0, dim)), TypeError, /ids: expected a BigInt64Array/],
  ['VectorStore.set: count mismatch', () => store.set(BigInt64Array.of(1n, 2n), vectors.slice(0, dim)), RangeError, /ids: expected 1 ids \(one per vector\), got 2/],
  ['VectorStore.set: NaN', () => store.set(BigInt64Array.of(1n), nan), RangeError, /vectors: expected finite numbers, got NaN at element 1/],
  ['VectorStore.set: wrong dim', () => store.set(BigInt64Array.of(1n), new Float32Array(5)), RangeError, /vectors: .*multiple of dim 4, got length 5/],
  ['VectorStore.set: negative id', () => store.set(BigInt64Array.of(-1n), vectors.slice(0, dim)), RangeError, /ids\[0\]: expected an id from 0n/],
  ['VectorStore.get: number id', () => store.get(1 as never), TypeError, /id: expected a bigint id, got 1/],
  ['VectorStore.score: short query', () => store.score(new Float32Array(3), BigInt64Array.of(1n)), RangeError, /query: expected 4 floats, got 3/],
  ['VectorStore.score: bad metric', () => store.score(vectors.slice(0, dim), BigInt64Array.of(1n), 'dot' as never), RangeError, /metric: expected one of 'l2', 'ip', 'cosine', got "dot"/],
  ['VectorStore.gather: ids a number', () => store.gather(3 as never), TypeError, /ids: expected a BigInt64Array/],
  ['l2NormalizeRows: wrong length', () => l2NormalizeRows(new Float32Array(5), 2), RangeError, /vectors: .*multiple of dim 2/],
  ['l2NormalizeRows: dim 0', () => l2NormalizeRows(new Float32Array(4), 0), RangeError, /dim: expected an integer from 1/],
  // LocalFeatureStore
  ['LocalFeatureStore: dim -1', () => new LocalFeatureStore(-1), RangeError, /dim: expected an integer from 1/],
  ['LocalFeatureStore.set: id a string', () => new LocalFeatureStore(2).set('1' as never, new Float32Array(2)), TypeError, /id: expected a bigint id/],
  ['LocalFeatureStore.set: ragged features', () => new LocalFeatureStore(2).set(1n, new Float32Array(3)), RangeError, /features: expected a non-empty length that is a multiple of dim 2, got 3/],
  ['LocalFeatureStore.get: id a number', () => new LocalFeatureStore(2).get(3 as never), TypeError, /id: expected a bigint id, got 3/],
  // ExactReranker
  ['ExactReranker: store an object', () => new ExactReranker({} as never), TypeError, /store: expected a VectorStore/],
  ['ExactReranker: bad metric', () => new ExactReranker(store, { metric: 'manhattan' as never }), RangeError, /options\.metric: expected one of/],
  // CrossModalReranker
  ['CrossModalReranker: no options', () => new CrossModalReranker(undefined as never), TypeError, /options: expected \{ queryEmbedder, candidates \}/],
  ['CrossModalReranker: queryEmbedder not an embedder', () => new CrossModalReranker({ queryEmbedder: {} as never, candidates: store }), TypeError, /options\.queryEmbedder: expected an Embedder/],
  ['CrossModalReranker: candidates a number', () => new CrossModalReranker({ queryEmbedder: embedder, candidates: 3 as never }), TypeError, /options\.candidates: expected a VectorStore or \{ embedder, load \}/],
  ['CrossModalReranker: load missing', () => new CrossModalReranker({ queryEmbedder: embedder, candidates: { embedder: imageEmbedder } as never }), TypeError, /options\.candidates\.load: expected a function/],
  ['CrossModalReranker: spaces differ', () => new CrossModalReranker({ queryEmbedder: embedder, candidates: { embedder: imageEmbedder, load: () => [] } }), RangeError, /candidate vectors have dim 3 but the query embedder gives 4/],
  // checkEmbedder / embedInBatches
  ['checkEmbedder: dim missing', () => checkEmbedder({ embed() {}, batchSize: 1 }, 'e'), TypeError, /e\.dim: expected an integer/],
  // SearchPipeline
  ['SearchPipeline: no options', () => new SearchPipeline(undefined as never), TypeError, /options: expected \{ embedder, index/],
  ['SearchPipeline: index not an Index', () => new SearchPipeline({ embedder, index: {} as never }), TypeError, /options\.index: expected a quiver Index/],
  ['SearchPipeline: dims differ', () => new SearchPipeline({ embedder: imageEmbedder as never, index }), RangeError, /options\.index: its dim 4 differs from the embedder's 3/],
  ['SearchPipeline: keepVectors a number', () => new SearchPipeline({ embedder, index, keepVectors: 1 as never }), TypeError, /options\.keepVectors: expected true or false/],
  ['SearchPipeline: store of another dim', () => new SearchPipeline({ embedder, index, keepVectors: new VectorStore(3) }), RangeError, /options\.keepVectors: the store's dim 3/],
  ['SearchPipeline: reranker without rerank()', () => new SearchPipeline({ embedder, index, reranker: {} as never }), TypeError, /options\.reranker: expected a Reranker/],
  ['SearchPipeline: shortlist 0', () => new SearchPipeline({ embedder, index, shortlist: 0 }), RangeError, /options\.shortlist: expected an integer from 1/],
  ['SearchPipeline: batchSize 1.5', () => new SearchPipeline({ embedder, index, batchSize: 1.5 }), RangeError, /options\.batchSize/],
  ['SearchPipeline: perCategory', () => new SearchPipeline({ embedder, index, searchOptions: { perCategory: true } as never }), TypeError, /options\.searchOptions\.perCategory/],
  ['SearchPipeline: unknown search option', () => new SearchPipeline({ embedder, index, searchOptions: { nprob: 2 } as never }), TypeError, /options\.searchOptions: unknown option "nprob"/],
  ['SearchPipeline: unknown option', () => new SearchPipeline({ embedder, index, rerankers: [] } as never), TypeError, /options: unknown option "rerankers"/],
  // encodeOnnxModel and the model builders
  ['encodeOnnxModel: graph missing', () => encodeOnnxModel(undefined as never), TypeError, /graph\.inputs: expected an array/],
  ['encodeOnnxModel: bad element type', () => encodeOnnxModel({ inputs: [{ name: 'x', type: 'float16' as never, shape: [1] }], outputs: [{ name: 'y', type: 'float32', shape: [1] }], nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }] }), RangeError, /graph\.inputs\[0\]\.type: expected 'float32', 'int32' or 'int64', got "float16"/],
  ['encodeOnnxModel: initializer size', () => encodeOnnxModel({ inputs: [], outputs: [{ name: 'y', type: 'float32', shape: [2] }], nodes: [{ op: 'Identity', inputs: ['c'], outputs: ['y'] }], initializers: [{ name: 'c', dims: [2], data: new Float32Array(3) }] }), RangeError, /graph\.initializers\[0\]\.data: dims \[2\] need 2 values, got 3/],
  ['encodeOnnxModel: node op missing', () => encodeOnnxModel({ inputs: [], outputs: [{ name: 'y', type: 'float32', shape: [] }], nodes: [{ inputs: [], outputs: ['y'] } as never] }), TypeError, /graph\.nodes\[0\]\.op: expected a string/],
  ['linearProjectionModel: weights too short', () => linearProjectionModel(new Float32Array(5), 2, 3), RangeError, /weights: expected 2 × 3 = 6 floats, got 5/],
  ['linearProjectionModel: bias a list', () => linearProjectionModel(new Float32Array(6), 2, 3, [1, 2, 3] as never), TypeError, /bias: expected a Float32Array/],
  ['concatProjectionModel: textDim 0', () => concatProjectionModel(new Float32Array(6), 2, 0, 3), RangeError, /textDim: expected an integer from 1/],
  ['bilinearScoreModel: weights Float64Array', () => bilinearScoreModel(new Float64Array(4) as never, 2), TypeError, /weights: expected a Float32Array of 2 × 2 floats, got Float64Array/],
  // retrievalMetrics
  ['retrievalMetrics: ids an Array', () => retrievalMetrics({ ids: [1n] as never, perQuery: 1, queryLabels: [0], labelOf: () => 0, relevantCount: () => 1, ks: [1] }), TypeError, /input\.ids: expected a BigInt64Array/],
  ['retrievalMetrics: k beyond perQuery', () => retrievalMetrics({ ids: new BigInt64Array(2), perQuery: 2, queryLabels: [0], labelOf: () => 0, relevantCount: () => 1, ks: [3] }), RangeError, /input\.ks\[0\]: expected an integer from 1 to 2, got 3/],
  ['retrievalMetrics: shape mismatch', () => retrievalMetrics({ ids: new BigInt64Array(3), perQuery: 2, queryLabels: [0], labelOf: () => 0, relevantCount: () => 1, ks: [1] }), RangeError, /input\.ids: expected queryLabels\.length × perQuery = 1 × 2 ids, got 3/],
];

for (const [label, run, type, pattern] of cases) {
  t.test(label, async (t) => {
    t.throws(run, type, `throws a ${type.name}`);
    t.throws(run, { message: pattern }, `message matches ${pattern}`);
  });
}

type AsyncCase = [label: string, run: () => Promise<unknown>, type: typeof TypeError | typeof RangeError, pattern: RegExp];
const pipeline = new SearchPipeline({ embedder, index, keepVectors: true });
const vectorModel = linearProjectionModel(new Float32Array(dim * 2), dim, 2);
const asyncCases: AsyncCase[] = [
  // embedInBatches
  ['embedInBatches: batchSize 0', () => embedInBatches(['a'], 0, 2, async () => new Float32Array(2)), RangeError, /batchSize: expected an integer from 1/],
  ['embedInBatches: wrong rows from the callback', () => embedInBatches(['a', 'b'], 2, 2, async () => new Float32Array(2)), TypeError, /embedBatch: expected a Float32Array of 2 × 2 floats for 2 inputs, got Float32Array of length 2/],
  // SearchPipeline methods
  ['search: inputs a string', () => pipeline.search('abc' as never, 3), TypeError, /inputs: expected an array, got "abc"/],
  ['search: no inputs', () => pipeline.search([], 3), RangeError, /inputs: expected a non-empty array/],
  ['search: k 0', () => pipeline.search(['a'], 0), RangeError, /k: expected an integer from 1/],
  ['search: k a string', () => pipeline.search(['a'], '3' as never), TypeError, /k: expected an integer/],
  ['search: unknown option', () => pipeline.search(['a'], 1, { shortList: 2 } as never), TypeError, /options: unknown option "shortList"/],
  ['search: rerank not boolean', () => pipeline.search(['a'], 1, { rerank: 'yes' as never }), TypeError, /options\.rerank: expected true or false/],
  ['search: per-call perCategory', () => pipeline.search(['a'], 1, { searchOptions: { perCategory: 2 } as never }), TypeError, /options\.searchOptions\.perCategory/],
  ['searchByVector: wrong length', () => pipeline.searchByVector(new Float32Array(5), 1), RangeError, /vectors: .*multiple of dim 4/],
  ['searchByVector: NaN', () => pipeline.searchByVector(nan, 1), RangeError, /vectors: expected finite numbers/],
  ['indexProducts: items not an array', () => pipeline.indexProducts({} as never), TypeError, /items: expected an array/],
  ['indexProducts: id a number', () => pipeline.indexProducts([{ id: 1 as never, input: 'a' }]), TypeError, /items\[0\]\.id: expected a bigint id, got 1/],
  ['indexProducts: id negative', () => pipeline.indexProducts([{ id: -5n, input: 'a' }]), RangeError, /items\[0\]\.id: expected an id from 0n/],
  ['indexProducts: input missing', () => pipeline.indexProducts([{ id: 1n } as never]), TypeError, /items\[0\]\.input: expected the item's input/],
  ['indexProducts: category on some items only', () => pipeline.indexProducts([{ id: 1n, input: 'a' }, { id: 2n, input: 'b', category: 1 }]), TypeError, /items\[1\]\.category: items\[0\] has no category/],
  ['indexProducts: category negative', () => pipeline.indexProducts([{ id: 1n, input: 'a', category: -1 }]), RangeError, /items\[0\]\.category: expected an integer from 0/],
  ['indexProducts: onProgress not a function', () => pipeline.indexProducts([{ id: 1n, input: 'a' }], { onProgress: 1 as never }), TypeError, /options\.onProgress: expected a function/],
  ['indexProducts: upsert a string', () => pipeline.indexProducts([{ id: 1n, input: 'a' }], { upsert: 'yes' as never }), TypeError, /options\.upsert: expected true or false/],
  ['search: k × shortlist too large', () => pipeline.search(['a'], 65536, { shortlist: 1000 }), RangeError, /options\.shortlist: k 65536 × shortlist 1000 = 65536000 candidates per query exceeds/],
  ['indexProducts: batchSize 0', () => pipeline.indexProducts([{ id: 1n, input: 'a' }], { batchSize: 0 }), RangeError, /options\.batchSize: expected an integer from 1/],
  // rerankers
  ['ExactReranker.rerank: query null', () => new ExactReranker(store).rerank(null as never, BigInt64Array.of(1n)), TypeError, /query: expected \{ vector: Float32Array/],
  ['ExactReranker.rerank: short vector', () => new ExactReranker(store).rerank({ vector: new Float32Array(2) }, BigInt64Array.of(1n)), RangeError, /query\.vector: expected 4 floats, got 2/],
  ['ExactReranker.rerank: candidates an Array', () => new ExactReranker(store).rerank(query, [1n] as never), TypeError, /candidates: expected a BigInt64Array/],
  ['CrossModalReranker.rerank: no input', () => new CrossModalReranker({ queryEmbedder: embedder, candidates: store }).rerank(query, BigInt64Array.of(1n)), TypeError, /query\.input: a cross-modal reranker embeds the query input itself/],
  // ProductEmbedder
  ['ProductEmbedder.create: no options', () => ProductEmbedder.create(undefined as never), TypeError, /options: expected \{ image, text, fusion\? \}/],
  ['ProductEmbedder.create: text not an embedder', () => ProductEmbedder.create({ image: imageEmbedder, text: 'use' as never }), TypeError, /options\.text: expected an Embedder/],
  ['ProductEmbedder.create: fusion type', () => ProductEmbedder.create({ image: imageEmbedder, text: embedder, fusion: { type: 'attention' } as never }), RangeError, /options\.fusion\.type: expected one of 'concat', 'onnx', got "attention"/],
  ['ProductEmbedder.create: negative weight', () => ProductEmbedder.create({ image: imageEmbedder, text: embedder, fusion: { type: 'concat', imageWeight: -1 } }), RangeError, /options\.fusion\.imageWeight: expected a finite number from 0/],
  ['ProductEmbedder.create: both weights 0', () => ProductEmbedder.create({ image: imageEmbedder, text: embedder, fusion: { type: 'concat', imageWeight: 0, textWeight: 0 } }), RangeError, /imageWeight and textWeight cannot both be 0/],
  ['ProductEmbedder.create: onnx model a number', () => ProductEmbedder.create({ image: imageEmbedder, text: embedder, fusion: { type: 'onnx', model: 5 as never } }), TypeError, /model: expected the path of an \.onnx file or a Uint8Array/],
  ['ProductEmbedder.embed: neither part', async () => (await ProductEmbedder.create({ image: imageEmbedder, text: embedder })).embed([{}]), TypeError, /inputs\[0\]: expected a product with an image, a text or both/],
  ['ProductEmbedder.embed: text a number', async () => (await ProductEmbedder.create({ image: imageEmbedder, text: embedder })).embed([{ text: 5 as never }]), TypeError, /inputs\[0\]\.text: expected a string/],
  ['ProductEmbedder.embed: raw image too short', async () => (await ProductEmbedder.create({ image: imageEmbedder, text: embedder })).embed([{ image: { ...goodImage, data: new Uint8Array(5) } }]), RangeError, /inputs\[0\]\.image\.data: expected width × height × channels = 2 × 2 × 3 = 12 bytes, got 5/],
  ['ProductEmbedder.embed: unknown key', async () => (await ProductEmbedder.create({ image: imageEmbedder, text: embedder })).embed([{ title: 'x' } as never]), TypeError, /inputs\[0\]: unknown option "title"/],
  // prepareImages
  ['prepareImages: inputs not an array', () => prepareImages(goodImage as never, { size: 2 }), TypeError, /inputs: expected an array/],
  ['prepareImages: input a number', () => prepareImages([7 as never], { size: 2 }), TypeError, /inputs\[0\]: expected an image/],
  ['prepareImages: channels 5', () => prepareImages([{ ...goodImage, channels: 5 as never }], { size: 2 }), RangeError, /inputs\[0\]\.channels: expected an integer from 1 to 4, got 5/],
  ['prepareImages: no preprocessing', () => prepareImages([goodImage], undefined as never), TypeError, /preprocessing: expected an object with at least \{ size \}/],
  ['prepareImages: size 0', () => prepareImages([goodImage], { size: 0 }), RangeError, /preprocessing\.size: expected an integer from 1/],
  ['prepareImages: mean of 2', () => prepareImages([goodImage], { size: 2, mean: [0, 0] }), RangeError, /preprocessing\.mean: expected 3 numbers \(one per channel\), got 2/],
  ['prepareImages: std 0', () => prepareImages([goodImage], { size: 2, std: [1, 0, 1] }), RangeError, /preprocessing\.std\[1\]: expected a positive number, got 0/],
  ['prepareImages: layout', () => prepareImages([goodImage], { size: 2, layout: 'CHW' as never }), RangeError, /preprocessing\.layout: expected one of 'NCHW', 'NHWC', got "CHW"/],
  ['prepareImages: kernel', () => prepareImages([goodImage], { size: 2, kernel: 'bicubic' as never }), RangeError, /preprocessing\.kernel: expected one of/],
  // OnnxEmbedder
  ['OnnxEmbedder.create: model a number', () => OnnxEmbedder.create(3 as never, { input: { type: 'vector', dim: 2 } }), TypeError, /model: expected the path of an \.onnx file or a Uint8Array/],
  ['OnnxEmbedder.create: no options', () => OnnxEmbedder.create(vectorModel, undefined as never), TypeError, /options: expected an object with at least \{ input \}/],
  ['OnnxEmbedder.create: input type', () => OnnxEmbedder.create(vectorModel, { input: { type: 'audio' } as never }), RangeError, /options\.input\.type: expected one of 'image', 'text', 'vector', got "audio"/],
  ['OnnxEmbedder.create: tokenizer missing', () => OnnxEmbedder.create(vectorModel, { input: { type: 'text' } as never }), TypeError, /options\.input\.tokenizer: expected a function/],
  ['OnnxEmbedder.create: preprocessing size', () => OnnxEmbedder.create(vectorModel, { input: { type: 'image', preprocessing: { size: -2 } } }), RangeError, /options\.input\.preprocessing\.size: expected an integer from 1/],
  ['OnnxEmbedder.create: pooling', () => OnnxEmbedder.create(vectorModel, { input: { type: 'vector', dim }, pooling: 'max' as never }), RangeError, /options\.pooling: expected one of 'mean', 'first', got "max"/],
  ['OnnxEmbedder.create: batchSize 0', () => OnnxEmbedder.create(vectorModel, { input: { type: 'vector', dim }, batchSize: 0 }), RangeError, /options\.batchSize: expected an integer from 1/],
  ['OnnxEmbedder.create: dim disagrees with the model', () => OnnxEmbedder.create(vectorModel, { input: { type: 'vector', dim }, dim: 7 }), RangeError, /options\.dim: the model's output "output" has 2 values per row, not 7/],
  ['OnnxEmbedder.create: no such output', () => OnnxEmbedder.create(vectorModel, { input: { type: 'vector', dim }, output: 'logits' }), RangeError, /options\.output: the model has no output "logits"; its outputs are "output"/],
  ['OnnxEmbedder.embed: vector too short', async () => (await OnnxEmbedder.create(vectorModel, { input: { type: 'vector', dim } })).embed([new Float32Array(3)]), RangeError, /inputs\[0\]: expected 4 floats, got 3/],
  ['OnnxEmbedder.embed: image a number', async () => (await OnnxEmbedder.create(vectorModel, { input: { type: 'image', preprocessing: { size: 2 } } })).embed([1 as never]), TypeError, /inputs\[0\]: expected an image/],
  // OnnxReranker
  ['OnnxReranker.create: candidates not a store', () => OnnxReranker.create(bilinearScoreModel(new Float32Array(16), 4), { candidates: {} as never }), TypeError, /options\.candidates: expected a VectorStore/],
  ['OnnxReranker.create: unknown name key', () => OnnxReranker.create(bilinearScoreModel(new Float32Array(16), 4), { candidates: store, names: { q: 'x' } as never }), TypeError, /options\.names: unknown option "q"/],
  ['OnnxReranker.create: model lacks the query input', () => OnnxReranker.create(vectorModel, { candidates: store }), RangeError, /options\.names\.query: the model has no input "query"; its inputs are "input"/],
  ['OnnxReranker.create: store dim differs', () => OnnxReranker.create(bilinearScoreModel(new Float32Array(9), 3), { candidates: store }), RangeError, /the model's "query" input has 3 values per row, but the store holds 4/],
  ['OnnxReranker.rerank: short vector', async () => (await OnnxReranker.create(bilinearScoreModel(new Float32Array(16), 4), { candidates: store })).rerank({ vector: new Float32Array(1) }, BigInt64Array.of(1n)), RangeError, /query\.vector: expected 4 floats, got 1/],
  // model adapters: options are checked before anything loads
  ['UniversalSentenceEncoder.load: batchSize 0', () => UniversalSentenceEncoder.load({ batchSize: 0 }), RangeError, /options\.batchSize: expected an integer from 1/],
  ['UniversalSentenceEncoder.load: unknown option', () => UniversalSentenceEncoder.load({ model: 'large' } as never), TypeError, /options: unknown option "model"/],
  ['MobileNetV2Embedder.load: backend', () => MobileNetV2Embedder.load({ backend: 'webgl' as never }), RangeError, /options\.backend: expected one of 'wasm', 'cpu', got "webgl"/],
  // readIdx
  ['readIdx: path a number', () => readIdx(3 as never), TypeError, /path: expected a string, got 3/],
];

for (const [label, run, type, pattern] of asyncCases) {
  t.test(label, async (t) => {
    let error: unknown;
    try {
      await run();
    } catch (e) {
      error = e;
    }
    t.ok(error instanceof type, `rejects with a ${type.name}, got ${(error as Error | undefined)?.name}: ${(error as Error | undefined)?.message}`);
    t.match((error as Error | undefined)?.message ?? '', pattern);
  });
}
