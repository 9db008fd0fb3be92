// The Reranker contract and the rerankers that need no ONNX model: exact refine from stored float32 vectors,
// and a cross-modal reranker that re-scores candidates with a second pair of embedders (e.g. a text query
// against image candidates in a shared text–image space).
import type { Metric } from '../quiver';
import { describe, expectChoice, expectFunction, expectId, expectIds, expectInteger, expectOptions, expectVector } from './args';
import { checkEmbedder, type Embedder } from './embedder';
import { METRICS, VectorStore } from './vectors';

/** What a reranker knows about a query. */
export interface RerankQuery<Input = unknown> {
  /** The query as given to the pipeline (a text, an image, a product…); absent when searching by vector. */
  input?: Input;
  /** The query's embedding: the vector the ANN index was searched with. */
  vector: Float32Array;
}

/**
 * Re-scores an ANN shortlist. `rerank` resolves to one score per candidate, aligned with `candidates`, higher
 * is better; -1n (padding) and unknown candidates should score -Infinity.
 */
export interface Reranker<Input = unknown> {
  rerank(query: RerankQuery<Input>, candidates: BigInt64Array): Promise<Float32Array>;
}

/** Checks the two arguments every reranker takes; `dim` is the query vector length when the reranker knows it. */
export function checkRerankArgs(query: unknown, candidates: unknown, dim?: number): void {
  if (query === null || typeof query !== 'object') {
    throw new TypeError(`query: expected { vector: Float32Array, input? }, got ${describe(query)}`);
  }
  const q = query as Partial<RerankQuery>;
  if (dim !== undefined) expectVector(q.vector, 'query.vector', dim);
  else if (!(q.vector instanceof Float32Array)) throw new TypeError(`query.vector: expected a Float32Array, got ${describe(q.vector)}`);
  expectIds(candidates, 'candidates');
}

export interface ExactRerankerOptions {
  /** 'l2' (default), 'ip' or 'cosine'; scores are minus the squared distance for 'l2'. */
  metric?: Metric;
}

/**
 * Exact refine: re-scores each candidate against the query with the full float32 vector kept for it (the
 * vectors the ANN index compressed). Turns a compressed-domain shortlist into exact distances.
 */
export class ExactReranker implements Reranker {
  readonly metric: Metric;
  readonly store: VectorStore;

  constructor(store: VectorStore, options?: ExactRerankerOptions) {
    if (!(store instanceof VectorStore)) throw new TypeError(`store: expected a VectorStore, got ${describe(store)}`);
    const o = expectOptions<ExactRerankerOptions>(options, 'options', ['metric']);
    this.store = store;
    this.metric = o.metric === undefined ? 'l2' : expectChoice(o.metric, 'options.metric', METRICS);
  }

  get dim(): number {
    return this.store.dim;
  }

  async rerank(query: RerankQuery, candidates: BigInt64Array): Promise<Float32Array> {
    checkRerankArgs(query, candidates, this.store.dim);
    return this.store.score(query.vector, candidates, this.metric);
  }
}

/** Local feature sets by id: each id holds count × dim floats (count may differ between ids). */
export class LocalFeatureStore {
  readonly dim: number;
  #sets = new Map<bigint, Float32Array>();

  constructor(dim: number) {
    this.dim = expectInteger(dim, 'dim', 1, 1 << 20);
  }

  get size(): number {
    return this.#sets.size;
  }

  /** Stores a copy of `features` (count × dim floats, count ≥ 1) for `id`, replacing any set it had. */
  set(id: bigint, features: Float32Array): void {
    expectId(id, 'id');
    if (!(features instanceof Float32Array)) throw new TypeError(`features: expected a Float32Array of count × ${this.dim} floats, got ${describe(features)}`);
    if (features.length === 0 || features.length % this.dim !== 0) {
      throw new RangeError(`features: expected a non-empty length that is a multiple of dim ${this.dim}, got ${features.length}`);
    }
    this.#sets.set(id, features.slice());
  }

  /** The stored set of `id` (count × dim floats), or undefined. */
  get(id: bigint): Float32Array | undefined {
    return this.#sets.get(expectId(id, 'id'));
  }
}

/** Candidates whose vectors are computed on demand: load their inputs by id, embed them, keep them in `cache`. */
export interface EmbeddedCandidates<CandidateInput> {
  embedder: Embedder<CandidateInput>;
  load: (ids: BigInt64Array) => readonly CandidateInput[] | Promise<readonly CandidateInput[]>;
  /** Where computed vectors are kept for later queries (default: a new store of embedder.dim). */
  cache?: VectorStore;
}

export interface CrossModalRerankerOptions<QueryInput, CandidateInput> {
  /** Embeds the query's input (e.g. a text encoder). */
  queryEmbedder: Embedder<QueryInput>;
  /** Candidate vectors in the same space: a filled VectorStore, or inputs to embed on demand. */
  candidates: VectorStore | EmbeddedCandidates<CandidateInput>;
  /** Default 'cosine'. */
  metric?: Metric;
}

/**
 * Re-scores candidates in a second embedding space: the query's own input (e.g. its text) is embedded with
 * `queryEmbedder` and compared to each candidate's vector from the other modality (e.g. its image, embedded
 * with an image encoder trained jointly with the text one, CLIP-style). The ANN stage can then search one
 * space (e.g. fused product vectors) and this stage check the shortlist in another.
 */
export class CrossModalReranker<QueryInput = unknown, CandidateInput = unknown> implements Reranker<QueryInput> {
  readonly metric: Metric;
  readonly dim: number;
  #queryEmbedder: Embedder<QueryInput>;
  #store: VectorStore;
  #onDemand?: EmbeddedCandidates<CandidateInput>;

  constructor(options: CrossModalRerankerOptions<QueryInput, CandidateInput>) {
    if (options === undefined) throw new TypeError('options: expected { queryEmbedder, candidates }, got undefined');
    const o = expectOptions<CrossModalRerankerOptions<QueryInput, CandidateInput>>(options, 'options', ['queryEmbedder', 'candidates', 'metric']);
    this.#queryEmbedder = checkEmbedder<QueryInput>(o.queryEmbedder, 'options.queryEmbedder');
    this.metric = o.metric === undefined ? 'cosine' : expectChoice(o.metric, 'options.metric', METRICS);
    if (o.candidates instanceof VectorStore) {
      this.#store = o.candidates;
    } else if (o.candidates !== null && typeof o.candidates === 'object') {
      const c = expectOptions<EmbeddedCandidates<CandidateInput>>(o.candidates, 'options.candidates', ['embedder', 'load', 'cache']);
      const embedder = checkEmbedder<CandidateInput>(c.embedder, 'options.candidates.embedder');
      expectFunction(c.load, 'options.candidates.load');
      if (c.cache !== undefined && !(c.cache instanceof VectorStore)) {
        throw new TypeError(`options.candidates.cache: expected a VectorStore, got ${describe(c.cache)}`);
      }
      this.#store = c.cache ?? new VectorStore(embedder.dim);
      if (this.#store.dim !== embedder.dim) {
        throw new RangeError(`options.candidates.cache: its dim ${this.#store.dim} differs from the embedder's ${embedder.dim}`);
      }
      this.#onDemand = c as EmbeddedCandidates<CandidateInput>;
    } else {
      throw new TypeError(`options.candidates: expected a VectorStore or { embedder, load }, got ${describe(o.candidates)}`);
    }
    if (this.#store.dim !== this.#queryEmbedder.dim) {
      throw new RangeError(
        `options.candidates: candidate vectors have dim ${this.#store.dim} but the query embedder gives ${this.#queryEmbedder.dim}; both must live in one space`,
      );
    }
    this.dim = this.#store.dim;
  }

  async rerank(query: RerankQuery<QueryInput>, candidates: BigInt64Array): Promise<Float32Array> {
    checkRerankArgs(query, candidates);
    if (query.input === undefined) throw new TypeError('query.input: a cross-modal reranker embeds the query input itself; got undefined');
    const queryVector = await this.#queryEmbedder.embed([query.input]);
    if (this.#onDemand) await this.#embedMissing(candidates);
    return this.#store.score(queryVector, candidates, this.metric);
  }

  async #embedMissing(candidates: BigInt64Array): Promise<void> {
    const missing = BigInt64Array.from(new Set(Array.from(candidates).filter((id) => id >= 0n && !this.#store.has(id))));
    if (missing.length === 0) return;
    const inputs = await this.#onDemand!.load(missing);
    if (!Array.isArray(inputs) || inputs.length !== missing.length) {
      throw new RangeError(`options.candidates.load: expected ${missing.length} inputs (one per id asked for), got ${describe(inputs)}`);
    }
    this.#store.set(missing, await this.#onDemand!.embedder.embed(inputs));
  }
}
