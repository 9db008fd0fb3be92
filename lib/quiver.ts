// The public API: Index (train / add / search) and Codec (train / encode / decode) over the native engine.
// Every method validates its arguments here, with messages that name the argument; the native layer re-checks
// only what protects memory. Async methods run on libuv's worker threads and never block the event loop;
// the *Sync twins run on the calling thread.
import {
  native,
  type NativeAddArgs,
  type NativeCodec,
  type NativeIndex,
  type NativeProgress,
  type NativeSearchArgs,
  type NativeSearchResult,
  type NativeTrainOptions,
} from './native';
import { type CodebooksManifest, writeCodebooks, writeCodebooksAsync } from './codebooks';
import { describe, expectInteger, expectOptions, expectString, expectVectors, optionalInteger } from './validate';

export type Metric = 'l2' | 'ip' | 'cosine';

/**
 * One training progress report: `phase` ('kmeans', 'pq', 'coarse', 'trq', …), which sub-problem (`stage` of
 * `stages`, 0-based), the 1-based `iteration` of `iterations`, and `error`, the mean squared error per training
 * vector after that iteration.
 */
export interface TrainProgress extends NativeProgress {}

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
  /** 'cuda': k-means and encoding passes run on the GPU where covered (see {@link gpu}); default 'cpu'. */
  device?: Device;
}

/**
 * Where heavy work runs. 'cuda' needs an addon built with CUDA (`npx cmake-js compile --CDQUIVER_CUDA=ON`) and a
 * GPU; without them quiver warns once (process warning QUIVER_NO_GPU) and runs on the CPU. Work the GPU kernels do
 * not cover runs on the CPU either way, with results equal up to float rounding.
 */
export type Device = 'cpu' | 'cuda';

export interface AddOptions {
  threads?: number;
  /** One small integer label (0 … 2^31−1) per vector, for category-filtered search. */
  categories?: Int32Array | readonly number[];
  /** Replace vectors whose id is already present instead of failing (needs ids). */
  upsert?: boolean;
  /** 'cuda': encode on the GPU (PQ, RQ, TRQ with beam 1). */
  device?: Device;
}

export interface SearchOptions {
  /** Inverted lists to visit per query (IVF indexes; exhaustive indexes ignore it). Default 1. */
  nprobe?: number;
  /**
   * Re-score the best k × refine candidates with the stored vectors (spec must end in ",Refine", optionally
   * ",Refine,store=fp16" or ",Refine,store=int8" for a 2- or 1-byte-per-dimension store).
   */
  refine?: number;
  threads?: number;
  /** Allow-list: only these ids can be returned (a bitset is built natively; unknown ids are ignored). */
  filter?: BigInt64Array | readonly bigint[];
  /** Only vectors labelled with one of these categories can be returned. */
  categories?: Int32Array | readonly number[];
  /**
   * Top results of each listed category instead of overall: `true` for k per category, or a number per category.
   * Results are laid out nq × categories.length × perCategory (query-major, then category in the order given).
   */
  perCategory?: boolean | number;
  /**
   * 'cuda': candidates from the GPU for exhaustive PQ…x8 / RQ…x8 and IVF…,PQ…x8 (no TRQ) indexes, k × refine ≤ 1024;
   * the codes are copied to the GPU at the first such search and kept until the index changes.
   */
  device?: Device;
}

export interface SearchResult {
  /** nq × k ids, best first per query; -1n where fewer than k vectors exist. */
  ids: BigInt64Array;
  /** nq × k: squared L2 (ascending), or inner product / cosine similarity (descending); ±Infinity as padding. */
  distances: Float32Array;
  /** With perCategory: the category of each group of results, in order (one entry per category). */
  groups?: Int32Array;
  /** Results per query group (k, or perCategory). */
  k: number;
}

export interface LoadOptions {
  /** Map the file instead of reading it: the codes stay in the page cache, shared between processes. */
  mmap?: boolean;
}

const TRAIN_KEYS = ['dim', 'metric', 'seed', 'threads', 'iterations', 'maxPointsPerCentroid', 'onProgress', 'device'] as const;
const SEARCH_KEYS = ['nprobe', 'refine', 'threads', 'filter', 'categories', 'perCategory', 'device'] as const;
const ADD_KEYS = ['threads', 'categories', 'upsert', 'device'] as const;
const ENCODE_KEYS = ['threads', 'device'] as const;

/** What this process can do with a GPU. */
export interface GpuInfo {
  /** The loaded addon was built with the CUDA kernels. */
  compiled: boolean;
  /** compiled, and a usable CUDA device (compute capability ≥ 7.0) is present. */
  available: boolean;
  /** Device name, e.g. 'NVIDIA H100 80GB HBM3' ('' when none). */
  name: string;
  /** Bytes of device memory (total, and free when quiver first looked). */
  totalMemory: number;
  freeMemory: number;
  /** e.g. '9.0'. */
  computeCapability: string;
  multiprocessors: number;
  /** CUDA runtime and driver versions (e.g. 13000), 0 when unknown. */
  cudaRuntime: number;
  cudaDriver: number;
  /** Why the GPU is not available ('' when it is). */
  reason: string;
}

let gpuCache: GpuInfo | undefined;

/** The GPU this process would use for `device: 'cuda'` (probed once). */
export function gpuInfo(): GpuInfo {
  if (!gpuCache) gpuCache = Object.freeze({ ...native().gpuInfo() });
  return gpuCache;
}

/** `quiver.gpu`: the same facts as {@link gpuInfo}, read lazily (the addon loads on first access). */
export const gpu: GpuInfo = Object.freeze(
  Object.defineProperties({} as GpuInfo, Object.fromEntries(
    (['compiled', 'available', 'name', 'totalMemory', 'freeMemory', 'computeCapability', 'multiprocessors',
      'cudaRuntime', 'cudaDriver', 'reason'] as const).map((key) => [
      key,
      { enumerable: true, get: () => gpuInfo()[key] },
    ]),
  )),
);

let warnedNoGpu = false;

/** Checks a device option; 'cuda' without a usable GPU warns once and becomes 'cpu'. */
function checkDevice(value: unknown, name: string): 'cpu' | 'cuda' {
  if (value === undefined || value === 'cpu') return 'cpu';
  if (value !== 'cuda') {
    const message = `${name}: expected 'cpu' or 'cuda', got ${describe(value)}`;
    throw typeof value === 'string' ? new RangeError(message) : new TypeError(message);
  }
  const info = gpuInfo();
  if (info.available) return 'cuda';
  if (!warnedNoGpu) {
    warnedNoGpu = true;
    process.emitWarning(`${name} 'cuda' asked for, but no GPU is usable (${info.reason}); running on the CPU`, {
      code: 'QUIVER_NO_GPU',
    });
  }
  return 'cpu';
}
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
      device: checkDevice(o.device, 'options.device'),
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

/** Categories as add/search take them: integers 0 … 2^31−1 (one per vector when expectedLength is given). */
export function checkCategories(value: unknown, name: string, expectedLength?: number): Int32Array {
  const isArray = Array.isArray(value) || value instanceof Int32Array;
  if (!isArray) {
    throw new TypeError(`${name}: expected an Int32Array or an array of integers, got ${describe(value)}`);
  }
  const list = value as ArrayLike<unknown>;
  if (expectedLength !== undefined && list.length !== expectedLength) {
    throw new RangeError(`${name}: expected ${expectedLength} categories (one per vector), got ${list.length}`);
  }
  const out = new Int32Array(list.length);
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c > 0x7fffffff) {
      throw new RangeError(`${name}: expected integers from 0 to 2147483647, got ${describe(c)} at ${i}`);
    }
    out[i] = c;
  }
  return out;
}

/**
 * Results per group of a search: k per query, or with `perCategory` (true, or a count up to maxK) that many
 * per category of a non-empty `categories` list, which is then returned as `groups`. Checks nq × groups × k
 * against the 2^28 results one call may return.
 */
export function checkResultGroups(
  nq: number,
  k: number,
  perCategory: unknown,
  categories: Int32Array | null | undefined,
  maxK: number,
): { perGroup: number; groups: Int32Array | undefined } {
  let perGroup = k;
  const grouped = perCategory !== undefined && perCategory !== false;
  if (grouped) {
    if (typeof perCategory === 'number') perGroup = expectInteger(perCategory, 'options.perCategory', 1, maxK);
    else if (perCategory !== true) {
      throw new TypeError(`options.perCategory: expected a boolean or a positive integer, got ${describe(perCategory)}`);
    }
    if (!categories || categories.length === 0) {
      throw new RangeError('options.perCategory: needs a non-empty options.categories list');
    }
  }
  const groupCount = grouped ? categories!.length : 1;
  if (nq * groupCount * perGroup > 2 ** 28) {
    throw new RangeError(`k: ${nq} queries × ${groupCount} groups × k ${perGroup} exceeds 2^28 results per call; split the batch`);
  }
  return { perGroup, groups: grouped ? categories! : undefined };
}

/**
 * A BigInt64Array as is, or an array of bigint ids copied into one; ids outside the signed 64-bit range are a
 * RangeError (a BigInt64Array would silently wrap them). Shared with the NATS client (options.filter there).
 */
export function toIdArray(value: unknown, name: string): BigInt64Array {
  if (value instanceof BigInt64Array) return value;
  if (Array.isArray(value)) {
    const out = new BigInt64Array(value.length);
    value.forEach((id, i) => {
      if (typeof id !== 'bigint') throw new TypeError(`${name}: expected bigint ids, got ${describe(id)} at ${i}`);
      if (id < -(1n << 63n) || id >= 1n << 63n) throw new RangeError(`${name}: id ${id} at ${i} is not a 64-bit signed integer`);
      out[i] = id;
    });
    return out;
  }
  throw new TypeError(`${name}: expected a BigInt64Array or an array of bigint ids, got ${describe(value)}`);
}

/** A file or folder path argument; `name` is the parameter's name in the caller's signature. */
function checkPath(path: unknown, name = 'path', what = 'file path'): string {
  const p = expectString(path, name);
  if (p.length === 0 || p.includes('\0')) throw new RangeError(`${name}: expected a non-empty ${what}, got ${describe(p)}`);
  return p;
}

function checkBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TypeError(`buffer: expected a Buffer or Uint8Array, got ${describe(value)}`);
  }
  return value;
}

function checkLoadOptions(options: unknown): boolean {
  const o = expectOptions<LoadOptions>(options, 'options', ['mmap']);
  if (o.mmap !== undefined && typeof o.mmap !== 'boolean') {
    throw new TypeError(`options.mmap: expected a boolean, got ${describe(o.mmap)}`);
  }
  return o.mmap === true;
}

/** Builds the native index, turning a bad spec into a RangeError that names `spec`. */
function createNativeIndex(spec: unknown, dim: number, metric: Metric): NativeIndex {
  expectString(spec, 'spec');
  return new (native().NativeIndex)(spec as string, dim, metric);
}

// The public result, built as an object literal of fixed shape: spreading the native object into a new one cost
// a small search (one query, 64 rows) about a tenth of its time in V8's object cloning.
function searchResult(native: NativeSearchResult, k: number, groups: Int32Array | undefined): SearchResult {
  return groups
    ? { ids: native.ids, distances: native.distances, k, groups }
    : { ids: native.ids, distances: native.distances, k };
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

  /** Loads an index saved with save(). With { mmap: true } the codes are used from the mapped file. */
  static async load(path: string, options?: LoadOptions): Promise<Index> {
    const mmap = checkLoadOptions(options);
    return new Index(await native().loadIndex(checkPath(path), mmap));
  }

  static loadSync(path: string, options?: LoadOptions): Index {
    const mmap = checkLoadOptions(options);
    return new Index(native().loadIndexSync(checkPath(path), mmap));
  }

  /** Loads an index from the bytes of toBuffer() (or of a saved file). The bytes are copied. */
  static fromBuffer(buffer: Uint8Array): Index {
    return new Index(native().indexFromBuffer(checkBytes(buffer)));
  }

  /**
   * Loads a faiss index file: IndexPQ, IndexPreTransform(OPQ rotation, IndexPQ), IndexResidualQuantizer (each
   * optionally inside an IndexIDMap), IndexIVFPQ and IndexIVFResidualQuantizer with a flat L2 coarse quantizer
   * (see native/core/faiss_io.h for the exact mapping). Other faiss types are refused with ERR_QUIVER_UNSUPPORTED.
   */
  static async loadFaiss(path: string): Promise<Index> {
    return new Index(await native().loadFaissIndex(checkPath(path)));
  }

  static loadFaissSync(path: string): Index {
    return new Index(native().loadFaissIndexSync(checkPath(path)));
  }

  /** Parses the bytes of a faiss index file (as loadFaiss does). The bytes are copied. */
  static fromFaissBuffer(buffer: Uint8Array): Index {
    return new Index(native().faissIndexFromBuffer(checkBytes(buffer)));
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
  /** Bytes per vector of the refine store (",Refine": 4·dim, ",Refine,store=fp16": 2·dim, "…=int8": dim), else 0. */
  get refineBytes(): number {
    return this.#native.refineBytes;
  }
  get closed(): boolean {
    return this.#native.closed;
  }

  /**
   * Adds n vectors (n × dim floats) with optional ids (default: following the largest id so far). Adding an id
   * that is already present is a RangeError unless { upsert: true }.
   */
  async add(vectors: Float32Array, ids?: BigInt64Array | null, options?: AddOptions): Promise<void> {
    await this.#native.add(...this.#checkAdd(vectors, ids, options));
  }

  addSync(vectors: Float32Array, ids?: BigInt64Array | null, options?: AddOptions): void {
    this.#native.addSync(...this.#checkAdd(vectors, ids, options));
  }

  /** k nearest stored vectors of each query (nq × dim floats). k larger than size() pads with -1n. */
  async search(queries: Float32Array, k: number, options?: SearchOptions): Promise<SearchResult> {
    const { args, groups, perGroup } = this.#checkSearch(queries, k, options);
    return searchResult(await this.#native.search(...args), perGroup, groups);
  }

  searchSync(queries: Float32Array, k: number, options?: SearchOptions): SearchResult {
    const { args, groups, perGroup } = this.#checkSearch(queries, k, options);
    return searchResult(this.#native.searchSync(...args), perGroup, groups);
  }

  /** Removes the vectors with these ids (absent ids are skipped); resolves to how many were removed. */
  async remove(ids: BigInt64Array | readonly bigint[]): Promise<number> {
    return this.#native.remove(toIdArray(ids, 'ids'));
  }

  removeSync(ids: BigInt64Array | readonly bigint[]): number {
    return this.#native.removeSync(toIdArray(ids, 'ids'));
  }

  has(id: bigint): boolean {
    return this.#native.has(this.#checkId(id));
  }

  /**
   * The stored (Flat) or decoded (compressed) vector of an id, or undefined if absent. Cosine: normalised.
   * Compressed indexes return what their codes decode to, also when they keep a refine store (whose copy is
   * f32-exact, fp16- or int8-rounded and only used to re-score search candidates).
   */
  reconstruct(id: bigint): Float32Array | undefined {
    return this.#native.reconstruct(this.#checkId(id));
  }

  /** Writes the index atomically (temporary file, fsync, rename): a crash leaves the old file intact. */
  async save(path: string): Promise<void> {
    await this.#native.save(checkPath(path));
  }

  saveSync(path: string): void {
    this.#native.saveSync(checkPath(path));
  }

  /**
   * Writes the index as a faiss index file (faiss 1.7.3 and later read it), atomically. PQ, PQ…fs, OPQ and RQ
   * indexes become IndexPQ / IndexPreTransform / IndexResidualQuantizer, wrapped in an IndexIDMap unless the ids
   * are 0 … n−1 in insertion order; L2 IVF with PQ or RQ becomes IndexIVFPQ / IndexIVFResidualQuantizer. TRQ, PRQ,
   * cosine, inner-product IVF, Refine stores and categories have no faiss form: ERR_QUIVER_UNSUPPORTED says which.
   */
  async saveFaiss(path: string): Promise<void> {
    await this.#native.saveFaiss(checkPath(path));
  }

  saveFaissSync(path: string): void {
    this.#native.saveFaissSync(checkPath(path));
  }

  /** The faiss index file bytes (what saveFaiss writes). */
  toFaissBuffer(): Buffer {
    return this.#native.toFaissBuffer();
  }

  /**
   * Writes the trained centroids and codebooks into folder `dir` as float32 .npy files plus manifest.json
   * (layout in lib/codebooks.ts), for engines that take external codebooks. Returns the manifest.
   */
  async exportCodebooks(dir: string): Promise<CodebooksManifest> {
    const target = checkPath(dir, 'dir', 'folder path');
    return writeCodebooksAsync(target, this.#native.exportPlain(), { spec: this.spec, dim: this.dim, metric: this.metric });
  }

  exportCodebooksSync(dir: string): CodebooksManifest {
    const target = checkPath(dir, 'dir', 'folder path');
    return writeCodebooks(target, this.#native.exportPlain(), { spec: this.spec, dim: this.dim, metric: this.metric });
  }

  /** The index in its file format, as a Node Buffer (for Index.fromBuffer, another thread or process). */
  toBuffer(): Buffer {
    return this.#native.toBuffer();
  }

  /** Releases the index's memory once running operations finish; later calls throw ERR_QUIVER_CLOSED. */
  close(): void {
    this.#native.close();
  }

  #checkAdd(vectors: unknown, ids: unknown, options: unknown): NativeAddArgs {
    const n = expectVectors(vectors, 'vectors', this.dim);
    const idArray = checkIds(ids, n);
    const o = expectOptions<AddOptions>(options, 'options', ADD_KEYS);
    const threads = optionalInteger(o.threads, 'options.threads', 0, MAX_THREADS);
    const categories = o.categories === undefined ? null : checkCategories(o.categories, 'options.categories', n);
    if (o.upsert !== undefined && typeof o.upsert !== 'boolean') {
      throw new TypeError(`options.upsert: expected a boolean, got ${describe(o.upsert)}`);
    }
    if (o.upsert && idArray === null) throw new RangeError('options.upsert: needs ids to know what to replace');
    return [vectors as Float32Array, idArray, threads, categories, o.upsert === true, checkDevice(o.device, 'options.device')];
  }

  #checkSearch(queries: unknown, k: unknown, options: unknown) {
    const nq = expectVectors(queries, 'queries', this.dim);
    expectInteger(k, 'k', 1, MAX_K);
    const o = expectOptions<SearchOptions>(options, 'options', SEARCH_KEYS);
    const filter = o.filter === undefined ? null : toIdArray(o.filter, 'options.filter');
    const categories = o.categories === undefined ? null : checkCategories(o.categories, 'options.categories');
    const { perGroup, groups } = checkResultGroups(nq, k as number, o.perCategory, categories, MAX_K);
    const perCategory = groups !== undefined;
    const args: NativeSearchArgs = [
      queries as Float32Array,
      perGroup,
      optionalInteger(o.nprobe, 'options.nprobe', 1, 1 << 20),
      optionalInteger(o.refine, 'options.refine', 1, 1 << 16),
      optionalInteger(o.threads, 'options.threads', 0, MAX_THREADS),
      filter,
      categories,
      perCategory,
      checkDevice(o.device, 'options.device'),
    ];
    return { args, perGroup, groups };
  }

  #checkId(id: unknown): bigint {
    if (typeof id !== 'bigint') throw new TypeError(`id: expected a bigint, got ${describe(id)}`);
    if (id < -(2n ** 63n) || id >= 2n ** 63n) throw new RangeError(`id: expected a signed 64-bit value, got ${id}n`);
    return id;
  }
}

export type CodecTrainOptions = Omit<TrainOptions, 'metric'>;

export interface EncodeOptions {
  threads?: number;
  /** 'cuda': encode on the GPU (PQ, RQ with any beam, TRQ with beam 1); other codecs run on the CPU. */
  device?: Device;
}

function checkEncodeOptions(options: unknown): [number | undefined, 'cpu' | 'cuda'] {
  const o = expectOptions<EncodeOptions>(options, 'options', ENCODE_KEYS);
  return [optionalInteger(o.threads, 'options.threads', 0, MAX_THREADS), checkDevice(o.device, 'options.device')];
}

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

  static async load(path: string): Promise<Codec> {
    return new Codec(await native().loadCodec(checkPath(path)));
  }

  static loadSync(path: string): Codec {
    return new Codec(native().loadCodecSync(checkPath(path)));
  }

  static fromBuffer(buffer: Uint8Array): Codec {
    return new Codec(native().codecFromBuffer(checkBytes(buffer)));
  }

  async save(path: string): Promise<void> {
    await this.#native.save(checkPath(path));
  }

  saveSync(path: string): void {
    this.#native.saveSync(checkPath(path));
  }

  toBuffer(): Buffer {
    return this.#native.toBuffer();
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
  encode(vectors: Float32Array, options?: EncodeOptions): Uint8Array {
    expectVectors(vectors, 'vectors', this.dim);
    const [threads, device] = checkEncodeOptions(options);
    return this.#native.encodeSync(vectors, threads, device);
  }

  async encodeAsync(vectors: Float32Array, options?: EncodeOptions): Promise<Uint8Array> {
    expectVectors(vectors, 'vectors', this.dim);
    const [threads, device] = checkEncodeOptions(options);
    return this.#native.encode(vectors, threads, device);
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

/** The SIMD level the kernels run at ('scalar' | 'avx2' | 'avx512' on x86-64, 'neon' on Arm64); QUIVER_SIMD=… forces it at start-up. */
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
