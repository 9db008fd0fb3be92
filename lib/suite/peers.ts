// Peer systems measured in the same run as quiver, each behind the PeerAdapter interface (build, search a
// batch, search one query, bytes per vector). Every peer is optional: when its package (or python3-faiss)
// is missing, probe() says so and the suite records a skip instead of failing.
//
//   usearch       npm usearch: HNSW, C++ with SIMD, batch search with a thread count
//   hnswlib-node  npm hnswlib-node: HNSW, one query per call, one thread, number[] vectors
//   lancedb       npm @lancedb/lancedb: IVF-PQ over an on-disk table, async only, its own thread pools
//   faiss         Debian python3-faiss 1.7.3 in a python3 child process; built without SIMD, so it is an
//                 accuracy reference and never a speed anchor
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import type { Metric } from '../quiver';
import { isByteValued, type SuiteDataset } from './datasets';
import { directoryBytes } from './measure';
import { locatePackage, optionalRequire, packageVersion } from './modules';
import type { PeerAdapter, PeerConfiguration, PeerIndex, QpsFigures, SearchParams, SuitePlan } from './types';

function tempDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `quiver-${prefix}-`));
}

function rowOf(data: Float32Array, dim: number, i: number): Float32Array {
  return data.subarray(i * dim, (i + 1) * dim);
}

function unsupportedMetric(peer: string, metric: Metric): never {
  throw new RangeError(`${peer}: metric ${metric} is not supported`);
}

export interface HnswOptions {
  /** Graph degree M (default 16). */
  m?: number;
  /** Beam width while building (default 128). */
  efConstruction?: number;
}

// ---------------------------------------------------------------------------------------------- usearch

interface UsearchMatches {
  keys: BigUint64Array;
  counts?: BigUint64Array;
}
interface UsearchIndex {
  add(keys: BigUint64Array, vectors: Float32Array, threads?: number): void;
  search(vectors: Float32Array, k: number, threads?: number): UsearchMatches;
  save(file: string): void;
  load(file: string): void;
}
interface UsearchModule {
  Index: new (config: Record<string, unknown>) => UsearchIndex;
}

const USEARCH_METRICS: Record<Metric, string> = { l2: 'l2sq', ip: 'ip', cosine: 'cos' };

export function usearchPeer(options: HnswOptions = {}): PeerAdapter {
  const m = options.m ?? 16;
  const efConstruction = options.efConstruction ?? 128;
  let lib: UsearchModule | undefined;
  return {
    name: 'usearch',
    role: 'speed',
    async probe() {
      const loaded = optionalRequire<UsearchModule>('usearch');
      if ('skip' in loaded) return loaded;
      lib = loaded.module;
      return { version: packageVersion('usearch') };
    },
    configurations(_dataset, plan) {
      return [{ label: `HNSW M=${m} efC=${efConstruction}`, sweepSize: plan.ef.length, options: {} }];
    },
    async build(dataset, config, plan) {
      const usearch = lib!;
      const { dim, baseCount } = dataset;
      const settings = (ef: number) => ({
        dimensions: dim,
        metric: USEARCH_METRICS[dataset.metric],
        quantization: 'f32',
        connectivity: m,
        expansion_add: efConstruction,
        expansion_search: ef,
      });
      const index = new usearch.Index(settings(plan.ef[0] ?? 64));
      const keys = BigUint64Array.from({ length: baseCount }, (_, i) => BigInt(i));
      const start = performance.now();
      index.add(keys, dataset.base, 0);
      const addSeconds = (performance.now() - start) / 1000;
      // usearch fixes the search beam when an index object is made, so each ef gets the saved graph loaded
      // into an object made with that ef.
      const dir = tempDir('usearch');
      const file = path.join(dir, 'index.usearch');
      index.save(file);
      const bytesPerVector = fs.statSync(file).size / baseCount;
      let current = { ef: plan.ef[0] ?? 64, index };
      const forParams = (params: SearchParams) => {
        const ef = params.ef ?? current.ef;
        if (ef !== current.ef) {
          const loaded = new usearch.Index(settings(ef));
          loaded.load(file);
          current = { ef, index: loaded };
        }
        return current.index;
      };
      return {
        spec: config.label,
        bytesPerVector,
        bytesNote: 'saved index size / n: float32 vectors + graph',
        trainSeconds: 0,
        addSeconds,
        sweep: plan.ef.map((ef) => ({ ef })),
        threadModes: [1, 0],
        searchBatch(queries, k, params, threads) {
          const result = forParams(params).search(queries, k, threads);
          const nq = queries.length / dim;
          const ids = new BigInt64Array(nq * k).fill(-1n);
          for (let q = 0; q < nq; q++) {
            const found = result.counts ? Number(result.counts[q]) : k;
            for (let j = 0; j < found; j++) ids[q * k + j] = BigInt.asIntN(64, result.keys[q * k + j]);
          }
          return ids;
        },
        searchOne(i, k, params, threads) {
          return forParams(params).search(rowOf(dataset.queries, dim, i), k, threads);
        },
        close() {
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

// ------------------------------------------------------------------------------------------ hnswlib-node

interface HnswlibIndex {
  initIndex(options: { maxElements: number; m?: number; efConstruction?: number; randomSeed?: number }): void;
  addPoint(point: number[], label: number): void;
  searchKnn(query: number[], k: number): { neighbors: number[] };
  setEf(ef: number): void;
  writeIndexSync(file: string): void;
}
interface HnswlibModule {
  HierarchicalNSW: new (space: string, dim: number) => HnswlibIndex;
}

const HNSWLIB_SPACES: Record<Metric, string> = { l2: 'l2', ip: 'ip', cosine: 'cosine' };

export function hnswlibPeer(options: HnswOptions = {}): PeerAdapter {
  const m = options.m ?? 16;
  const efConstruction = options.efConstruction ?? 128;
  let lib: HnswlibModule | undefined;
  return {
    name: 'hnswlib-node',
    role: 'speed',
    async probe() {
      const loaded = optionalRequire<HnswlibModule>('hnswlib-node');
      if ('skip' in loaded) return loaded;
      lib = loaded.module;
      return { version: packageVersion('hnswlib-node') };
    },
    configurations(_dataset, plan) {
      return [{ label: `HNSW M=${m} efC=${efConstruction}`, sweepSize: plan.ef.length, options: {} }];
    },
    async build(dataset, config, plan) {
      const { dim, baseCount } = dataset;
      const index = new lib!.HierarchicalNSW(HNSWLIB_SPACES[dataset.metric], dim);
      index.initIndex({ maxElements: baseCount, m, efConstruction, randomSeed: plan.seed });
      // Its API takes number[]: converting each vector is part of what using it costs, so it is timed.
      const start = performance.now();
      for (let i = 0; i < baseCount; i++) index.addPoint(Array.from(rowOf(dataset.base, dim, i)), i);
      const addSeconds = (performance.now() - start) / 1000;
      const dir = tempDir('hnswlib');
      const file = path.join(dir, 'index.hnsw');
      index.writeIndexSync(file);
      const bytesPerVector = fs.statSync(file).size / baseCount;
      fs.rmSync(dir, { recursive: true, force: true });
      // The queries are converted once, outside the timings, as a caller holding number[] would have them.
      const queries = Array.from({ length: dataset.queryCount }, (_, i) => Array.from(rowOf(dataset.queries, dim, i)));
      let ef = -1;
      const setEf = (params: SearchParams) => {
        if (params.ef !== undefined && params.ef !== ef) index.setEf((ef = params.ef));
      };
      return {
        spec: config.label,
        bytesPerVector,
        bytesNote: 'saved index size / n: float32 vectors + graph',
        trainSeconds: 0,
        addSeconds,
        sweep: plan.ef.map((value) => ({ ef: value })),
        notes: ['no batch call and no threads: "batch" loops over the queries on one thread'],
        threadModes: [1],
        searchBatch(_queries, k, params) {
          setEf(params);
          const ids = new BigInt64Array(dataset.queryCount * k).fill(-1n);
          for (let q = 0; q < dataset.queryCount; q++) {
            const found = index.searchKnn(queries[q], k).neighbors;
            for (let j = 0; j < found.length; j++) ids[q * k + j] = BigInt(found[j]);
          }
          return ids;
        },
        searchOne(i, k, params) {
          setEf(params);
          return index.searchKnn(queries[i], k);
        },
        close() {},
      };
    },
  };
}

// ------------------------------------------------------------------------------------------------- lancedb

export interface LancedbOptions {
  /** IVF partitions (default √n, LanceDB's own default). */
  partitions?: number;
  /** PQ sub-vectors (default 16; LanceDB wants d divisible by it). */
  subVectors?: number;
}

interface ArrowTableColumn {
  toArray(): ArrayLike<number | bigint>;
}
interface ArrowTable {
  getChild(name: string): ArrowTableColumn | null;
  numRows: number;
}
interface LanceVectorQuery {
  addQueryVector(vector: Float32Array): LanceVectorQuery;
  distanceType(type: string): LanceVectorQuery;
  limit(k: number): LanceVectorQuery;
  nprobes(n: number): LanceVectorQuery;
  select(columns: string[]): LanceVectorQuery;
  toArrow(): Promise<ArrowTable>;
}
interface LanceTable {
  createIndex(column: string, options: Record<string, unknown>): Promise<void>;
  vectorSearch(vector: Float32Array): LanceVectorQuery;
  listIndices(): Promise<{ name: string; sizeBytes?: number }[]>;
  close?(): void;
}
interface LanceModule {
  connect(uri: string): Promise<{ createTable(name: string, data: unknown): Promise<LanceTable>; close?(): void }>;
  Index: { ivfPq(options: Record<string, unknown>): unknown };
}

const LANCE_DISTANCES: Record<Metric, string> = { l2: 'l2', ip: 'dot', cosine: 'cosine' };

/** An Arrow table { id: int32, vector: fixed_size_list<float32>[dim] } made without copying into JS arrays. */
function arrowTable(arrow: Record<string, any>, data: Float32Array, count: number, dim: number): unknown {
  const { Field, FixedSizeList, Float32, Int32, Table, makeData, makeVector } = arrow;
  const values = makeData({ type: new Float32(), length: count * dim, data });
  const listType = new FixedSizeList(dim, new Field('item', new Float32(), true));
  const vectors = makeVector(makeData({ type: listType, length: count, nullCount: 0, child: values }));
  const ids = makeVector(makeData({ type: new Int32(), length: count, data: Int32Array.from({ length: count }, (_, i) => i) }));
  return new Table({ id: ids, vector: vectors });
}

export function lancedbPeer(options: LancedbOptions = {}): PeerAdapter {
  let lib: LanceModule | undefined;
  let arrow: Record<string, unknown> | undefined;
  const shape = (dataset: SuiteDataset) => ({
    partitions: options.partitions ?? Math.max(1, Math.round(Math.sqrt(dataset.baseCount))),
    subVectors: options.subVectors ?? 16,
  });
  return {
    name: 'lancedb',
    role: 'speed',
    async probe() {
      const loaded = optionalRequire<LanceModule>('@lancedb/lancedb');
      if ('skip' in loaded) return loaded;
      // Arrow data must come from the apache-arrow copy LanceDB itself resolves (its peer dependency).
      const lanceDir = locatePackage('@lancedb/lancedb')!;
      try {
        arrow = require(require.resolve('apache-arrow', { paths: [lanceDir] }));
      } catch (error) {
        return { skip: `apache-arrow (LanceDB's peer dependency) does not load: ${(error as Error).message.split('\n')[0]}` };
      }
      lib = loaded.module;
      return { version: packageVersion('@lancedb/lancedb') };
    },
    configurations(dataset, plan) {
      const { partitions, subVectors } = shape(dataset);
      return [{ label: `IVF${partitions},PQ${subVectors}x8`, sweepSize: plan.nprobe.length, options: { partitions, subVectors } }];
    },
    async build(dataset, config, plan) {
      const { dim, baseCount } = dataset;
      const { partitions, subVectors } = config.options as { partitions: number; subVectors: number };
      if (dim % subVectors !== 0) throw new RangeError(`lancedb: d=${dim} is not divisible by ${subVectors} sub-vectors`);
      const distance = LANCE_DISTANCES[dataset.metric] ?? unsupportedMetric('lancedb', dataset.metric);
      const dir = tempDir('lancedb');
      const db = await lib!.connect(dir);
      let start = performance.now();
      const table = await db.createTable('vectors', arrowTable(arrow!, dataset.base, baseCount, dim));
      const addSeconds = (performance.now() - start) / 1000;
      start = performance.now();
      await table.createIndex('vector', {
        config: lib!.Index.ivfPq({ numPartitions: partitions, numSubVectors: subVectors, numBits: 8, distanceType: distance }),
      });
      const trainSeconds = (performance.now() - start) / 1000;
      const info = (await table.listIndices()).find((i) => i.sizeBytes !== undefined);
      const indexBytes = info?.sizeBytes ?? directoryBytes(dir);
      const query = (vector: Float32Array, k: number, params: SearchParams) =>
        table
          .vectorSearch(vector)
          .distanceType(distance)
          .limit(k)
          .nprobes(params.nprobe ?? 20)
          // Naming _distance keeps LanceDB from warning about its automatic projection on every query.
          .select(['id', '_distance']);
      return {
        spec: config.label,
        bytesPerVector: indexBytes / baseCount,
        bytesNote: 'IVF-PQ index size / n (codes + row ids); the table also keeps the float32 vectors on disk',
        trainSeconds,
        addSeconds,
        sweep: plan.nprobe.map((nprobe) => ({ nprobe })),
        notes: ['async API on its own thread pools: no 1-thread figures, "single" awaits one query at a time'],
        threadModes: [0],
        async searchBatch(queries, k, params) {
          const nq = queries.length / dim;
          let q = query(rowOf(queries, dim, 0), k, params);
          for (let i = 1; i < nq; i++) q = q.addQueryVector(rowOf(queries, dim, i));
          const result = await q.toArrow();
          const ids = new BigInt64Array(nq * k).fill(-1n);
          const rowIds = result.getChild('id')!.toArray();
          const distances = result.getChild('_distance')!.toArray();
          const owner = nq > 1 ? result.getChild('query_index')!.toArray() : new Int32Array(result.numRows);
          // Rows come grouped by neither query nor rank: order them by (query, distance).
          const order = Array.from({ length: result.numRows }, (_, r) => r).sort(
            (a, b) => Number(owner[a]) - Number(owner[b]) || Number(distances[a]) - Number(distances[b]),
          );
          const filled = new Int32Array(nq);
          for (const r of order) {
            const qi = Number(owner[r]);
            if (filled[qi] < k) ids[qi * k + filled[qi]++] = BigInt(rowIds[r]);
          }
          return ids;
        },
        searchOne(i, k, params) {
          return query(rowOf(dataset.queries, dim, i), k, params).toArrow();
        },
        close() {
          table.close?.();
          db.close?.();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

// --------------------------------------------------------------------------------------------------- faiss

export interface FaissOptions {
  /** The python peer script (bench/peers/faiss_peer.py); required, since lib/ ships without bench/. */
  script: string;
  /** Interpreter with faiss importable (default /usr/bin/python3, where Debian's python3-faiss lives). */
  python?: string;
  /** faiss factory strings to build instead of the quiver specs' counterparts. */
  factories?: string[];
}

/**
 * The faiss factory string equivalent to a quiver spec (same names, except quiver's refine stores: ",Refine" is
 * ",RFlat", ",Refine,store=fp16" is ",Refine(SQfp16)" and ",Refine,store=int8" is ",Refine(SQ8)").
 */
export function faissFactoryFor(spec: string): string {
  return spec
    .replace(/,Refine$/, ',RFlat')
    .replace(/,Refine,store=f32$/, ',RFlat')
    .replace(/,Refine,store=fp16$/, ',Refine(SQfp16)')
    .replace(/,Refine,store=int8$/, ',Refine(SQ8)');
}

function faissSweep(factory: string, plan: SuitePlan): SearchParams[] {
  if (/(^|,)IVF/i.test(factory)) return plan.nprobe.map((nprobe) => ({ nprobe }));
  if (/(^|,)HNSW/i.test(factory)) return plan.ef.map((ef) => ({ ef }));
  if (/,RFlat$/.test(factory)) return plan.refine.map((refine) => ({ refine }));
  return [{}];
}

function readInt64(file: string): BigInt64Array {
  const buf = fs.readFileSync(file);
  return new BigInt64Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
}

/** Writes vectors as .u8bin when they are all bytes (4× smaller), else .fbin: int32 n, int32 d, values. */
export function writeBinVectors(dir: string, name: string, data: Float32Array, count: number, dim: number): string {
  const bytes = isByteValued(data);
  const file = path.join(dir, `${name}.${bytes ? 'u8bin' : 'fbin'}`);
  const header = Buffer.alloc(8);
  header.writeInt32LE(count, 0);
  header.writeInt32LE(dim, 4);
  const body = bytes ? Buffer.from(Uint8Array.from(data)) : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  fs.writeFileSync(file, Buffer.concat([header, body]));
  return file;
}

/** Runs the python peer script with a JSON request on stdin; resolves with its JSON answer. */
export function runPythonPeer(python: string, script: string, command: string, request: unknown, onStderrLine?: (line: string) => void): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script, command], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      if (onStderrLine) for (const line of String(chunk).split('\n')) if (line.trim()) onStderrLine(line);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (code === 0) {
        try {
          resolve(JSON.parse(stdout));
        } catch {
          reject(new Error(`faiss peer printed no JSON: ${stdout.slice(0, 200)}`));
        }
        return;
      }
      // faiss's own errors end the traceback; its clustering warnings precede it.
      const last = stderr.trim().split('\n').filter((l) => !l.startsWith('WARNING')).pop() ?? '';
      reject(new Error(signal ? `faiss peer killed by ${signal}` : `faiss peer exited with code ${code}: ${last}`));
    });
    child.stdin.end(JSON.stringify(request));
  });
}

/** Checks that `python` can import faiss; returns its version or why not. */
export function probeFaiss(python: string, script: string): { version: string } | { skip: string } {
  if (!fs.existsSync(script)) return { skip: `faiss peer script ${script} not found` };
  const run = spawnSync(python, [script, 'version'], { encoding: 'utf8' });
  if (run.error) return { skip: `${python} not found (${run.error.message}); install python3-faiss with apt-get` };
  if (run.status !== 0) {
    return { skip: `${python} cannot import faiss (apt-get install -y python3-faiss): ${run.stderr.trim().split('\n').pop()}` };
  }
  return { version: JSON.parse(run.stdout).version };
}

export function faissPeer(options: FaissOptions): PeerAdapter {
  const python = options.python ?? '/usr/bin/python3';
  let dataDir: string | undefined;
  let files: { dataset: SuiteDataset; base: string; queries: string } | undefined;
  const filesFor = (dataset: SuiteDataset) => {
    if (files?.dataset !== dataset) {
      dataDir ??= tempDir('faiss');
      files = {
        dataset,
        base: writeBinVectors(dataDir, `${dataset.name}-base`, dataset.base, dataset.baseCount, dataset.dim),
        queries: writeBinVectors(dataDir, `${dataset.name}-queries`, dataset.queries, dataset.queryCount, dataset.dim),
      };
    }
    return files;
  };
  return {
    name: 'faiss',
    role: 'accuracy',
    async probe() {
      const found = probeFaiss(python, options.script);
      return 'version' in found ? { version: `${found.version} (Debian, no SIMD)` } : found;
    },
    configurations(_dataset, plan) {
      const factories = options.factories ?? plan.specs.map(faissFactoryFor);
      return factories.map((factory) => ({ label: factory, sweepSize: faissSweep(factory, plan).length, options: { factory } }));
    },
    async build(dataset, config, plan) {
      const { base, queries } = filesFor(dataset);
      const outDir = fs.mkdtempSync(path.join(dataDir!, 'run-'));
      const factory = config.options.factory as string;
      const answer = await runPythonPeer(python, options.script, 'suite', {
        base,
        queries,
        metric: dataset.metric,
        trainCount: dataset.trainCount,
        factory,
        sweep: faissSweep(factory, plan),
        k: plan.k,
        recallK: plan.recallK,
        minSeconds: plan.minSeconds,
        rounds: plan.rounds,
        outDir,
      });
      const byParams = new Map<string, { qps: QpsFigures; ids: BigInt64Array; recallIds: BigInt64Array }>();
      for (const r of answer.results) {
        byParams.set(JSON.stringify(r.params), { qps: r.qps, ids: readInt64(r.idsFile), recallIds: readInt64(r.recallIdsFile) });
      }
      fs.rmSync(outDir, { recursive: true, force: true });
      return {
        spec: factory,
        bytesPerVector: answer.bytesPerVector,
        bytesNote: 'serialized size added per vector (codes, ids, graph)',
        trainSeconds: answer.trainSeconds,
        addSeconds: answer.addSeconds,
        rssDeltaBytes: answer.rssDeltaBytes,
        sweep: answer.results.map((r: { params: SearchParams }) => r.params),
        notes: [`${answer.indexType}; timed inside python (OpenMP, ${answer.threads} threads for "all"); no SIMD: accuracy reference only`],
        threadModes: [1, 0],
        measured(params) {
          const found = byParams.get(JSON.stringify(params));
          if (!found) throw new Error(`faiss peer returned nothing for ${JSON.stringify(params)}`);
          return found;
        },
        close() {},
      } satisfies PeerIndex;
    },
    dispose() {
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
      dataDir = undefined;
      files = undefined;
    },
  };
}

/** The peers by the names the CLI takes. */
export const PEER_NAMES = ['usearch', 'hnswlib', 'lancedb', 'faiss'] as const;
export type PeerName = (typeof PEER_NAMES)[number];

export interface PeerSetOptions {
  hnsw?: HnswOptions;
  lancedb?: LancedbOptions;
  faiss?: FaissOptions;
}

/** Adapters for the named peers; 'faiss' needs options.faiss.script. Unknown names are a RangeError. */
export function createPeers(names: string[], options: PeerSetOptions = {}): PeerAdapter[] {
  return names.map((name): PeerAdapter => {
    switch (name) {
      case 'usearch':
        return usearchPeer(options.hnsw);
      case 'hnswlib':
      case 'hnswlib-node':
        return hnswlibPeer(options.hnsw);
      case 'lancedb':
        return lancedbPeer(options.lancedb);
      case 'faiss':
        if (!options.faiss) throw new RangeError('faiss: the peer needs the path of bench/peers/faiss_peer.py (options.faiss.script)');
        return faissPeer(options.faiss);
      default:
        throw new RangeError(`peers: unknown peer "${name}"; expected ${PEER_NAMES.join(', ')}`);
    }
  });
}

export type { PeerConfiguration };
