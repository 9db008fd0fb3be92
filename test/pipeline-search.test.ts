// SearchPipeline end to end with an in-memory embedder and a real quiver Index: stage timings, shortlist,
// reranking that restores the exact order a coarse PQ index loses, indexProducts with bigint ids and progress.
import t from 'tap';

import { Index } from '../lib/index';
import { ExactReranker, SearchPipeline, VectorStore, type Reranker } from '../lib/pipeline/index';
import { bruteForce, randomFloats } from './helpers';
import { TableEmbedder } from './pipeline-helpers';

const dim = 8;
const n = 600;
const base = randomFloats(n * dim, 21);
// Items are named "item-<i>"; their ids are 1000 + i, so ids and rows differ (as real catalogues do).
const vectorOf = (name: string) => {
  const i = Number(name.slice(5));
  return base.slice(i * dim, (i + 1) * dim);
};
const idOf = (i: number) => BigInt(1000 + i);
const items = Array.from({ length: n }, (_, i) => ({ id: idOf(i), input: `item-${i}` }));
// Queries: items 0..19, each nudged, embedded through a second table.
const queryVectors = randomFloats(20 * dim, 22).map((x, j) => base[j] + 0.3 * x);
const queryEmbedder = (name: string) => queryVectors.slice(Number(name.slice(6)) * dim, (Number(name.slice(6)) + 1) * dim);
const queries = Array.from({ length: 20 }, (_, q) => `query-${q}`);
const embed = (s: string) => (s.startsWith('query-') ? queryEmbedder(s) : vectorOf(s));

t.test('indexProducts embeds in batches, adds with bigint ids, reports progress', async (t) => {
  const embedder = new TableEmbedder<string>(dim, embed, 16);
  const index = await Index.train('PQ2x4', base, { dim, seed: 3, iterations: 5 });
  const pipeline = new SearchPipeline({ embedder, index, keepVectors: true });
  const progress: number[] = [];
  const result = await pipeline.indexProducts(items, { batchSize: 250, onProgress: (p) => progress.push(p.done) });
  t.equal(result.added, n);
  t.same(progress, [250, 500, 600], 'progress after each batch');
  t.equal(index.size, n);
  t.equal(pipeline.store!.size, n, 'vectors kept for exact refine');
  t.same(Array.from(pipeline.store!.get(idOf(7))!), Array.from(vectorOf('item-7')));
  t.ok(embedder.batches.every((b) => b <= 16), 'the embedder saw batches no larger than its batchSize');
  t.ok(result.timings.embedMs >= 0 && result.timings.addMs > 0 && result.timings.totalMs >= result.timings.addMs);
  const hit = await index.search(vectorOf('item-5'), 1);
  t.ok(hit.ids[0] >= 1000n, 'the index holds the given ids, not row numbers');
});

t.test('search: embed → shortlist → exact rerank → top k, with stage timings', async (t) => {
  const embedder = new TableEmbedder<string>(dim, embed, 8);
  // PQ2x4 (one byte per vector) is far too coarse to order neighbours well: reranking has work to do.
  const index = await Index.train('PQ2x4', base, { dim, seed: 3, iterations: 5 });
  const pipeline = new SearchPipeline({ embedder, index, keepVectors: true, shortlist: 20, batchSize: 7 });
  await pipeline.indexProducts(items);
  const k = 5;
  const result = await pipeline.search(queries, k);
  t.equal(result.ids.length, 20 * k);
  t.equal(result.candidates.perQuery, k * 20, 'the index was asked for k × shortlist');
  t.ok(result.reranked);
  for (const stage of ['embedMs', 'searchMs', 'rerankMs', 'totalMs'] as const) {
    t.ok(Number.isFinite(result.timings[stage]) && result.timings[stage] >= 0, `timings.${stage} = ${result.timings[stage].toFixed(2)} ms`);
  }
  t.ok(result.timings.totalMs >= result.timings.searchMs + result.timings.rerankMs - 1e-6, 'stages fit inside the total');

  const exact = bruteForce(base, queryVectors, dim, k);
  let exactMatches = 0;
  let annOrderDiffers = 0;
  for (let q = 0; q < 20; q++) {
    const got = Array.from(result.ids.subarray(q * k, (q + 1) * k), (id) => Number(id - 1000n));
    const shortlist = new Set(Array.from(result.candidates.ids.subarray(q * k * 20, (q + 1) * k * 20), (id) => Number(id - 1000n)));
    const want = exact.ids[q];
    // Exact rerank must give the exact top k whenever the shortlist holds it.
    if (want.every((i) => shortlist.has(i))) {
      t.same(got, want, `query ${q}: reranked = brute force`);
      exactMatches++;
    }
    const ann = Array.from(result.candidates.ids.subarray(q * k * 20, q * k * 20 + k), (id) => Number(id - 1000n));
    if (ann.join() !== want.join()) annOrderDiffers++;
    for (let r = 1; r < k; r++) t.ok(result.scores[q * k + r - 1] >= result.scores[q * k + r], `query ${q}: scores descend`);
  }
  t.ok(exactMatches >= 18, `exact top ${k} recovered for ${exactMatches}/20 queries`);
  t.ok(annOrderDiffers >= 10, `the PQ order alone was wrong for ${annOrderDiffers}/20 queries: reranking changed it`);

  const plain = await pipeline.search(queries, k, { rerank: false });
  t.notOk(plain.reranked);
  t.equal(plain.candidates.perQuery, k, 'without reranking only k are fetched');
  t.same(Array.from(plain.ids), Array.from(plain.candidates.ids), 'the ANN order is the answer');
  t.equal(plain.timings.rerankMs < 5, true);
  const byVector = await pipeline.searchByVector(queryVectors, k);
  t.same(Array.from(byVector.ids), Array.from(result.ids), 'searchByVector = search without the embed stage');
});

t.test('a custom reranker decides the order; ties keep the ANN order; k beyond the index pads', async (t) => {
  const embedder = new TableEmbedder<string>(dim, embed);
  const index = await Index.train('Flat', base, { dim });
  await index.add(base.subarray(0, 10 * dim), BigInt64Array.from({ length: 10 }, (_, i) => idOf(i)));
  const seen: { input?: string; ids: bigint[] }[] = [];
  // Prefers larger ids, except that ids 1000..1002 tie at 0.
  const reranker: Reranker<string> = {
    async rerank(query, candidates) {
      seen.push({ input: query.input, ids: Array.from(candidates) });
      return Float32Array.from(candidates, (id) => (id <= 1002n ? 0 : Number(id)));
    },
  };
  const pipeline = new SearchPipeline({ embedder, index, reranker, shortlist: 3 });
  const result = await pipeline.search(['item-0'], 4);
  t.same(Array.from(result.ids), [1009n, 1008n, 1007n, 1006n], 'the reranker order, not the distance order');
  t.equal(seen[0].input, 'item-0', 'the reranker got the query input');
  t.equal(seen[0].ids.length, 10, 'all 10 stored items (k × shortlist = 12 > size): padding is not sent');
  const all = await pipeline.search(['item-0'], 12, { shortlist: 1 });
  const ids = Array.from(all.ids);
  t.same(ids.slice(10), [-1n, -1n], 'k beyond the index: -1n padding');
  t.same(Array.from(all.scores.subarray(10)), [-Infinity, -Infinity]);
  const tied = ids.slice(7, 10);
  const annOrder = Array.from(all.candidates.ids).filter((id) => id <= 1002n && id >= 0n);
  t.same(tied, annOrder, 'equal scores keep the ANN order');

  const failing = new SearchPipeline({
    embedder,
    index,
    reranker: { rerank: async () => new Float32Array(1) },
  });
  await t.rejects(failing.search(['item-0', 'item-1'], 2), { name: 'TypeError', message: /reranker: expected 8 scores/ });
});

t.test('an ExactReranker over a user-filled store, inner-product index', async (t) => {
  const embedder = new TableEmbedder<string>(dim, embed);
  const index = await Index.train('PQ2x4', base, { dim, metric: 'ip', seed: 1, iterations: 4 });
  const store = new VectorStore(dim);
  const pipeline = new SearchPipeline({ embedder, index, keepVectors: store, reranker: new ExactReranker(store, { metric: 'ip' }), shortlist: 50 });
  await pipeline.indexProducts(items.slice(0, 200));
  t.equal(store.size, 200, 'the given store was filled');
  const result = await pipeline.search(['query-3'], 3);
  const exact = bruteForce(base.subarray(0, 200 * dim), queryVectors.subarray(3 * dim, 4 * dim), dim, 3, 'ip');
  t.same(Array.from(result.ids, (id) => Number(id - 1000n)), exact.ids[0], 'inner-product rerank = brute force');
});

t.test('categories: indexProducts labels items, a per-call filter restricts the search', async (t) => {
  const embedder = new TableEmbedder<string>(dim, embed);
  const index = await Index.train('Flat', base, { dim });
  const pipeline = new SearchPipeline({ embedder, index, keepVectors: true });
  await pipeline.indexProducts(items.slice(0, 90).map((item, i) => ({ ...item, category: i % 3 })));
  const result = await pipeline.search(['query-0', 'query-1'], 5, { searchOptions: { categories: [2] } });
  t.ok(Array.from(result.ids).every((id) => Number(id - 1000n) % 3 === 2), 'only category-2 items come back');
  const allowed = BigInt64Array.of(idOf(4), idOf(40));
  const filtered = await pipeline.search(['query-0'], 3, { searchOptions: { filter: allowed } });
  t.same(Array.from(filtered.ids).filter((id) => id >= 0n).sort(), [idOf(4), idOf(40)], 'an id allow-list');
});

t.test('indexProducts: re-adding an id fails unless upsert is set', async (t) => {
  const embedder = new TableEmbedder<string>(dim, embed);
  const index = await Index.train('Flat', base, { dim });
  const pipeline = new SearchPipeline({ embedder, index, keepVectors: true });
  await pipeline.indexProducts([{ id: 5n, input: 'item-1' }]);
  await t.rejects(pipeline.indexProducts([{ id: 5n, input: 'item-2' }]), 'a duplicate id is refused by the index');
  await pipeline.indexProducts([{ id: 5n, input: 'item-2' }], { upsert: true });
  t.equal(index.size, 1);
  t.same(Array.from(pipeline.store!.get(5n)!), Array.from(vectorOf('item-2')), 'the kept vector was replaced too');
  const hit = await pipeline.search(['item-2'], 1, { rerank: false });
  t.equal(hit.ids[0], 5n);
  t.equal(hit.scores[0], 0, 'the index holds the new vector (distance 0)');
});
