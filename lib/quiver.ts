// The public API: Index (train / add / search) and Codec (train / encode / decode) over the native engine.
// Every method validates its arguments here, with messages that name the argument; the native layer re-checks
// only what protects memory. Async methods run on libuv's worker threads and never block the event loop;
// the *Sync twins run on the calling thread.
import { native, type NativeCodec, type NativeIndex, type NativeProgress, type NativeTrainOptions } from './native';
import { describe, expectInteger, expectOptions, expectString, expectVectors, optionalInteger } from './validate';

export type Metric = 'l2' | 'ip' | 'cosine';

/** One training progress report: which phase and sub-problem, which iteration, the current error. */
export type TrainProgress = NativeProgress;

export interface TrainOptions {
  /** Vector dimension (required). */
  dim: number;
  /** 'l2' (default): squared Euclidean distance; 'ip': inner product; 'cosine': cosine similarity. */
  metric?: Metric;
  /** Seed of every random choice in training (default 1234): equal seeds give equal models. */
  seed?: number;
  /** Threads to use (default: all hardware threads). */
  threads?: number;
  /** k-means iterations per codebook (default 25). */
  iterations?: number;
  /** Training sets larger than k × this per codebook are subsampled (default 256). */
  maxPointsPerCentroid?: number;
  /** Called on the main thread after each training iteration. Throwing from it aborts training. */
  onProgress?: (progress: TrainProgress) => void;
}

export interface AddOptions {
  threads?: number;
}

export interface SearchOptions {
  /** Inverted lists to visit per query (IVF indexes; exhaustive indexes ignore it). Default 1. */
  nprobe?: number;
  /** Re-score the best k × refine candidates with the stored full vectors (spec must end in ",Refine"). */
  refine?: number;
  threads?: number;
}

export interface SearchResult {
  /** nq × k ids, best first per query; -1n where fewer than k vectors exist. */
  ids: BigInt64Array;
  /** nq × k: squared L2 (ascending), or inner product / cosine similarity (descending); ±Infinity as padding. */
  distances: Float32Array;
}

const TRAIN_KEYS = ['dim', 'metric', 'seed', 'threads', 'iterations', 'maxPointsPerCentroid', 'onProgress'] as const;
const SEARCH_KEYS = ['nprobe', 'refine', 'threads'] as const;
const ADD_KEYS = ['threads'] as const;
const MAX_DIM = 65536;
const MAX_K = 1 << 24;
const MAX_THREADS = 1024;
const METRICS: readonly Metric[] = ['l2', 'ip', 'cosine'];

interface CheckedTrain {
  dim: number;
  metric: Metric;
  native: NativeTrainOptions;
  onProgress?: (p: TrainProgress) => void;
}

function checkTrainOptions(options: unknown, needMetric: boolean): CheckedTrain {
  if (options === undefined) throw new TypeError('options: expected an object with at least { dim }, got undefined');
  const o = expectOptions<TrainOptions>(options, 'options', needMetric ? TRAIN_KEYS : TRAIN_KEYS.filter((k) => k !== 'metric'));
  const dim = expectInteger(o.dim, 'options.dim', 1, MAX_DIM);
  const metric = o.metric === undefined ? 'l2' : o.metric;
  if (!METRICS.includes(metric as Metric)) {
    throw new RangeError(`options.metric: expected 'l2', 'ip' or 'cosine', got ${describe(o.metric)}`);
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw new TypeError(`options.onProgress: expected a function, got ${describe(o.onProgress)}`);
  }
  return {
    dim,
    metric,
    native: {
      seed: optionalInteger(o.seed, 'options.seed', 0, Number.MAX_SAFE_INTEGER),
      threads: optionalInteger(o.threads, 'options.threads', 0, MAX_THREADS),
      iterations: optionalInteger(o.iterations, 'options.iterations', 1, 1000),
      maxPointsPerCentroid: optionalInteger(o.maxPointsPerCentroid, 'options.maxPointsPerCentroid', 1, 1 << 20),
    },
    onProgress: o.onProgress,
  };
}

function checkIds(ids: unknown, n: number): BigInt64Array | null {
  if (ids === undefined || ids === null) return null;
  if (!(ids instanceof BigInt64Array)) {
    throw new TypeError(`ids: expected a BigInt64Array of ${n} ids, got ${describe(ids)}`);
  }
  if (ids.length !== n) throw new RangeError(`ids: expected ${n} ids (one per vector), got ${ids.length}`);
  return ids;
}

/** Builds the native index, turning a bad spec into a RangeError that names `spec`. */
function createNativeIndex(spec: unknown, dim: number, metric: Metric): NativeIndex {
  expectString(spec, 'spec');
  return new (native().NativeIndex)(spec as string, dim, metric);
}

export class Index {
  #native: NativeIndex;

  private constructor(handle: NativeIndex) {
    this.#native = handle;
  }

  /**
   * Builds an index from a factory string and trains it on `vectors` (n × dim floats, row-major).
   * Training does not add the vectors: call add() for that.
   */
  static async train(spec: string, vectors: Float32Array, options: TrainOptions): Promise<Index> {
    const o = checkTrainOptions(options, true);
    const handle = createNativeIndex(spec, o.dim, o.metric);
    expectVectors(vectors, 'vectors', o.dim);
    await handle.train(vectors, o.native, o.onProgress);
    return new Index(handle);
  }

  static trainSync(spec: string, vectors: Float32Array, options: TrainOptions): Index {
    const o = checkTrainOptions(options, true);
    const handle = createNativeIndex(spec, o.dim, o.metric);
    expectVectors(vectors, 'vectors', o.dim);
    handle.trainSync(vectors, o.native, o.onProgress);
    return new Index(handle);
  }

  /** Describes a spec without building it: its canonical form and bytes per vector. Throws for a bad spec. */
  static describeSpec(spec: string, dim: number): { spec: string; codeSize: number } {
    expectString(spec, 'spec');
    expectInteger(dim, 'dim', 1, MAX_DIM);
    return native().describeSpec(spec, dim);
  }

  get dim(): number {
    return this.#native.dim;
  }
  /** Vectors stored. */
  get size(): number {
    return this.#native.size;
  }
  /** Canonical spec string. */
  get spec(): string {
    return this.#native.spec;
  }
  get metric(): Metric {
    return this.#native.metric as Metric;
  }
  /** Bytes stored per vector for search (excluding the 8-byte id and any refine store). */
  get codeSize(): number {
    return this.#native.codeSize;
  }
  get closed(): boolean {
    return this.#native.closed;
  }

  /** Adds n vectors (n × dim floats) with optional ids (default: sequential from the current size). */
  async add(vectors: Float32Array, ids?: BigInt64Array | null, options?: AddOptions): Promise<void> {
    const { idArray, threads } = this.#checkAdd(vectors, ids, options);
    await this.#native.add(vectors, idArray, threads);
  }

  addSync(vectors: Float32Array, ids?: BigInt64Array | null, options?: AddOptions): void {
    const { idArray, threads } = this.#checkAdd(vectors, ids, options);
    this.#native.addSync(vectors, idArray, threads);
  }

  /** k nearest stored vectors of each query (nq × dim floats). k larger than size() pads with -1n. */
  async search(queries: Float32Array, k: number, options?: SearchOptions): Promise<SearchResult> {
    const p = this.#checkSearch(queries, k, options);
    return this.#native.search(queries, k, p.nprobe, p.refine, p.threads);
  }

  searchSync(queries: Float32Array, k: number, options?: SearchOptions): SearchResult {
    const p = this.#checkSearch(queries, k, options);
    return this.#native.searchSync(queries, k, p.nprobe, p.refine, p.threads);
  }

  /** Releases the index's memory once running operations finish; later calls throw ERR_QUIVER_CLOSED. */
  close(): void {
    this.#native.close();
  }

  #checkAdd(vectors: unknown, ids: unknown, options: unknown) {
    const n = expectVectors(vectors, 'vectors', this.dim);
    const idArray = checkIds(ids, n);
    const o = expectOptions<AddOptions>(options, 'options', ADD_KEYS);
    return { idArray, threads: optionalInteger(o.threads, 'options.threads', 0, MAX_THREADS) };
  }

  #checkSearch(queries: unknown, k: unknown, options: unknown) {
    const nq = expectVectors(queries, 'queries', this.dim);
    expectInteger(k, 'k', 1, MAX_K);
    if (nq * (k as number) > 2 ** 28) {
      throw new RangeError(`k: ${nq} queries × k ${k} exceeds 2^28 results per call; split the batch`);
    }
    const o = expectOptions<SearchOptions>(options, 'options', SEARCH_KEYS);
    return {
      nprobe: optionalInteger(o.nprobe, 'options.nprobe', 1, 1 << 20),
      refine: optionalInteger(o.refine, 'options.refine', 1, 1 << 16),
      threads: optionalInteger(o.threads, 'options.threads', 0, MAX_THREADS),
    };
  }
}

export type CodecTrainOptions = Omit<TrainOptions, 'metric'>;

/** A quantizer on its own: vectors in, fixed-size byte codes out, and back (lossy). */
export class Codec {
  #native: NativeCodec;

  private constructor(handle: NativeCodec) {
    this.#native = handle;
  }

  static async train(spec: string, vectors: Float32Array, options: CodecTrainOptions): Promise<Codec> {
    const o = checkTrainOptions(options, false);
    expectString(spec, 'spec');
    const handle = new (native().NativeCodec)(spec, o.dim);
    expectVectors(vectors, 'vectors', o.dim);
    await handle.train(vectors, o.native, o.onProgress);
    return new Codec(handle);
  }

  static trainSync(spec: string, vectors: Float32Array, options: CodecTrainOptions): Codec {
    const o = checkTrainOptions(options, false);
    expectString(spec, 'spec');
    const handle = new (native().NativeCodec)(spec, o.dim);
    expectVectors(vectors, 'vectors', o.dim);
    handle.trainSync(vectors, o.native, o.onProgress);
    return new Codec(handle);
  }

  get dim(): number {
    return this.#native.dim;
  }
  get spec(): string {
    return this.#native.spec;
  }
  /** Bytes per encoded vector. */
  get codeSize(): number {
    return this.#native.codeSize;
  }

  /** n × dim floats → n × codeSize bytes. */
  encode(vectors: Float32Array): Uint8Array {
    expectVectors(vectors, 'vectors', this.dim);
    return this.#native.encodeSync(vectors);
  }

  async encodeAsync(vectors: Float32Array): Promise<Uint8Array> {
    expectVectors(vectors, 'vectors', this.dim);
    return this.#native.encode(vectors);
  }

  /** n × codeSize bytes → n × dim floats (the reconstructions). */
  decode(codes: Uint8Array): Float32Array {
    this.#checkCodes(codes);
    return this.#native.decodeSync(codes);
  }

  async decodeAsync(codes: Uint8Array): Promise<Float32Array> {
    this.#checkCodes(codes);
    return this.#native.decode(codes);
  }

  #checkCodes(codes: unknown): void {
    if (!(codes instanceof Uint8Array) || codes instanceof Uint8ClampedArray) {
      throw new TypeError(`codes: expected a Uint8Array of n × ${this.codeSize} bytes, got ${describe(codes)}`);
    }
    if (codes.length === 0 || codes.length % this.codeSize !== 0) {
      throw new RangeError(
        `codes: expected a non-empty length that is a multiple of codeSize ${this.codeSize}, got ${codes.length}`,
      );
    }
  }
}

/** The SIMD level the kernels run at ('scalar' | 'avx2' | 'avx512'); QUIVER_SIMD=… forces it at start-up. */
export function simdLevel(): string {
  return native().getSimdLevel();
}

/** Forces a SIMD level for the whole process (for testing and benchmarks). */
export function setSimdLevel(level: string): void {
  expectString(level, 'level');
  const supported = native().supportedSimdLevels();
  if (!supported.includes(level)) {
    throw new RangeError(`level: expected one of ${supported.join(', ')} (supported here), got ${describe(level)}`);
  }
  native().setSimdLevel(level);
}

export function supportedSimdLevels(): string[] {
  return native().supportedSimdLevels();
}
