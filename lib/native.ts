// Loads the compiled addon lazily, on first use, so that importing quiver (for types, readVectors or the CLI's
// --help) never fails on a machine where the addon is missing; the failure then says what was tried.
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { PlainExportNative } from './codebooks';

export interface NativeProgress {
  phase: string;
  stage: number;
  stages: number;
  iteration: number;
  iterations: number;
  error: number;
}

export interface NativeTrainOptions {
  seed?: number;
  threads?: number;
  iterations?: number;
  maxPointsPerCentroid?: number;
  device?: 'cpu' | 'cuda';
}

/** What gpuInfo() returns: documented as GpuInfo in quiver.ts. */
export type NativeGpuInfo = import('./quiver').GpuInfo;

export interface NativeSearchResult {
  ids: BigInt64Array;
  distances: Float32Array;
}

export interface NativeIndex {
  readonly dim: number;
  readonly size: number;
  readonly spec: string;
  readonly metric: string;
  readonly codeSize: number;
  readonly refineBytes: number;
  readonly isTrained: boolean;
  readonly closed: boolean;
  train(v: Float32Array, o: NativeTrainOptions, cb?: (p: NativeProgress) => void): Promise<void>;
  trainSync(v: Float32Array, o: NativeTrainOptions, cb?: (p: NativeProgress) => void): void;
  add(...args: NativeAddArgs): Promise<void>;
  addSync(...args: NativeAddArgs): void;
  search(...args: NativeSearchArgs): Promise<NativeSearchResult>;
  searchSync(...args: NativeSearchArgs): NativeSearchResult;
  remove(ids: BigInt64Array): Promise<number>;
  removeSync(ids: BigInt64Array): number;
  has(id: bigint): boolean;
  reconstruct(id: bigint): Float32Array | undefined;
  save(path: string): Promise<void>;
  saveSync(path: string): void;
  toBuffer(): Buffer;
  saveFaiss(path: string): Promise<void>;
  saveFaissSync(path: string): void;
  toFaissBuffer(): Buffer;
  exportPlain(): PlainExportNative;
  close(): void;
}

export type NativeAddArgs = [
  vectors: Float32Array,
  ids: BigInt64Array | null,
  threads: number | undefined,
  categories: Int32Array | null,
  upsert: boolean,
  device: 'cpu' | 'cuda',
];

export type NativeSearchArgs = [
  queries: Float32Array,
  k: number,
  nprobe: number | undefined,
  refine: number | undefined,
  threads: number | undefined,
  filter: BigInt64Array | null,
  categories: Int32Array | null,
  perCategory: boolean,
  device: 'cpu' | 'cuda',
];

export interface NativeCodec {
  readonly dim: number;
  readonly spec: string;
  readonly codeSize: number;
  readonly isTrained: boolean;
  train(v: Float32Array, o: NativeTrainOptions, cb?: (p: NativeProgress) => void): Promise<void>;
  trainSync(v: Float32Array, o: NativeTrainOptions, cb?: (p: NativeProgress) => void): void;
  encode(v: Float32Array, threads?: number, device?: 'cpu' | 'cuda'): Promise<Uint8Array>;
  encodeSync(v: Float32Array, threads?: number, device?: 'cpu' | 'cuda'): Uint8Array;
  decode(c: Uint8Array, threads?: number): Promise<Float32Array>;
  decodeSync(c: Uint8Array, threads?: number): Float32Array;
  save(path: string): Promise<void>;
  saveSync(path: string): void;
  toBuffer(): Buffer;
}

export interface NativeBinding {
  NativeIndex: new (spec: string, dim: number, metric: string) => NativeIndex;
  NativeCodec: new (spec: string, dim: number) => NativeCodec;
  loadIndex(path: string, mmap: boolean): Promise<NativeIndex>;
  loadIndexSync(path: string, mmap: boolean): NativeIndex;
  indexFromBuffer(bytes: Uint8Array): NativeIndex;
  /** faiss index files (native/core/faiss_io.h). */
  loadFaissIndex(path: string): Promise<NativeIndex>;
  loadFaissIndexSync(path: string): NativeIndex;
  faissIndexFromBuffer(bytes: Uint8Array): NativeIndex;
  loadCodec(path: string): Promise<NativeCodec>;
  loadCodecSync(path: string): NativeCodec;
  codecFromBuffer(bytes: Uint8Array): NativeCodec;
  describeSpec(spec: string, dim: number): { spec: string; codeSize: number };
  describeCodecSpec(spec: string, dim: number): { spec: string; codeSize: number };
  getSimdLevel(): string;
  setSimdLevel(level: string): void;
  supportedSimdLevels(): string[];
  hardwareThreads(): number;
  gpuInfo(): NativeGpuInfo;
  /** Merges index files of one codebook into `output` (rows in input order); see native/core/shards.h. */
  mergeIndexFiles(inputs: string[], output: string): Promise<void>;
}

/** The package root: the nearest folder above this file whose package.json is quiver's. */
export function packageRoot(): string {
  let dir = __dirname;
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try {
        if (JSON.parse(fs.readFileSync(manifest, 'utf8')).name === 'quiver') return dir;
      } catch {
        // unreadable manifest: keep looking upwards
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`quiver: cannot find the package root above ${__dirname}`);
    dir = parent;
  }
}

let binding: NativeBinding | undefined;

export function native(): NativeBinding {
  if (binding) return binding;
  const root = packageRoot();
  const explicit = process.env.QUIVER_ADDON;
  try {
    if (explicit) {
      // An explicit addon file: a sanitizer build, or the cmake-js build (see the README's contributing notes).
      binding = require(path.resolve(explicit)) as NativeBinding;
    } else {
      // node-gyp-build looks in prebuilds/<platform>-<arch>/ first, then build/Release and build/Debug.
      const load = require('node-gyp-build') as (dir: string) => NativeBinding;
      binding = load(root);
    }
  } catch (cause) {
    const error = new Error(
      `quiver: could not load the native addon for ${process.platform}-${process.arch} (Node ${process.version}). ` +
        (explicit ? `QUIVER_ADDON=${explicit} could not be loaded. ` : '') +
        `Looked for a prebuild in ${path.join(root, 'prebuilds')} and a local build in ${path.join(root, 'build')}. ` +
        `Build it from source with "npm rebuild quiver" (needs python3, make and a C++17 compiler). ` +
        `Cause: ${(cause as Error).message}`,
    );
    (error as NodeJS.ErrnoException).code = 'ERR_QUIVER_NATIVE_LOAD';
    throw error;
  }
  return binding;
}
