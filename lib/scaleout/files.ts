// Scale-out, step by step: pure functions from files to files, so that any job system (BullMQ here, anything
// else elsewhere) can run them on any machine that sees the same file system.
//
//   trainCodebook  vectors → codebook file (a trained, EMPTY index in quiver's index format) + manifest
//   encodeShard    codebook + one slice of the collection → shard file (the codebook with that slice added)
//   mergeShards    shard files → one index file, rows in shardId order, IVF lists contiguous
//
// Every file gets a JSON manifest beside it (`<file>.json`) holding its SHA-256 and what it was made from.
// A shard names the SHA-256 of the codebook it was encoded with, and mergeShards refuses shards of different
// codebooks, so distances stay comparable and top-k merges exact.
//
// Determinism: encoding depends only on the codebook and the vectors, not on the SIMD level or thread count
// (native/core/kmeans.cpp breaks near-ties of the nearest-centroid choice the same way at every level), so a
// shard's bytes are reproducible anywhere. This holds for Flat, PQ, PQ…fs, IVF,PQ and IVF,TRQ,PQ specs (with or
// without Refine; IVF rotates residuals in a fixed summation order when encoding); codecs whose own encoders go
// through SIMD rotations or beam search (OPQ, RQ, TRQ as a codec) are not covered yet.
//
// Global order: the merged index holds the shards' rows by ascending shardId, each shard's rows in the order
// they were given to encodeShard. Cut one sequence of vectors into contiguous runs, encode run i as shard i,
// and the merged file is byte-identical to encoding the whole sequence as one shard: however many shards,
// whichever machines.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import { formatOf, readVectors, type VectorFormat } from '../io';
import { native } from '../native';
import { Index, type Metric, type TrainOptions } from '../quiver';
import { describe, expectInteger, expectOptions, expectString, expectVectors, optionalInteger } from '../validate';

/** Version of the manifests written beside codebook, shard and merged files. */
export const MANIFEST_VERSION = 1;

/** What identifies a codebook: shards and merged files carry it. */
export interface CodebookRef {
  /** SHA-256 (hex) of the codebook file's bytes. */
  sha256: string;
  spec: string;
  dim: number;
  metric: Metric;
}

export interface CodebookInfo extends CodebookRef {
  format: 'quiver-codebook';
  version: number;
  /** Absolute path of the codebook file (the manifest itself stores the base name). */
  path: string;
  bytes: number;
}

export interface ShardInfo {
  format: 'quiver-shard';
  version: number;
  path: string;
  sha256: string;
  bytes: number;
  shardId: number;
  /** Vectors in the shard. */
  count: number;
  codebook: CodebookRef;
}

export interface MergedInfo {
  format: 'quiver-merged';
  version: number;
  path: string;
  sha256: string;
  bytes: number;
  count: number;
  /** The merged shards, in merge order (ascending shardId), with the absolute path each was read from. */
  shards: { shardId: number; path: string; sha256: string; count: number }[];
  codebook: CodebookRef;
}

export interface EncodeShardOptions {
  /** Threads for encoding (default: all). The output does not depend on it. */
  threads?: number;
  /** One category (0 … 2^31−1) per vector, for category-filtered search. */
  categories?: Int32Array | readonly number[];
  /** Refuse the codebook unless its SHA-256 is this (hex): guards against a codebook replaced meanwhile. */
  codebookSha256?: string;
}

export interface MergeShardsOptions {
  /** The codebook file the shards must have been encoded with (checked by hash). */
  codebook?: string;
  /** Re-hash every shard file and compare with its manifest (default true). */
  verify?: boolean;
}

const MAX_SHARD_ID = 0x7fffffff;

/** The manifest written beside `file`. */
export function manifestPath(file: string): string {
  return `${file}.json`;
}

/** SHA-256 (hex) of a file's bytes, streamed. */
export async function sha256File(file: string): Promise<string> {
  checkPath(file, 'file');
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function checkPath(value: unknown, name: string): string {
  const p = expectString(value, name);
  if (p.length === 0 || p.includes('\0')) throw new RangeError(`${name}: expected a non-empty file path, got ${describe(p)}`);
  return p;
}

function checkSha(value: unknown, name: string): string {
  const s = expectString(value, name);
  if (!/^[0-9a-f]{64}$/.test(s)) throw new RangeError(`${name}: expected 64 lower-case hex digits, got ${describe(s)}`);
  return s;
}

/** Writes JSON atomically (temporary file in the same folder, then rename), so readers never see half a file. */
async function writeJsonAtomic(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.${process.pid}.${Date.now()}.tmp`;
  await fs.promises.writeFile(tmp, JSON.stringify(value, null, 2) + '\n');
  await fs.promises.rename(tmp, file);
}

/** The manifest beside info.path: the info with the file's base name instead of its absolute path. */
async function writeManifest(info: { path: string }): Promise<void> {
  const { path: file, ...rest } = info;
  await writeJsonAtomic(manifestPath(file), { ...rest, file: path.basename(file) });
}

function manifestError(file: string, why: string): Error {
  const e = new Error(`${manifestPath(file)}: ${why}`);
  (e as NodeJS.ErrnoException).code = 'ERR_QUIVER_MANIFEST';
  return e;
}

async function readManifest(file: string, format: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await fs.promises.readFile(manifestPath(file), 'utf8');
  } catch (cause) {
    const e = manifestError(file, `cannot read the manifest (${(cause as Error).message}); files made by quiver's scale-out steps have one beside them`);
    throw Object.assign(e, { cause });
  }
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text);
  } catch {
    throw manifestError(file, 'is not valid JSON');
  }
  if (m === null || typeof m !== 'object' || m.format !== format) {
    throw manifestError(file, `expected a "${format}" manifest, got format ${describe(m?.format)}`);
  }
  if (m.version !== MANIFEST_VERSION) {
    throw manifestError(file, `manifest version ${describe(m.version)} is not supported (this quiver reads version ${MANIFEST_VERSION})`);
  }
  return m;
}

function codebookRef(m: Record<string, unknown>, file: string): CodebookRef {
  const c = m as unknown as CodebookRef;
  if (typeof c.sha256 !== 'string' || typeof c.spec !== 'string' || typeof c.dim !== 'number' || typeof c.metric !== 'string') {
    throw manifestError(file, 'lacks the codebook fields sha256, spec, dim and metric');
  }
  return { sha256: c.sha256, spec: c.spec, dim: c.dim, metric: c.metric };
}

/**
 * Trains an index of `spec` on `vectors` and writes it, empty, to `outFile` as the codebook every shard is
 * encoded with; writes the manifest `<outFile>.json` (format, version, SHA-256, spec, dim, metric).
 */
export async function trainCodebook(spec: string, vectors: Float32Array, outFile: string, options: TrainOptions): Promise<CodebookInfo> {
  checkPath(outFile, 'outFile');
  const index = await Index.train(spec, vectors, options);
  const ref = { spec: index.spec, dim: index.dim, metric: index.metric };
  try {
    await index.save(outFile);
  } finally {
    index.close();
  }
  const bytes = await fs.promises.readFile(outFile);
  const info: CodebookInfo = {
    format: 'quiver-codebook',
    version: MANIFEST_VERSION,
    path: path.resolve(outFile),
    sha256: sha256(bytes),
    bytes: bytes.length,
    ...ref,
  };
  await writeManifest(info);
  return info;
}

/** Reads a codebook's manifest and checks that the file still has the SHA-256 it names. */
export async function readCodebook(codebookFile: string): Promise<CodebookInfo> {
  checkPath(codebookFile, 'codebookFile');
  const m = await readManifest(codebookFile, 'quiver-codebook');
  const ref = codebookRef(m, codebookFile);
  const actual = await sha256File(codebookFile);
  if (actual !== ref.sha256) {
    throw manifestError(codebookFile, `the codebook file's SHA-256 is ${actual}, the manifest says ${ref.sha256}: the file changed`);
  }
  return { format: 'quiver-codebook', version: MANIFEST_VERSION, path: path.resolve(codebookFile), bytes: (await fs.promises.stat(codebookFile)).size, ...ref };
}

/** Reads a shard's manifest (no hashing). */
export async function readShard(shardFile: string): Promise<ShardInfo> {
  checkPath(shardFile, 'shardFile');
  const m = await readManifest(shardFile, 'quiver-shard');
  if (typeof m.shardId !== 'number' || typeof m.count !== 'number' || typeof m.sha256 !== 'string' || typeof m.bytes !== 'number') {
    throw manifestError(shardFile, 'lacks shardId, count, sha256 or bytes');
  }
  const codebook = codebookRef((m.codebook ?? {}) as Record<string, unknown>, shardFile);
  return {
    format: 'quiver-shard',
    version: MANIFEST_VERSION,
    path: path.resolve(shardFile),
    sha256: m.sha256,
    bytes: m.bytes,
    shardId: m.shardId,
    count: m.count,
    codebook,
  };
}

/**
 * Encodes one slice of the collection with the codebook: `vectors` (n × dim) with their `ids` (n, unique across
 * the whole collection) become shard `shardId` in `outFile` (written atomically), plus its manifest. The bytes
 * depend only on the codebook, the vectors, the ids and the categories: not on the machine, SIMD level or threads.
 */
export async function encodeShard(
  codebookFile: string,
  vectors: Float32Array,
  ids: BigInt64Array,
  shardId: number,
  outFile: string,
  options?: EncodeShardOptions,
): Promise<ShardInfo> {
  checkPath(codebookFile, 'codebookFile');
  if (!(vectors instanceof Float32Array)) throw new TypeError(`vectors: expected a Float32Array, got ${describe(vectors)}`);
  if (!(ids instanceof BigInt64Array)) throw new TypeError(`ids: expected a BigInt64Array (one id per vector), got ${describe(ids)}`);
  expectInteger(shardId, 'shardId', 0, MAX_SHARD_ID);
  checkPath(outFile, 'outFile');
  const o = expectOptions<EncodeShardOptions>(options, 'options', ['threads', 'categories', 'codebookSha256']);
  const threads = optionalInteger(o.threads, 'options.threads', 0, 1024);
  const expected = o.codebookSha256 === undefined ? undefined : checkSha(o.codebookSha256, 'options.codebookSha256');
  if (path.resolve(outFile) === path.resolve(codebookFile)) throw new RangeError('outFile: must not be the codebook file');

  // Hash the very bytes that are loaded, so the manifest names exactly the codebook that encoded the shard.
  const bytes = await fs.promises.readFile(codebookFile);
  const hash = sha256(bytes);
  if (expected !== undefined && hash !== expected) {
    throw new RangeError(`codebookFile: its SHA-256 is ${hash}, expected ${expected} (options.codebookSha256)`);
  }
  const index = Index.fromBuffer(bytes);
  try {
    if (index.size !== 0) {
      throw new RangeError(`codebookFile: holds ${index.size} vectors; a codebook is a trained, empty index (see trainCodebook)`);
    }
    // An empty shard is allowed (more shards than vectors): it is the codebook itself, and merges as nothing.
    const n = vectors.length === 0 ? 0 : expectVectors(vectors, 'vectors', index.dim);
    if (ids.length !== n) throw new RangeError(`ids: expected ${n} ids (one per vector), got ${ids.length}`);
    if (n > 0) await index.add(vectors, ids, { threads, ...(o.categories !== undefined ? { categories: o.categories } : {}) });
    await index.save(outFile);
    const info: ShardInfo = {
      format: 'quiver-shard',
      version: MANIFEST_VERSION,
      path: path.resolve(outFile),
      sha256: await sha256File(outFile),
      bytes: (await fs.promises.stat(outFile)).size,
      shardId,
      count: n,
      codebook: { sha256: hash, spec: index.spec, dim: index.dim, metric: index.metric },
    };
    await writeManifest(info);
    return info;
  } finally {
    index.close();
  }
}

/**
 * Merges shard files into one index file at `outFile` (atomic), in ascending shardId order whatever the order of
 * `files`, and writes its manifest. Refuses shards of different codebooks (by the SHA-256 in their manifests, and
 * natively by their trained state), repeated shardIds, ids present in two shards, and (with `verify`, the
 * default) shard files whose bytes no longer match their manifest. Search the result in place with
 * `Index.load(outFile, { mmap: true })`.
 */
export async function mergeShards(files: readonly string[], outFile: string, options?: MergeShardsOptions): Promise<MergedInfo> {
  if (!Array.isArray(files)) throw new TypeError(`files: expected an array of shard file paths, got ${describe(files)}`);
  if (files.length === 0) throw new RangeError('files: expected at least one shard file');
  files.forEach((f, i) => checkPath(f, `files[${i}]`));
  checkPath(outFile, 'outFile');
  const o = expectOptions<MergeShardsOptions>(options, 'options', ['codebook', 'verify']);
  if (o.verify !== undefined && typeof o.verify !== 'boolean') {
    throw new TypeError(`options.verify: expected a boolean, got ${describe(o.verify)}`);
  }
  const out = path.resolve(outFile);
  if (files.some((f) => path.resolve(f) === out)) throw new RangeError('outFile: must not be one of the shard files');

  const shards = await Promise.all(files.map((f) => readShard(f)));
  const want = o.codebook !== undefined ? (await readCodebook(checkPath(o.codebook, 'options.codebook'))).sha256 : shards[0].codebook.sha256;
  shards.forEach((s, i) => {
    if (s.codebook.sha256 !== want) {
      throw new RangeError(
        `files[${i}]: shard ${s.shardId} was encoded with codebook ${s.codebook.sha256}, expected ${want}` +
          (o.codebook !== undefined ? ` (${o.codebook})` : ` (that of files[0])`),
      );
    }
  });
  shards.sort((a, b) => a.shardId - b.shardId);
  for (let i = 1; i < shards.length; i++) {
    if (shards[i].shardId === shards[i - 1].shardId) {
      throw new RangeError(`files: shard ${shards[i].shardId} is listed twice (${shards[i - 1].path} and ${shards[i].path})`);
    }
  }
  if (o.verify !== false) {
    await Promise.all(
      shards.map(async (s) => {
        const actual = await sha256File(s.path);
        if (actual !== s.sha256) throw manifestError(s.path, `the shard file's SHA-256 is ${actual}, the manifest says ${s.sha256}: the file changed`);
      }),
    );
  }
  await native().mergeIndexFiles(
    shards.map((s) => s.path),
    out,
  );
  const info: MergedInfo = {
    format: 'quiver-merged',
    version: MANIFEST_VERSION,
    path: out,
    sha256: await sha256File(out),
    bytes: (await fs.promises.stat(out)).size,
    count: shards.reduce((sum, s) => sum + s.count, 0),
    shards: shards.map((s) => ({ shardId: s.shardId, path: s.path, sha256: s.sha256, count: s.count })),
    codebook: shards[0].codebook,
  };
  await writeManifest(info);
  return info;
}

/** A contiguous slice of a vector file: rows offset … offset+count−1, with ids idOffset + row. */
export interface VectorSlice {
  /** Dataset file read with readVectors (.fvecs, .bvecs, .fbin, .u8bin, .i8bin). */
  file: string;
  format?: VectorFormat;
  offset: number;
  count: number;
  /** The id of row r of the file is idOffset + r (default 0). */
  idOffset?: number;
}

/** Vectors in a dataset file (from its header or size; nothing else is read). */
export async function countVectors(file: string, format?: VectorFormat): Promise<{ n: number; dim: number }> {
  checkPath(file, 'file');
  const fmt = format ?? formatOf(file);
  if (fmt === undefined) throw new RangeError(`file: cannot tell the format of ${JSON.stringify(file)} from its extension; pass a format`);
  const handle = await fs.promises.open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    const header = Buffer.alloc(8);
    await handle.read(header, 0, 8, 0);
    const bytesPerValue = fmt === 'bvecs' || fmt === 'u8bin' || fmt === 'i8bin' ? 1 : 4;
    if (fmt.endsWith('vecs')) {
      const dim = size >= 4 ? header.readInt32LE(0) : 0;
      if (dim < 1 || size % (4 + dim * bytesPerValue) !== 0) throw new RangeError(`file: ${file} is not a valid .${fmt} file`);
      return { n: size / (4 + dim * bytesPerValue), dim };
    }
    const n = header.readInt32LE(0), dim = header.readInt32LE(4);
    if (size < 8 || n < 0 || dim < 1 || 8 + n * dim * bytesPerValue > size) throw new RangeError(`file: ${file} is not a valid .${fmt} file`);
    return { n, dim };
  } finally {
    await handle.close();
  }
}

/** Contiguous slices of n rows for `shards` shards, as even as possible: shard i gets rows offset … offset+count−1. */
export function planShards(n: number, shards: number): { shardId: number; offset: number; count: number }[] {
  expectInteger(n, 'n', 0, Number.MAX_SAFE_INTEGER);
  expectInteger(shards, 'shards', 1, 1 << 16);
  const base = Math.floor(n / shards), extra = n % shards;
  const out = [];
  for (let i = 0, offset = 0; i < shards; i++) {
    const count = base + (i < extra ? 1 : 0);
    out.push({ shardId: i, offset, count });
    offset += count;
  }
  return out;
}

function checkSlice(value: unknown, name: string): Required<Omit<VectorSlice, 'format'>> & { format?: VectorFormat } {
  if (value === undefined) throw new TypeError(`${name}: expected { file, offset, count }, got undefined`);
  const s = expectOptions<VectorSlice>(value, name, ['file', 'format', 'offset', 'count', 'idOffset']);
  return {
    file: checkPath(s.file, `${name}.file`),
    format: s.format,
    offset: expectInteger(s.offset, `${name}.offset`, 0, Number.MAX_SAFE_INTEGER),
    count: expectInteger(s.count, `${name}.count`, 0, Number.MAX_SAFE_INTEGER),
    idOffset: optionalInteger(s.idOffset, `${name}.idOffset`, 0, Number.MAX_SAFE_INTEGER) ?? 0,
  };
}

/** encodeShard over a slice of a dataset file, ids idOffset + row: what a build worker runs for one shard. */
export async function encodeShardFromFile(
  codebookFile: string,
  slice: VectorSlice,
  shardId: number,
  outFile: string,
  options?: EncodeShardOptions,
): Promise<ShardInfo> {
  const s = checkSlice(slice, 'slice');
  const { data, n } = await readVectors(s.file, { offset: s.offset, count: s.count, ...(s.format ? { format: s.format } : {}) });
  if (n !== s.count) throw new RangeError(`slice: rows ${s.offset} … ${s.offset + s.count - 1} requested, ${s.file} has only ${s.offset + n}`);
  if (!(data instanceof Float32Array)) throw new RangeError(`slice.file: ${s.file} holds integers, not vectors`);
  const ids = new BigInt64Array(n);
  for (let i = 0; i < n; i++) ids[i] = BigInt(s.idOffset + s.offset + i);
  return encodeShard(codebookFile, data, ids, shardId, outFile, options);
}

export interface LocalBuildOptions {
  codebookFile: string;
  vectorsFile: string;
  format?: VectorFormat;
  /** Shards to cut the file into (default 1). The merged file is the same for any number. */
  shards?: number;
  /** Folder for the shard files. */
  workDir: string;
  outFile: string;
  idOffset?: number;
  threads?: number;
}

/** The one-machine build: every shard encoded here, in turn, then merged. The reference for distributed builds. */
export async function buildLocal(options: LocalBuildOptions): Promise<MergedInfo> {
  if (options === undefined) throw new TypeError('options: expected { codebookFile, vectorsFile, workDir, outFile }, got undefined');
  const o = expectOptions<LocalBuildOptions>(options, 'options', ['codebookFile', 'vectorsFile', 'format', 'shards', 'workDir', 'outFile', 'idOffset', 'threads']);
  const codebook = await readCodebook(checkPath(o.codebookFile, 'options.codebookFile'));
  const vectorsFile = checkPath(o.vectorsFile, 'options.vectorsFile');
  const workDir = checkPath(o.workDir, 'options.workDir');
  const outFile = checkPath(o.outFile, 'options.outFile');
  const shards = optionalInteger(o.shards, 'options.shards', 1, 1 << 16) ?? 1;
  const { n } = await countVectors(vectorsFile, o.format);
  await fs.promises.mkdir(workDir, { recursive: true });
  const files: string[] = [];
  for (const p of planShards(n, shards)) {
    const file = path.join(workDir, shardFileName(p.shardId));
    const slice = { file: vectorsFile, offset: p.offset, count: p.count, ...(o.format ? { format: o.format } : {}), ...(o.idOffset !== undefined ? { idOffset: o.idOffset } : {}) };
    await encodeShardFromFile(codebook.path, slice, p.shardId, file, { codebookSha256: codebook.sha256, ...(o.threads !== undefined ? { threads: o.threads } : {}) });
    files.push(file);
  }
  return mergeShards(files, outFile, { codebook: codebook.path });
}

/** The file name of shard i inside a build's work folder. */
export function shardFileName(shardId: number): string {
  return `shard-${String(shardId).padStart(5, '0')}.qvr`;
}
