// SearchPipeline: embed → ANN shortlist from a quiver Index (k × shortlist candidates) → rerank → top k, over
// batches of queries, with the wall time of each stage in the result; and indexProducts(), which embeds items
// and adds them to the index (and the vector store) batch by batch, reporting progress.
import { Index, type AddOptions, type SearchOptions } from '../quiver';
import { describe, expectArray, expectBoolean, expectFunction, expectId, expectInteger, expectMatrix, expectOptions, optionalInteger } from './args';
import { MAX_BATCH_SIZE, checkBatchSize, checkEmbedder, type Embedder } from './embedder';
import { ExactReranker, type Reranker, type RerankQuery } from './rerank';
import { VectorStore, distanceToScore } from './vectors';

export interface SearchPipelineOptions<Input> {
  embedder: Embedder<Input>;
  /** A trained quiver index whose dim equals embedder.dim. */
  index: Index;
  /** Re-scores the shortlist (default: exact refine from the kept vectors when keepVectors is set, else none). */
  reranker?: Reranker<Input>;
  /**
   * Keep the float32 vector of every item indexProducts() adds: true for a new VectorStore, or a store to fill.
   * Costs 4·dim bytes per item; enables the default exact reranker.
   */
  keepVectors?: boolean | VectorStore;
  /** Candidates per result to rerank: the index returns k × shortlist (default 4). */
  shortlist?: number;
  /** Queries embedded and searched per step (default 64). */
  batchSize?: number;
  /** Queries reranked at once (default 4). */
  rerankConcurrency?: number;
  /** Passed to index.search: nprobe, refine, threads, filter (id allow-list), categories. */
  searchOptions?: PipelineIndexSearchOptions;
}

/** The index.search options a pipeline passes through (perCategory changes the result layout, so it is not one). */
export type PipelineIndexSearchOptions = Omit<SearchOptions, 'perCategory'>;
const INDEX_SEARCH_KEYS = ['nprobe', 'refine', 'threads', 'filter', 'categories'] as const;

function checkIndexSearchOptions(value: unknown, name: string): PipelineIndexSearchOptions {
  if (value !== null && typeof value === 'object' && 'perCategory' in value) {
    throw new TypeError(`${name}.perCategory: a pipeline returns one ranked list per query; search the index directly for per-category lists`);
  }
  // index.search checks the values; rejecting unknown keys here makes a typo fail early.
  return expectOptions<PipelineIndexSearchOptions>(value, name, INDEX_SEARCH_KEYS);
}

export interface PipelineSearchOptions {
  /** Overrides the pipeline's shortlist factor for this call. */
  shortlist?: number;
  /** false skips reranking (the ANN order is the answer); default true when there is a reranker. */
  rerank?: boolean;
  /** index.search options for this call, over the pipeline's own (e.g. a filter or categories per request). */
  searchOptions?: PipelineIndexSearchOptions;
}

/** Wall time of each stage in milliseconds, summed over the batches of one call. */
export interface StageTimings {
  embedMs: number;
  searchMs: number;
  rerankMs: number;
  totalMs: number;
}

export interface PipelineSearchResult {
  /** nq × k ids, best first; -1n where fewer than k were found. */
  ids: BigInt64Array;
  /** nq × k scores, higher is better: the reranker's scores when reranked, else the index's similarity. */
  scores: Float32Array;
  k: number;
  /** The ANN shortlist, nq × (k × shortlist) in index order, scores higher-is-better (−distance for 'l2'). */
  candidates: { ids: BigInt64Array; scores: Float32Array; perQuery: number };
  reranked: boolean;
  timings: StageTimings;
}

/** One item to index: its id and the input the embedder takes (a product, a text, an image…). */
export interface PipelineItem<Input> {
  id: bigint;
  input: Input;
  /** A small integer label for category-filtered search (give it for all items of a call or for none). */
  category?: number;
}

export interface IndexProgress {
  /** Items embedded and added so far. */
  done: number;
  total: number;
  embedMs: number;
  addMs: number;
}

export interface IndexProductsOptions {
  /** Items embedded and added per step (default: the embedder's batch size × 4). */
  batchSize?: number;
  /** Called after each batch is added. Throwing from it stops indexing (what was added stays). */
  onProgress?: (progress: IndexProgress) => void;
  /** Replace the vectors of ids already in the index instead of failing (the index's add option). */
  upsert?: boolean;
}

export interface IndexProductsResult {
  added: number;
  timings: { embedMs: number; addMs: number; totalMs: number };
}

const MAX_K = 1 << 16;
const MAX_SHORTLIST = 1024;
const MAX_CANDIDATES = 1 << 20;

/**
 * Runs `task` over 0…count-1 with at most `limit` running at once. After a failure no new task starts; the
 * first error is thrown once the running ones have settled, so nothing is left rejecting unobserved.
 */
async function forEachLimited(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (next < count && !failure) {
      const i = next++;
      try {
        await task(i);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
  if (failure) throw failure.error;
}

export class SearchPipeline<Input = unknown> {
  readonly embedder: Embedder<Input>;
  readonly index: Index;
  readonly reranker?: Reranker<Input>;
  /** The kept float32 vectors, when keepVectors was set. */
  readonly store?: VectorStore;
  readonly shortlist: number;
  readonly batchSize: number;
  readonly rerankConcurrency: number;
  #searchOptions: PipelineIndexSearchOptions;

  constructor(options: SearchPipelineOptions<Input>) {
    if (options === undefined) throw new TypeError('options: expected { embedder, index, … }, got undefined');
    const o = expectOptions<SearchPipelineOptions<Input>>(options, 'options', [
      'embedder',
      'index',
      'reranker',
      'keepVectors',
      'shortlist',
      'batchSize',
      'rerankConcurrency',
      'searchOptions',
    ]);
    this.embedder = checkEmbedder<Input>(o.embedder, 'options.embedder');
    if (!(o.index instanceof Index)) throw new TypeError(`options.index: expected a quiver Index, got ${describe(o.index)}`);
    if (o.index.dim !== this.embedder.dim) {
      throw new RangeError(`options.index: its dim ${o.index.dim} differs from the embedder's ${this.embedder.dim}`);
    }
    this.index = o.index;
    if (o.keepVectors instanceof VectorStore) {
      if (o.keepVectors.dim !== this.embedder.dim) throw new RangeError(`options.keepVectors: the store's dim ${o.keepVectors.dim} differs from the embedder's ${this.embedder.dim}`);
      this.store = o.keepVectors;
    } else if (o.keepVectors !== undefined && expectBoolean(o.keepVectors, 'options.keepVectors')) {
      this.store = new VectorStore(this.embedder.dim);
    }
    if (o.reranker !== undefined) {
      if (o.reranker === null || typeof o.reranker !== 'object' || typeof o.reranker.rerank !== 'function') {
        throw new TypeError(`options.reranker: expected a Reranker (an object with rerank()), got ${describe(o.reranker)}`);
      }
      this.reranker = o.reranker;
    } else if (this.store) {
      this.reranker = new ExactReranker(this.store, { metric: this.index.metric });
    }
    this.shortlist = o.shortlist === undefined ? 4 : expectInteger(o.shortlist, 'options.shortlist', 1, MAX_SHORTLIST);
    this.batchSize = checkBatchSize(o.batchSize, 'options.batchSize', 64);
    this.rerankConcurrency = o.rerankConcurrency === undefined ? 4 : expectInteger(o.rerankConcurrency, 'options.rerankConcurrency', 1, 256);
    this.#searchOptions = checkIndexSearchOptions(o.searchOptions, 'options.searchOptions');
  }

  /** Embeds `inputs`, finds k × shortlist candidates each, reranks them and keeps the best k. */
  async search(inputs: readonly Input[], k: number, options?: PipelineSearchOptions): Promise<PipelineSearchResult> {
    const list = expectArray<Input>(inputs, 'inputs');
    return this.#run(list.length, k, options, async (start, end) => {
      const batch = list.slice(start, end);
      return { vectors: await this.embedder.embed(batch), inputs: batch };
    });
  }

  /** The same without the embed stage: queries are vectors (nq × dim); rerankers get no query input. */
  async searchByVector(vectors: Float32Array, k: number, options?: PipelineSearchOptions): Promise<PipelineSearchResult> {
    const dim = this.embedder.dim;
    const nq = expectMatrix(vectors, 'vectors', dim);
    return this.#run(nq, k, options, async (start, end) => ({ vectors: vectors.slice(start * dim, end * dim) }));
  }

  /** Embeds the items' inputs and adds them to the index under their ids (and to the store), batch by batch. */
  async indexProducts(items: readonly PipelineItem<Input>[], options?: IndexProductsOptions): Promise<IndexProductsResult> {
    const list = expectArray<PipelineItem<Input>>(items, 'items');
    const withCategory = list.length > 0 && (list[0] as Partial<PipelineItem<Input>> | null)?.category !== undefined;
    list.forEach((item, i) => {
      const o = expectOptions<PipelineItem<Input>>(item, `items[${i}]`, ['id', 'input', 'category']);
      expectId(o.id, `items[${i}].id`);
      if (o.input === undefined) throw new TypeError(`items[${i}].input: expected the item's input, got undefined`);
      if (withCategory) expectInteger(o.category, `items[${i}].category`, 0, 2 ** 31 - 1);
      else if (o.category !== undefined) throw new TypeError(`items[${i}].category: items[0] has no category, so none may have one`);
    });
    const o = expectOptions<IndexProductsOptions>(options, 'options', ['batchSize', 'onProgress', 'upsert']);
    const upsert = o.upsert === undefined ? undefined : expectBoolean(o.upsert, 'options.upsert');
    const batchSize = checkBatchSize(o.batchSize, 'options.batchSize', Math.min(MAX_BATCH_SIZE, this.embedder.batchSize * 4));
    const onProgress = o.onProgress === undefined ? undefined : expectFunction<(p: IndexProgress) => void>(o.onProgress, 'options.onProgress');
    const timings = { embedMs: 0, addMs: 0, totalMs: 0 };
    const started = performance.now();
    let done = 0;
    for (let start = 0; start < list.length; start += batchSize) {
      const batch = list.slice(start, start + batchSize);
      let t = performance.now();
      const vectors = await this.embedder.embed(batch.map((item) => item.input));
      timings.embedMs += performance.now() - t;
      const ids = BigInt64Array.from(batch, (item) => item.id);
      t = performance.now();
      const addOptions: AddOptions = {};
      if (withCategory) addOptions.categories = Int32Array.from(batch, (item) => item.category!);
      if (upsert !== undefined) addOptions.upsert = upsert;
      await this.index.add(vectors, ids, addOptions);
      this.store?.set(ids, vectors);
      timings.addMs += performance.now() - t;
      done += batch.length;
      onProgress?.({ done, total: list.length, embedMs: timings.embedMs, addMs: timings.addMs });
    }
    timings.totalMs = performance.now() - started;
    return { added: done, timings };
  }

  async #run(
    nq: number,
    k: unknown,
    options: unknown,
    embed: (start: number, end: number) => Promise<{ vectors: Float32Array; inputs?: readonly Input[] }>,
  ): Promise<PipelineSearchResult> {
    expectInteger(k, 'k', 1, MAX_K);
    const o = expectOptions<PipelineSearchOptions>(options, 'options', ['shortlist', 'rerank', 'searchOptions']);
    const searchOptions = { ...this.#searchOptions, ...checkIndexSearchOptions(o.searchOptions, 'options.searchOptions') };
    const shortlist = optionalInteger(o.shortlist, 'options.shortlist', 1, MAX_SHORTLIST) ?? this.shortlist;
    const rerank = (o.rerank === undefined ? true : expectBoolean(o.rerank, 'options.rerank')) && this.reranker !== undefined;
    const kk = k as number;
    const perQuery = rerank ? kk * shortlist : kk;
    if (perQuery > MAX_CANDIDATES) {
      throw new RangeError(`options.shortlist: k ${kk} × shortlist ${shortlist} = ${perQuery} candidates per query exceeds ${MAX_CANDIDATES}`);
    }
    const metric = this.index.metric;
    const dim = this.embedder.dim;
    const result: PipelineSearchResult = {
      ids: new BigInt64Array(nq * kk).fill(-1n),
      scores: new Float32Array(nq * kk).fill(-Infinity),
      k: kk,
      candidates: { ids: new BigInt64Array(nq * perQuery), scores: new Float32Array(nq * perQuery), perQuery },
      reranked: rerank,
      timings: { embedMs: 0, searchMs: 0, rerankMs: 0, totalMs: 0 },
    };
    const started = performance.now();
    for (let start = 0; start < nq; start += this.batchSize) {
      const end = Math.min(nq, start + this.batchSize);
      let t = performance.now();
      const { vectors, inputs } = await embed(start, end);
      result.timings.embedMs += performance.now() - t;

      t = performance.now();
      const found = await this.index.search(vectors, perQuery, searchOptions);
      result.timings.searchMs += performance.now() - t;
      result.candidates.ids.set(found.ids, start * perQuery);
      for (let i = 0; i < found.distances.length; i++) {
        result.candidates.scores[start * perQuery + i] = found.ids[i] < 0n ? -Infinity : distanceToScore(metric, found.distances[i]);
      }

      t = performance.now();
      if (rerank) {
        await forEachLimited(end - start, this.rerankConcurrency, async (i) => {
          const query: RerankQuery<Input> = { vector: vectors.slice(i * dim, (i + 1) * dim) };
          if (inputs) query.input = inputs[i];
          await this.#rerankOne(query, found.ids.subarray(i * perQuery, (i + 1) * perQuery), kk, result, start + i);
        });
      } else {
        for (let q = start; q < end; q++) {
          result.ids.set(result.candidates.ids.subarray(q * perQuery, q * perQuery + kk), q * kk);
          result.scores.set(result.candidates.scores.subarray(q * perQuery, q * perQuery + kk), q * kk);
        }
      }
      result.timings.rerankMs += performance.now() - t;
    }
    result.timings.totalMs = performance.now() - started;
    return result;
  }

  /** Reranks one query's shortlist and writes its best k into row q of the result. */
  async #rerankOne(query: RerankQuery<Input>, shortlistIds: BigInt64Array, k: number, result: PipelineSearchResult, q: number): Promise<void> {
    const real = shortlistIds.filter((id) => id >= 0n);
    if (real.length === 0) return;
    const scores: unknown = await this.reranker!.rerank(query, real);
    // A user's reranker may break the contract; a wrong count would silently misalign scores and ids.
    if (!(scores instanceof Float32Array || scores instanceof Float64Array) || scores.length !== real.length) {
      throw new TypeError(`reranker: expected ${real.length} scores (one per candidate) from rerank(), got ${describe(scores)}`);
    }
    // Sort by score, best first; equal scores keep the ANN order (the sort is stable).
    const order = Array.from(real.keys()).sort((a, b) => {
      const sa = Number.isNaN(scores[a]) ? -Infinity : scores[a];
      const sb = Number.isNaN(scores[b]) ? -Infinity : scores[b];
      return sb === sa ? 0 : sb > sa ? 1 : -1;
    });
    for (let r = 0; r < Math.min(k, order.length); r++) {
      result.ids[q * k + r] = real[order[r]];
      result.scores[q * k + r] = scores[order[r]];
    }
  }
}
