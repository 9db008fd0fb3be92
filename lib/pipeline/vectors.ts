// Small vector helpers the pipeline shares, and VectorStore: float32 vectors kept by id, for exact reranking
// and for rerankers that need each candidate's features.
import type { Metric } from '../quiver';
import { expectChoice, expectIds, expectInteger, expectMatrix, expectOptions, expectVector, expectId } from './args';

export const METRICS: readonly Metric[] = ['l2', 'ip', 'cosine'];

/** Scales each dim-long row of `vectors` to unit L2 norm, in place; all-zero rows stay zero. Returns `vectors`. */
export function l2NormalizeRows(vectors: Float32Array, dim: number): Float32Array {
  expectInteger(dim, 'dim', 1, 1 << 20);
  expectMatrix(vectors, 'vectors', dim);
  return normalizeRowsUnchecked(vectors, dim);
}

/** l2NormalizeRows for arrays the library built itself (no checks: it runs on every batch). */
export function normalizeRowsUnchecked(vectors: Float32Array, dim: number): Float32Array {
  for (let row = 0; row < vectors.length; row += dim) {
    let sum = 0;
    for (let j = 0; j < dim; j++) sum += vectors[row + j] * vectors[row + j];
    if (sum === 0) continue;
    const scale = 1 / Math.sqrt(sum);
    for (let j = 0; j < dim; j++) vectors[row + j] *= scale;
  }
  return vectors;
}

/**
 * Similarity of two equally long vectors under `metric`, as "higher is better": the inner product for 'ip',
 * the cosine for 'cosine' (0 when either vector is zero) and minus the squared distance for 'l2'.
 */
export function similarity(metric: Metric, a: ArrayLike<number>, aOffset: number, b: ArrayLike<number>, bOffset: number, dim: number): number {
  if (metric === 'l2') {
    let sum = 0;
    for (let j = 0; j < dim; j++) {
      const d = a[aOffset + j] - b[bOffset + j];
      sum += d * d;
    }
    return -sum;
  }
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let j = 0; j < dim; j++) {
    const x = a[aOffset + j];
    const y = b[bOffset + j];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (metric === 'ip') return dot;
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/** The ANN index's distance turned into "higher is better", so that all stages rank the same way. */
export function distanceToScore(metric: Metric, distance: number): number {
  return metric === 'l2' ? -distance : distance;
}

export interface VectorStoreOptions {
  /** Vectors to reserve room for up front (the store grows as needed). */
  capacity?: number;
}

/**
 * float32 vectors kept by bigint id (the ids an index stores). Setting an id again replaces its vector.
 * Memory: 4·dim bytes per vector plus a Map entry; rows are kept in one growing Float32Array.
 */
export class VectorStore {
  readonly dim: number;
  #data: Float32Array;
  #rows = new Map<bigint, number>();

  constructor(dim: number, options?: VectorStoreOptions) {
    this.dim = expectInteger(dim, 'dim', 1, 1 << 20);
    const o = expectOptions<VectorStoreOptions>(options, 'options', ['capacity']);
    const capacity = o.capacity === undefined ? 64 : expectInteger(o.capacity, 'options.capacity', 1, 1 << 30);
    this.#data = new Float32Array(capacity * this.dim);
  }

  /** Vectors stored. */
  get size(): number {
    return this.#rows.size;
  }

  /** Stores one vector per id (vectors: ids.length × dim floats), replacing those already stored. */
  set(ids: BigInt64Array, vectors: Float32Array): void {
    expectIds(ids, 'ids');
    const n = expectMatrix(vectors, 'vectors', this.dim);
    if (n !== ids.length) throw new RangeError(`ids: expected ${n} ids (one per vector), got ${ids.length}`);
    for (let i = 0; i < n; i++) expectId(ids[i], `ids[${i}]`);
    for (let i = 0; i < n; i++) {
      let row = this.#rows.get(ids[i]);
      if (row === undefined) {
        row = this.#rows.size;
        this.#reserve(row + 1);
        this.#rows.set(ids[i], row);
      }
      this.#data.set(vectors.subarray(i * this.dim, (i + 1) * this.dim), row * this.dim);
    }
  }

  has(id: bigint): boolean {
    return this.#rows.has(expectId(id, 'id'));
  }

  /** A copy of the vector stored for `id`, or undefined. */
  get(id: bigint): Float32Array | undefined {
    const row = this.#rows.get(expectId(id, 'id'));
    return row === undefined ? undefined : this.#data.slice(row * this.dim, (row + 1) * this.dim);
  }

  /**
   * Scores `query` (dim floats) against the stored vector of each id, higher is better (see similarity());
   * ids not stored (and -1n padding) score -Infinity.
   */
  score(query: Float32Array, ids: BigInt64Array, metric: Metric = 'l2'): Float32Array {
    expectVector(query, 'query', this.dim);
    expectIds(ids, 'ids');
    expectChoice(metric, 'metric', METRICS);
    const scores = new Float32Array(ids.length);
    for (let i = 0; i < ids.length; i++) {
      const row = this.#rows.get(ids[i]);
      scores[i] = row === undefined ? -Infinity : similarity(metric, query, 0, this.#data, row * this.dim, this.dim);
    }
    return scores;
  }

  /** The vectors of `ids`, ids.length × dim floats (zeros where an id is not stored), and which were missing. */
  gather(ids: BigInt64Array): { vectors: Float32Array; missing: number[] } {
    expectIds(ids, 'ids');
    const vectors = new Float32Array(ids.length * this.dim);
    const missing: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const row = this.#rows.get(ids[i]);
      if (row === undefined) missing.push(i);
      else vectors.set(this.#data.subarray(row * this.dim, (row + 1) * this.dim), i * this.dim);
    }
    return { vectors, missing };
  }

  #reserve(rows: number): void {
    if (rows * this.dim <= this.#data.length) return;
    const grown = new Float32Array(Math.max(rows, Math.ceil((this.#data.length / this.dim) * 1.5)) * this.dim);
    grown.set(this.#data);
    this.#data = grown;
  }
}
