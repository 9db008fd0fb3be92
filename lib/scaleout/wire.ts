// Binary messages of distributed search (lib/scaleout/nats.ts): raw little-endian numbers, no JSON for vectors,
// so a batch costs 4 bytes per query component and 12 bytes per result.
//
// Request, version 1 (no filter): 32-byte header then the queries:
//   0  u32 magic 'QVSQ' (0x51535651)     4  u16 version (1)     6  u16 reserved (0)
//   8  u32 dim     12 u32 nq     16 u32 k     20 u32 nprobe (0: the shard's default)     24 u32 refine (0: 1)
//   28 u32 reserved (0)
//   32 nq × dim float32 queries, row-major
// Request, version 2 (a filter and/or categories; written only then, so version-1 servers still serve the rest):
//   0..31 as version 1, except  4 u16 version (2)  and  6 u16 flags: bit 0 an allow-list filter is present,
//         bit 1 a category list is present, bit 2 per category: k results for each category of the (non-empty)
//         list, so the response holds nq × ncategories rows of k, query-major, categories in list order (other
//         bits 0; servers that predate bit 2 reject it). A present list may be empty: nothing passes it.
//   32 u32 nfilter (0 without bit 0)     36 u32 ncategories (0 without bit 1)
//   40 nfilter × int64 ids the results may hold (8-byte aligned), then ncategories × int32 categories
//      (each 0 … 2^31−1), then nq × dim float32 queries
// Response, 32-byte header then the results:
//   0  u32 magic 'QVSR' (0x52535651)     4  u16 version (1)     6  u16 status (0 ok, 1 error)
//   8  u32 shardId     12 u32 nq     16 u32 k     20 u8 metric (0 l2, 1 ip, 2 cosine)     21..23 reserved
//   24 u32 dim     28 u32 reserved
//   ok:    32 nq × k int64 ids (best first, -1 padding), then nq × k float32 distances
//   error: 32 UTF-8 message (the rest of the message)
// The header's 32 bytes keep the int64 and float32 arrays aligned when the message buffer is.
// Nothing decoded is trusted: the byte length must be exactly what the header's counts imply.
import type { Metric } from '../quiver';

export const WIRE_VERSION = 1;
/** The request version that carries filters (responses stay at WIRE_VERSION). */
export const FILTER_WIRE_VERSION = 2;
export const HEADER_BYTES = 32;
/** Header of a version-2 request: the version-1 header and the two list lengths. */
export const FILTER_HEADER_BYTES = 40;
const FLAG_FILTER = 1;
const FLAG_CATEGORIES = 2;
const FLAG_PER_CATEGORY = 4;
const REQUEST_MAGIC = 0x51535651; // 'QVSQ' little-endian
const RESPONSE_MAGIC = 0x52535651; // 'QVSR'
const METRICS: readonly Metric[] = ['l2', 'ip', 'cosine'];

export interface SearchRequest {
  dim: number;
  nq: number;
  k: number;
  nprobe: number;
  refine: number;
  queries: Float32Array;
  /** Allow-list of ids (absent: every id). */
  filter?: BigInt64Array;
  /** Categories the results may belong to (absent: any). */
  categories?: Int32Array;
  /** k results per category of `categories` (non-empty) instead of k per query. */
  perCategory?: boolean;
}

export type SearchResponse =
  | { ok: true; shardId: number; nq: number; k: number; dim: number; metric: Metric; ids: BigInt64Array; distances: Float32Array }
  | { ok: false; shardId: number; message: string };

export class WireError extends Error {
  readonly code = 'ERR_QUIVER_WIRE';
}

/** Bytes whose start is 8-byte aligned (a copy only when the transport handed us an unaligned view). */
function aligned(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset % 8 === 0 ? bytes : new Uint8Array(bytes);
}

export function requestBytes(dim: number, nq: number, nfilter?: number, ncategories?: number): number {
  if (nfilter === undefined && ncategories === undefined) return HEADER_BYTES + nq * dim * 4;
  return requestOverhead(nfilter, ncategories) + nq * dim * 4;
}

/** Bytes of a request besides its queries (what every chunk of a split batch repeats). */
export function requestOverhead(nfilter?: number, ncategories?: number): number {
  if (nfilter === undefined && ncategories === undefined) return HEADER_BYTES;
  return FILTER_HEADER_BYTES + (nfilter ?? 0) * 8 + (ncategories ?? 0) * 4;
}

export function responseBytes(nq: number, k: number): number {
  return HEADER_BYTES + nq * k * 12;
}

export function encodeRequest(r: SearchRequest): Uint8Array {
  const filtered = r.filter !== undefined || r.categories !== undefined;
  const nfilter = r.filter?.length, ncategories = r.categories?.length;
  const out = new Uint8Array(requestBytes(r.dim, r.nq, nfilter, ncategories));
  const view = new DataView(out.buffer);
  view.setUint32(0, REQUEST_MAGIC, true);
  view.setUint16(4, filtered ? FILTER_WIRE_VERSION : WIRE_VERSION, true);
  view.setUint32(8, r.dim, true);
  view.setUint32(12, r.nq, true);
  view.setUint32(16, r.k, true);
  view.setUint32(20, r.nprobe, true);
  view.setUint32(24, r.refine, true);
  let at = HEADER_BYTES;
  if (filtered) {
    view.setUint16(6, (r.filter ? FLAG_FILTER : 0) | (r.categories ? FLAG_CATEGORIES : 0) | (r.perCategory ? FLAG_PER_CATEGORY : 0), true);
    view.setUint32(32, nfilter ?? 0, true);
    view.setUint32(36, ncategories ?? 0, true);
    at = FILTER_HEADER_BYTES;
    if (r.filter) new BigInt64Array(out.buffer, at, r.filter.length).set(r.filter);
    at += (nfilter ?? 0) * 8;
    if (r.categories) new Int32Array(out.buffer, at, r.categories.length).set(r.categories);
    at += (ncategories ?? 0) * 4;
  }
  new Float32Array(out.buffer, at, r.nq * r.dim).set(r.queries.subarray(0, r.nq * r.dim));
  return out;
}

export function decodeRequest(input: Uint8Array): SearchRequest {
  const bytes = aligned(input);
  if (bytes.length < HEADER_BYTES) throw new WireError(`request: ${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(0, true) !== REQUEST_MAGIC) throw new WireError('request: bad magic (not a quiver search request)');
  const version = view.getUint16(4, true);
  if (version !== WIRE_VERSION && version !== FILTER_WIRE_VERSION) {
    throw new WireError(`request: version ${version} is not supported (expected ${WIRE_VERSION} or ${FILTER_WIRE_VERSION})`);
  }
  const dim = view.getUint32(8, true), nq = view.getUint32(12, true), k = view.getUint32(16, true);
  const nprobe = view.getUint32(20, true), refine = view.getUint32(24, true);
  if (dim < 1 || nq < 1 || k < 1) throw new WireError(`request: dim ${dim}, nq ${nq} and k ${k} must be at least 1`);
  if (version === WIRE_VERSION) {
    if (bytes.length !== requestBytes(dim, nq)) {
      throw new WireError(`request: ${bytes.length} bytes, expected ${requestBytes(dim, nq)} for ${nq} × ${dim} floats`);
    }
    const queries = new Float32Array(bytes.buffer, bytes.byteOffset + HEADER_BYTES, nq * dim);
    return { dim, nq, k, nprobe, refine, queries };
  }
  if (bytes.length < FILTER_HEADER_BYTES) {
    throw new WireError(`request: ${bytes.length} bytes is shorter than the ${FILTER_HEADER_BYTES}-byte version-${version} header`);
  }
  const flags = view.getUint16(6, true);
  if (flags & ~(FLAG_FILTER | FLAG_CATEGORIES | FLAG_PER_CATEGORY) || flags === 0) throw new WireError(`request: flags 0x${flags.toString(16)} are not valid`);
  const nfilter = view.getUint32(32, true), ncategories = view.getUint32(36, true);
  if (!(flags & FLAG_FILTER) && nfilter !== 0) throw new WireError(`request: ${nfilter} filter ids without the filter flag`);
  if (!(flags & FLAG_CATEGORIES) && ncategories !== 0) throw new WireError(`request: ${ncategories} categories without the categories flag`);
  if (flags & FLAG_PER_CATEGORY && (!(flags & FLAG_CATEGORIES) || ncategories === 0)) {
    throw new WireError('request: per-category results need a non-empty category list');
  }
  // Counts are u32, so these sums stay far below 2^53: exact in doubles.
  const expected = requestBytes(dim, nq, nfilter, ncategories);
  if (bytes.length !== expected) {
    throw new WireError(`request: ${bytes.length} bytes, expected ${expected} for ${nfilter} filter ids, ${ncategories} categories and ${nq} × ${dim} floats`);
  }
  let at = bytes.byteOffset + FILTER_HEADER_BYTES;
  const request: SearchRequest = { dim, nq, k, nprobe, refine, queries: new Float32Array(0) };
  if (flags & FLAG_FILTER) request.filter = new BigInt64Array(bytes.buffer, at, nfilter);
  at += nfilter * 8;
  if (flags & FLAG_CATEGORIES) {
    const categories = new Int32Array(bytes.buffer, at, ncategories);
    const bad = categories.findIndex((c) => c < 0);
    if (bad >= 0) throw new WireError(`request: category ${categories[bad]} at ${bad} is negative`);
    request.categories = categories;
    if (flags & FLAG_PER_CATEGORY) request.perCategory = true;
  }
  at += ncategories * 4;
  request.queries = new Float32Array(bytes.buffer, at, nq * dim);
  return request;
}

function responseHeader(size: number, status: number, shardId: number): { out: Uint8Array; view: DataView } {
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, RESPONSE_MAGIC, true);
  view.setUint16(4, WIRE_VERSION, true);
  view.setUint16(6, status, true);
  view.setUint32(8, shardId, true);
  return { out, view };
}

export function encodeResponse(shardId: number, dim: number, metric: Metric, nq: number, k: number, ids: BigInt64Array, distances: Float32Array): Uint8Array {
  const { out, view } = responseHeader(responseBytes(nq, k), 0, shardId);
  view.setUint32(12, nq, true);
  view.setUint32(16, k, true);
  view.setUint8(20, METRICS.indexOf(metric));
  view.setUint32(24, dim, true);
  new BigInt64Array(out.buffer, HEADER_BYTES, nq * k).set(ids);
  new Float32Array(out.buffer, HEADER_BYTES + nq * k * 8, nq * k).set(distances);
  return out;
}

export function encodeErrorResponse(shardId: number, message: string): Uint8Array {
  const text = new TextEncoder().encode(message);
  const { out } = responseHeader(HEADER_BYTES + text.length, 1, shardId);
  out.set(text, HEADER_BYTES);
  return out;
}

export function decodeResponse(input: Uint8Array): SearchResponse {
  const bytes = aligned(input);
  if (bytes.length < HEADER_BYTES) throw new WireError(`response: ${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(0, true) !== RESPONSE_MAGIC) throw new WireError('response: bad magic (not a quiver search response)');
  const version = view.getUint16(4, true);
  if (version !== WIRE_VERSION) throw new WireError(`response: version ${version} is not supported (expected ${WIRE_VERSION})`);
  const status = view.getUint16(6, true), shardId = view.getUint32(8, true);
  if (status === 1) return { ok: false, shardId, message: new TextDecoder().decode(bytes.subarray(HEADER_BYTES)) };
  if (status !== 0) throw new WireError(`response: unknown status ${status}`);
  const nq = view.getUint32(12, true), k = view.getUint32(16, true), metric = METRICS[view.getUint8(20)], dim = view.getUint32(24, true);
  if (metric === undefined) throw new WireError(`response: unknown metric code ${view.getUint8(20)}`);
  if (bytes.length !== responseBytes(nq, k)) throw new WireError(`response: ${bytes.length} bytes, expected ${responseBytes(nq, k)} for ${nq} × ${k} results`);
  // Copies, so the results do not pin the transport's buffer.
  const ids = new BigInt64Array(bytes.buffer.slice(bytes.byteOffset + HEADER_BYTES, bytes.byteOffset + HEADER_BYTES + nq * k * 8));
  const at = bytes.byteOffset + HEADER_BYTES + nq * k * 8;
  const distances = new Float32Array(bytes.buffer.slice(at, at + nq * k * 4));
  return { ok: true, shardId, nq, k, dim, metric, ids, distances };
}
