// Datasets for the benchmark suite: base vectors, queries, exact ground truth and the metric, loaded from
//   - TEXMEX (.fvecs/.bvecs/.ivecs) and big-ann (.fbin/.u8bin/.ibin) files, through readVectors;
//   - ann-benchmarks HDF5 files (datasets train/test/neighbors, attribute distance), through h5wasm;
//   - Fashion-MNIST's idx .gz files (Debian's dataset-fashion-mnist, read by pipeline/idx.ts) with ground
//     truth from the shared data;
//   - named presets ('sift10k', 'fashion-mnist') that find those files on this machine.
// A missing file is a DatasetUnavailableError whose message says what to install or where to put it, so
// callers can skip the dataset instead of failing the whole run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

import { readVectors } from '../io';
import { packageRoot } from '../native';
import { readIdx } from '../pipeline/idx';
import type { Metric } from '../quiver';
import { locatePackage } from './modules';

export interface SuiteDataset {
  /** Short name used in file names and tables, e.g. 'sift10k'. */
  name: string;
  /** One line saying what the data is and where it came from. */
  description: string;
  metric: Metric;
  dim: number;
  /** baseCount × dim floats, row-major. */
  base: Float32Array;
  baseCount: number;
  /** queryCount × dim floats. */
  queries: Float32Array;
  queryCount: number;
  /** queryCount × gtK neighbour ids (rows of base), nearest first. */
  groundTruth: Int32Array;
  gtK: number;
  /** Train on the first trainCount base vectors (default: all of them), as the anchors did. */
  trainCount?: number;
}

/** Thrown when a dataset's files are not on this machine; the message says how to get them. */
export class DatasetUnavailableError extends Error {
  readonly code = 'ERR_QUIVER_DATASET_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'DatasetUnavailableError';
  }
}

/** The shared real datasets: $QUIVER_DATA_DIR, else ../shared/data beside the package root; undefined if absent. */
export function sharedDataDir(): string | undefined {
  const candidates = [process.env.QUIVER_DATA_DIR, path.join(packageRoot(), '..', 'shared', 'data')];
  return candidates.find((dir): dir is string => !!dir && fs.existsSync(dir));
}

function requireFile(file: string, hint: string): string {
  if (!fs.existsSync(file)) throw new DatasetUnavailableError(`${file} not found; ${hint}`);
  return file;
}

/** Checks that the arrays agree with each other and wraps them as a dataset. */
export function makeDataset(fields: SuiteDataset): SuiteDataset {
  const { name, dim, baseCount, queryCount, gtK } = fields;
  if (fields.base.length !== baseCount * dim) throw new RangeError(`${name}: base holds ${fields.base.length} floats, expected ${baseCount} × ${dim}`);
  if (fields.queries.length !== queryCount * dim) throw new RangeError(`${name}: queries hold ${fields.queries.length} floats, expected ${queryCount} × ${dim}`);
  if (fields.groundTruth.length !== queryCount * gtK) {
    throw new RangeError(`${name}: ground truth holds ${fields.groundTruth.length} ids, expected ${queryCount} × ${gtK}`);
  }
  if (fields.trainCount !== undefined && (fields.trainCount < 1 || fields.trainCount > baseCount)) {
    throw new RangeError(`${name}: trainCount ${fields.trainCount} is outside 1…${baseCount}`);
  }
  return fields;
}

export interface VecsDatasetFiles {
  name: string;
  description?: string;
  base: string;
  queries: string;
  groundTruth: string;
  metric?: Metric;
  /** Use only the first queryCount queries (and their ground-truth rows). */
  queryCount?: number;
  trainCount?: number;
}

/** Loads base, queries and ground truth from TEXMEX or big-ann files (any format readVectors knows). */
export async function loadVecsDataset(files: VecsDatasetFiles): Promise<SuiteDataset> {
  for (const file of [files.base, files.queries, files.groundTruth]) requireFile(file, 'pass existing files');
  const base = await readVectors(files.base);
  const queries = await readVectors(files.queries, { count: files.queryCount });
  const gt = await readVectors(files.groundTruth, { count: queries.n });
  if (!(gt.data instanceof Int32Array)) throw new TypeError(`${files.groundTruth}: ground truth must be an integer format (.ivecs or .ibin)`);
  if (base.dim !== queries.dim) throw new RangeError(`${files.name}: base has d=${base.dim} but queries have d=${queries.dim}`);
  return makeDataset({
    name: files.name,
    description: files.description ?? `${path.basename(files.base)} / ${path.basename(files.queries)}`,
    metric: files.metric ?? 'l2',
    dim: base.dim,
    base: base.data as Float32Array,
    baseCount: base.n,
    queries: queries.data as Float32Array,
    queryCount: queries.n,
    groundTruth: gt.data,
    gtK: gt.dim,
    trainCount: files.trainCount,
  });
}

// h5wasm ships only as an ES module. This package compiles to CommonJS, where TypeScript would turn
// `import()` into `require()`, so the import is built at run time; the file URL avoids depending on where
// the caller's module resolution starts.
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<unknown>;

interface H5Dataset {
  shape: number[];
  value: unknown;
}
interface H5File {
  get(name: string): H5Dataset | undefined;
  attrs: Record<string, { value: unknown }>;
  close(): void;
}
interface H5Module {
  ready: Promise<unknown>;
  File: new (file: string, mode: string) => H5File;
}

/** Loads h5wasm's Node build (reads files straight from disk). */
export async function loadH5wasm(): Promise<H5Module> {
  const dir = locatePackage('h5wasm');
  if (!dir) throw new DatasetUnavailableError('the npm package h5wasm is not installed; HDF5 datasets need it (npm install h5wasm)');
  const loaded = (await importModule(pathToFileURL(path.join(dir, 'dist', 'node', 'hdf5_hl.js')).href)) as { default?: H5Module } & H5Module;
  const h5 = loaded.default ?? loaded;
  await h5.ready;
  return h5;
}

const HDF5_METRICS: Record<string, Metric> = { euclidean: 'l2', angular: 'cosine', dot: 'ip', ip: 'ip' };

function toFloat32(value: unknown, what: string): Float32Array {
  if (value instanceof Float32Array) return value;
  if (value instanceof Float64Array || value instanceof Uint8Array || value instanceof Int32Array) return Float32Array.from(value);
  throw new TypeError(`${what}: unsupported HDF5 element type ${describeValue(value)}`);
}

function describeValue(value: unknown): string {
  return (value as object | null)?.constructor?.name ?? typeof value;
}

export interface Hdf5Options {
  name?: string;
  queryCount?: number;
  trainCount?: number;
}

/** Loads an ann-benchmarks HDF5 file: train (base), test (queries), neighbors (ground truth), attrs.distance. */
export async function loadHdf5Dataset(file: string, options: Hdf5Options = {}): Promise<SuiteDataset> {
  requireFile(file, 'download the ann-benchmarks .hdf5 file and pass its path');
  const h5 = await loadH5wasm();
  const f = new h5.File(file, 'r');
  try {
    const get = (name: string) => {
      const ds = f.get(name);
      if (!ds || !Array.isArray(ds.shape)) throw new RangeError(`${file}: no dataset "${name}" (ann-benchmarks files have train, test, neighbors)`);
      return ds;
    };
    const train = get('train');
    const test = get('test');
    const neighbors = get('neighbors');
    const distance = String(f.attrs['distance']?.value ?? 'euclidean');
    const metric = HDF5_METRICS[distance];
    if (!metric) throw new RangeError(`${file}: distance "${distance}" is not supported; expected ${Object.keys(HDF5_METRICS).join(', ')}`);
    const [baseCount, dim] = train.shape;
    const [allQueries] = test.shape;
    const gtK = neighbors.shape[1];
    const queryCount = Math.min(options.queryCount ?? allQueries, allQueries);
    const gtAll = neighbors.value;
    if (!(gtAll instanceof Int32Array || gtAll instanceof BigInt64Array || gtAll instanceof Float64Array)) {
      throw new TypeError(`${file}: neighbors has unsupported element type ${describeValue(gtAll)}`);
    }
    const groundTruth = Int32Array.from(gtAll.subarray(0, queryCount * gtK) as ArrayLike<number | bigint>, (v) => Number(v));
    return makeDataset({
      name: options.name ?? path.basename(file).replace(/\.hdf5$/i, ''),
      description: `ann-benchmarks ${path.basename(file)} (distance ${distance})`,
      metric,
      dim,
      base: toFloat32(train.value, `${file}: train`),
      baseCount,
      queries: toFloat32(test.value, `${file}: test`).slice(0, queryCount * dim),
      queryCount,
      groundTruth,
      gtK,
      trainCount: options.trainCount,
    });
  } finally {
    f.close();
  }
}

async function idxImages(file: string): Promise<{ count: number; dim: number; data: Float32Array }> {
  const { dims, data } = await readIdx(file);
  const [count, ...rest] = dims;
  return { count, dim: rest.reduce((a, b) => a * b, 1), data: Float32Array.from(data) };
}

export const FASHION_MNIST_IMAGES = '/usr/share/datasets/fashion-mnist';

export interface FashionMnistOptions {
  /** Folder of the idx .gz files (default: Debian's /usr/share/datasets/fashion-mnist). */
  imagesDir?: string;
  /** Folder with fashion-mnist_test_vs_train_groundtruth.ivecs (default: <shared data>/fashion-mnist). */
  groundTruthDir?: string;
  queryCount?: number;
  trainCount?: number;
}

/** Fashion-MNIST as ann-benchmarks splits it: 60 000 training images as base, test images as queries, L2. */
export async function loadFashionMnist(options: FashionMnistOptions = {}): Promise<SuiteDataset> {
  const imagesDir = options.imagesDir ?? FASHION_MNIST_IMAGES;
  const install = 'install the images with `apt-get install -y dataset-fashion-mnist`';
  const trainFile = requireFile(path.join(imagesDir, 'train-images-idx3-ubyte.gz'), install);
  const testFile = requireFile(path.join(imagesDir, 't10k-images-idx3-ubyte.gz'), install);
  const gtDir = options.groundTruthDir ?? path.join(sharedDataDir() ?? path.join(packageRoot(), '..', 'shared', 'data'), 'fashion-mnist');
  const gtFile = requireFile(
    path.join(gtDir, 'fashion-mnist_test_vs_train_groundtruth.ivecs'),
    'the ground truth lives in ../shared/data/fashion-mnist (or set QUIVER_DATA_DIR)',
  );
  const train = await idxImages(trainFile);
  const test = await idxImages(testFile);
  const queryCount = Math.min(options.queryCount ?? test.count, test.count);
  const gt = await readVectors(gtFile, { count: queryCount });
  return makeDataset({
    name: 'fashion-mnist',
    description: 'Fashion-MNIST (Zalando, MIT) as ann-benchmarks splits it: training images as base, test images as queries',
    metric: 'l2',
    dim: train.dim,
    base: train.data,
    baseCount: train.count,
    queries: test.data.slice(0, queryCount * test.dim),
    queryCount,
    groundTruth: gt.data as Int32Array,
    gtK: gt.dim,
    trainCount: options.trainCount,
  });
}

export interface PresetOptions {
  /** Queries to use (default: the preset's, e.g. 1 000 for Fashion-MNIST). */
  queryCount?: number;
  /** Training vectors (default: the preset's, e.g. 20 000 for Fashion-MNIST, as the anchors were trained). */
  trainCount?: number;
}

async function loadSift10k(options: PresetOptions): Promise<SuiteDataset> {
  // The held-out split: queries are not in the base. The shared copy and the embedded one are the same files.
  const shared = sharedDataDir();
  const dirs = [shared && path.join(shared, 'bigann10k'), path.join(packageRoot(), 'data', 'bigann10k')];
  const dir = dirs.find((d): d is string => !!d && fs.existsSync(path.join(d, 'bigann10k_heldout_base.bvecs')));
  if (!dir) throw new DatasetUnavailableError(`sift10k: bigann10k_heldout_*.bvecs not found in ${dirs.filter(Boolean).join(' or ')}`);
  return loadVecsDataset({
    name: 'sift10k',
    description: 'SIFT descriptors from BIGANN (INRIA TEXMEX, via the TileDB-Vector-Search test data, MIT), held-out split',
    base: path.join(dir, 'bigann10k_heldout_base.bvecs'),
    queries: path.join(dir, 'bigann10k_heldout_query.bvecs'),
    groundTruth: path.join(dir, 'bigann10k_heldout_groundtruth.ivecs'),
    metric: 'l2',
    queryCount: options.queryCount,
    trainCount: options.trainCount,
  });
}

export const DATASET_PRESETS: Record<string, { describe: string; load: (o: PresetOptions) => Promise<SuiteDataset> }> = {
  sift10k: { describe: 'SIFT slice, held-out split (9 900 × 128, 100 queries)', load: loadSift10k },
  'fashion-mnist': {
    describe: 'Fashion-MNIST (60 000 × 784, first 1 000 test queries, trained on the first 20 000)',
    load: (o) => loadFashionMnist({ queryCount: o.queryCount ?? 1000, trainCount: o.trainCount ?? 20000 }),
  },
};

/** Loads a named preset; throws DatasetUnavailableError when its files are missing here. */
export async function loadPreset(name: string, options: PresetOptions = {}): Promise<SuiteDataset> {
  const preset = DATASET_PRESETS[name];
  if (!preset) throw new RangeError(`dataset: unknown preset "${name}"; expected ${Object.keys(DATASET_PRESETS).join(', ')} or a file path`);
  return preset.load(options);
}

/** A preset name, an .hdf5 file, or a base file whose queries and ground truth are named in `files`. */
export async function loadDataset(
  spec: string,
  options: PresetOptions & { queries?: string; groundTruth?: string; metric?: Metric } = {},
): Promise<SuiteDataset> {
  if (spec in DATASET_PRESETS) return loadPreset(spec, options);
  if (/\.(hdf5|h5)$/i.test(spec)) return loadHdf5Dataset(spec, options);
  if (!options.queries || !options.groundTruth) {
    throw new RangeError(`dataset: "${spec}" is neither a preset nor an .hdf5 file; a base file needs queries and ground-truth files too`);
  }
  return loadVecsDataset({
    name: path.basename(spec).replace(/\.[^.]+$/, ''),
    base: spec,
    queries: options.queries,
    groundTruth: options.groundTruth,
    metric: options.metric,
    queryCount: options.queryCount,
    trainCount: options.trainCount,
  });
}

/** True when every value is an integer in 0…255, so the vectors can travel to peers as bytes. */
export function isByteValued(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (!(v >= 0 && v <= 255 && Number.isInteger(v))) return false;
  }
  return true;
}
