// Distributed search on NATS (npm "nats", an optional peer dependency, loaded on first use).
//
// Each shard (a file from encodeShard or mergeShards, all of one codebook) is served by one or more processes
// calling serveShard(). A shard answers requests on the subject `<subject>.<shardId>` in the queue group of the
// same name: NATS hands each request to one member, so replicas share the load, and when one dies the server
// drops its subscription and the others get the requests. ShardedSearchClient scatters a batch of queries to
// every shard, gathers the answers under a deadline (retrying a shard whose request timed out, for a replica
// that died mid-request), and merges the per-shard top-k. All shards share one codebook, so their distances are
// the same numbers one index holding everything would compute, and the merge (by distance, then shardId, then
// rank within the shard, as one index breaks ties by row) gives that index's results exactly — except with
// `refine` > 1, where each shard re-ranks its own k·refine shortlist, a superset of its part of the global one.
// Filters (`filter`, an allow-list of ids, and `categories`) travel with every request and each shard applies
// them before its own top-k, so the merged results equal that index's filtered search too; with `perCategory`,
// each shard answers k per category and the client merges every (query, category) group the same way.
// A shard that does not answer in time is left out and listed in `missingShards` (`partial: true`): a dead shard
// makes results partial, not an error. A shard that answers with an error (bad request) is an error.
//
// Messages are binary (lib/scaleout/wire.ts); batches larger than the server's max_payload are split.
import { loadOptional } from '../pipeline/optional';
import { checkCategories, checkResultGroups, Index, toIdArray, type Metric } from '../quiver';
import { describe, expectInteger, expectOptions, expectString, expectVectors, optionalInteger } from '../validate';
import { HEADER_BYTES, decodeRequest, decodeResponse, encodeErrorResponse, encodeRequest, encodeResponse, requestOverhead, type SearchResponse } from './wire';

type NatsModule = typeof import('nats');
type NatsConnection = import('nats').NatsConnection;
type NatsMsg = import('nats').Msg;

const DEFAULT_SUBJECT = 'quiver.search';
const MAX_K = 1 << 16;
const MAX_SHARD_ID = 0x7fffffff;

function loadNats(purpose: string): NatsModule {
  return loadOptional<NatsModule>('nats', purpose);
}

export interface ShardServerOptions {
  /** NATS server URL(s), e.g. 'nats://127.0.0.1:4222'. */
  servers: string | readonly string[];
  shardId: number;
  /** The shard: an open Index (not closed by the server), or a file path, loaded with { mmap: true } and closed on close(). */
  index: Index | string;
  /** Subject prefix (default 'quiver.search'): the shard answers on `<subject>.<shardId>`. */
  subject?: string;
  /** nprobe for requests that leave it at 0 (default 1). */
  nprobe?: number;
  /** Threads per search (default: all). */
  threads?: number;
  /** Connection name shown by the NATS server (default 'quiver-shard-<id>'). */
  name?: string;
}

export interface ShardServer {
  readonly shardId: number;
  /** The subject, which is also the queue group's name. */
  readonly subject: string;
  /** Requests answered so far (errors included). */
  readonly served: number;
  /** Stops taking requests, finishes those running, closes the connection (and the index it loaded). */
  close(): Promise<void>;
}

export interface SearchClientOptions {
  servers: string | readonly string[];
  /** The shards to query: their number (ids 0 … n−1) or their ids. */
  shards: number | readonly number[];
  /** Vector dimension of the shards. */
  dim: number;
  subject?: string;
  /** Time to gather the answers of one search, in ms (default 1000). */
  deadlineMs?: number;
  /** Tries per shard within the deadline (default 2): the deadline is shared among them. */
  attempts?: number;
  /** Connection name shown by the NATS server. */
  name?: string;
}

export interface ShardedSearchOptions {
  nprobe?: number;
  refine?: number;
  /** Allow-list: only these ids can be returned (as Index.search's filter; unknown ids are ignored). */
  filter?: BigInt64Array | readonly bigint[];
  /** Only vectors labelled with one of these categories can be returned (as Index.search's categories). */
  categories?: Int32Array | readonly number[];
  /**
   * As Index.search's perCategory: true for k results per category of `categories` (non-empty), a number for
   * that many per category. Results are then nq × categories.length × that many (query-major, then category
   * in the order given), and `groups` lists the categories.
   */
  perCategory?: boolean | number;
  /** Overrides the client's deadlineMs for this call. */
  deadlineMs?: number;
}

export interface ShardedSearchResult {
  /** nq × k ids (per category: nq × groups × k), best first; -1n where fewer than k were found. */
  ids: BigInt64Array;
  /** Distances in the same layout (ascending for 'l2', descending for 'ip' and 'cosine'); ±Infinity as padding. */
  distances: Float32Array;
  /** Results per query, or per (query, category) group with perCategory. */
  k: number;
  /** With perCategory: the category of each group of results, in order. */
  groups?: Int32Array;
  /** The shards' metric (undefined when no shard answered). */
  metric: Metric | undefined;
  /** True when some shard did not answer in time: results cover the other shards only. */
  partial: boolean;
  /** The shards left out, ascending. */
  missingShards: number[];
}

function checkServers(value: unknown, name: string): string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
  if (!list || list.length === 0) throw new TypeError(`${name}: expected a server URL or a non-empty array of them, got ${describe(value)}`);
  list.forEach((s, i) => {
    if (typeof s !== 'string' || s.length === 0) throw new TypeError(`${name}[${i}]: expected a server URL string, got ${describe(s)}`);
  });
  return list as string[];
}

function checkSubject(value: unknown, name: string): string {
  if (value === undefined) return DEFAULT_SUBJECT;
  const s = expectString(value, name);
  // Tokens separated by dots, no wildcards or whitespace: the shard id is appended as one more token.
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(s)) {
    throw new RangeError(`${name}: expected dot-separated tokens of letters, digits, '_' or '-', got ${describe(s)}`);
  }
  return s;
}

function natsCode(error: unknown): string | undefined {
  return (error as { code?: string } | undefined)?.code;
}

/** Serves one shard on `<subject>.<shardId>` in the queue group of the same name; resolves once subscribed. */
export async function serveShard(options: ShardServerOptions): Promise<ShardServer> {
  if (options === undefined) throw new TypeError('options: expected { servers, shardId, index }, got undefined');
  const o = expectOptions<ShardServerOptions>(options, 'options', ['servers', 'shardId', 'index', 'subject', 'nprobe', 'threads', 'name']);
  const servers = checkServers(o.servers, 'options.servers');
  const shardId = expectInteger(o.shardId, 'options.shardId', 0, MAX_SHARD_ID);
  const subject = `${checkSubject(o.subject, 'options.subject')}.${shardId}`;
  const nprobe = optionalInteger(o.nprobe, 'options.nprobe', 1, 1 << 20) ?? 1;
  const threads = optionalInteger(o.threads, 'options.threads', 0, 1024);
  const name = o.name === undefined ? `quiver-shard-${shardId}` : expectString(o.name, 'options.name');
  if (!(o.index instanceof Index) && typeof o.index !== 'string') {
    throw new TypeError(`options.index: expected an Index or an index file path, got ${describe(o.index)}`);
  }
  const nats = loadNats('serveShard (quiver distributed search)');
  const owned = typeof o.index === 'string';
  const index = typeof o.index === 'string' ? await Index.load(o.index, { mmap: true }) : o.index;
  let nc: NatsConnection;
  try {
    nc = await nats.connect({ servers, name, maxReconnectAttempts: -1 });
  } catch (error) {
    if (owned) index.close();
    throw error;
  }

  let served = 0;
  const running = new Set<Promise<void>>();
  const answer = async (msg: NatsMsg): Promise<void> => {
    let reply: Uint8Array;
    try {
      const req = decodeRequest(msg.data);
      if (req.dim !== index.dim) throw new RangeError(`queries: dimension ${req.dim}, but shard ${shardId} holds dimension ${index.dim}`);
      const r = await index.search(req.queries, req.k, {
        nprobe: req.nprobe || nprobe,
        ...(req.refine > 1 ? { refine: req.refine } : {}),
        ...(req.filter !== undefined ? { filter: req.filter } : {}),
        ...(req.categories !== undefined ? { categories: req.categories } : {}),
        ...(req.perCategory ? { perCategory: true } : {}),
        ...(threads !== undefined ? { threads } : {}),
      });
      // Per category, each query's results are ncategories groups of k: one response row per group.
      const rows = req.nq * (req.perCategory ? req.categories!.length : 1);
      reply = encodeResponse(shardId, index.dim, index.metric, rows, req.k, r.ids, r.distances);
    } catch (error) {
      reply = encodeErrorResponse(shardId, `shard ${shardId}: ${(error as Error)?.message ?? String(error)}`);
    }
    served++;
    if (msg.reply) msg.respond(reply);
  };
  const sub = nc.subscribe(subject, {
    queue: subject,
    callback: (err, msg) => {
      if (err) return;
      const job = answer(msg).finally(() => running.delete(job));
      running.add(job);
    },
  });
  // Round trip to the server: the subscription is registered before we say we are serving.
  await nc.flush();
  let closing: Promise<void> | undefined;
  return {
    shardId,
    subject,
    get served() {
      return served;
    },
    close() {
      closing ??= (async () => {
        await sub.drain();
        await Promise.all(running);
        await nc.close();
        if (owned) index.close();
      })();
      return closing;
    },
  };
}

interface Chunk {
  first: number;
  nq: number;
  payload: Uint8Array;
}

/** Scatters searches over shard servers and merges their top-k; see the module comment. */
export class ShardedSearchClient {
  #nats: NatsModule;
  #nc: NatsConnection;
  #shards: number[];
  #dim: number;
  #subject: string;
  #deadlineMs: number;
  #attempts: number;

  private constructor(nats: NatsModule, nc: NatsConnection, shards: number[], dim: number, subject: string, deadlineMs: number, attempts: number) {
    this.#nats = nats;
    this.#nc = nc;
    this.#shards = shards;
    this.#dim = dim;
    this.#subject = subject;
    this.#deadlineMs = deadlineMs;
    this.#attempts = attempts;
  }

  static async connect(options: SearchClientOptions): Promise<ShardedSearchClient> {
    if (options === undefined) throw new TypeError('options: expected { servers, shards, dim }, got undefined');
    const o = expectOptions<SearchClientOptions>(options, 'options', ['servers', 'shards', 'dim', 'subject', 'deadlineMs', 'attempts', 'name']);
    const servers = checkServers(o.servers, 'options.servers');
    let shards: number[];
    if (typeof o.shards === 'number') {
      const n = expectInteger(o.shards, 'options.shards', 1, 1 << 16);
      shards = Array.from({ length: n }, (_, i) => i);
    } else if (Array.isArray(o.shards) && o.shards.length > 0) {
      shards = o.shards.map((s, i) => expectInteger(s, `options.shards[${i}]`, 0, MAX_SHARD_ID));
      shards.sort((a, b) => a - b);
      for (let i = 1; i < shards.length; i++) if (shards[i] === shards[i - 1]) throw new RangeError(`options.shards: shard ${shards[i]} is listed twice`);
    } else {
      throw new TypeError(`options.shards: expected a shard count or a non-empty array of shard ids, got ${describe(o.shards)}`);
    }
    const dim = expectInteger(o.dim, 'options.dim', 1, 65536);
    const subject = checkSubject(o.subject, 'options.subject');
    const deadlineMs = optionalInteger(o.deadlineMs, 'options.deadlineMs', 1, 3_600_000) ?? 1000;
    const attempts = optionalInteger(o.attempts, 'options.attempts', 1, 10) ?? 2;
    const name = o.name === undefined ? 'quiver-search-client' : expectString(o.name, 'options.name');
    const nats = loadNats('ShardedSearchClient (quiver distributed search)');
    const nc = await nats.connect({ servers, name, maxReconnectAttempts: -1 });
    return new ShardedSearchClient(nats, nc, shards, dim, subject, deadlineMs, attempts);
  }

  get shards(): readonly number[] {
    return this.#shards;
  }

  /** The k best of each query (nq × dim floats) over every shard that answers before the deadline. */
  async search(queries: Float32Array, k: number, options?: ShardedSearchOptions): Promise<ShardedSearchResult> {
    const nq = expectVectors(queries, 'queries', this.#dim);
    expectInteger(k, 'k', 1, MAX_K);
    const o = expectOptions<ShardedSearchOptions>(options, 'options', ['nprobe', 'refine', 'filter', 'categories', 'perCategory', 'deadlineMs']);
    const nprobe = optionalInteger(o.nprobe, 'options.nprobe', 1, 1 << 20) ?? 0;
    const refine = optionalInteger(o.refine, 'options.refine', 1, 1 << 16) ?? 1;
    const filter = o.filter === undefined ? undefined : toIdArray(o.filter, 'options.filter');
    const categories = o.categories === undefined ? undefined : checkCategories(o.categories, 'options.categories');
    const { perGroup, groups: perCategoryGroups } = checkResultGroups(nq, k, o.perCategory, categories, MAX_K);
    const perCategory = perCategoryGroups !== undefined;
    k = perGroup;
    // Result rows per query: one, or one per category.
    const groups = perCategory ? perCategoryGroups.length : 1;
    const deadline = Date.now() + (optionalInteger(o.deadlineMs, 'options.deadlineMs', 1, 3_600_000) ?? this.#deadlineMs);

    // Split the batch so that requests and responses fit the server's max_payload (leaving room for headers).
    // Every chunk repeats the filter and the categories.
    const maxPayload = (this.#nc.info?.max_payload ?? 1 << 20) - 1024;
    if (HEADER_BYTES + groups * k * 12 > maxPayload) {
      throw new RangeError(`k: ${groups * k} results per query do not fit the NATS server's max_payload of ${maxPayload + 1024} bytes`);
    }
    const overhead = requestOverhead(filter?.length, categories?.length);
    if (overhead + this.#dim * 4 > maxPayload) {
      const what = filter && filter.length * 8 >= (categories?.length ?? 0) * 4 ? `options.filter: ${filter.length} ids` : `options.categories: ${categories?.length} categories`;
      throw new RangeError(`${what} do not fit the NATS server's max_payload of ${maxPayload + 1024} bytes with a query; filter by fewer ids or raise max_payload`);
    }
    const perChunk = Math.max(1, Math.min(Math.floor((maxPayload - overhead) / (this.#dim * 4)), Math.floor((maxPayload - HEADER_BYTES) / (groups * k * 12))));
    const chunks: Chunk[] = [];
    for (let first = 0; first < nq; first += perChunk) {
      const count = Math.min(perChunk, nq - first);
      const slice = queries.subarray(first * this.#dim, (first + count) * this.#dim);
      const payload = encodeRequest({
        dim: this.#dim, nq: count, k, nprobe, refine, queries: slice,
        ...(filter ? { filter } : {}), ...(categories ? { categories } : {}), ...(perCategory ? { perCategory: true } : {}),
      });
      chunks.push({ first, nq: count, payload });
    }

    const answers = await Promise.all(this.#shards.map((shard) => Promise.all(chunks.map((c) => this.#ask(shard, c.payload, deadline)))));
    const missingShards: number[] = [];
    let metric: Metric | undefined;
    const present: { order: number; chunks: Extract<SearchResponse, { ok: true }>[] }[] = [];
    this.#shards.forEach((shard, order) => {
      const got = answers[order];
      if (got.some((a) => a === undefined)) {
        missingShards.push(shard); // one chunk missing leaves the whole shard out, so every query covers the same shards
        return;
      }
      const ok = got as SearchResponse[];
      for (let c = 0; c < ok.length; c++) {
        const a = ok[c];
        if (!a.ok) {
          const e = new Error(`search: ${a.message}`);
          (e as NodeJS.ErrnoException).code = 'ERR_QUIVER_SHARD';
          throw e;
        }
        if (a.shardId !== shard || a.k !== k || a.dim !== this.#dim) throw new Error(`search: shard ${shard} answered for shard ${a.shardId}, k ${a.k}, dim ${a.dim}`);
        if (a.nq !== chunks[c].nq * groups) {
          throw new Error(`search: shard ${shard} answered ${a.nq} result rows for ${chunks[c].nq} queries × ${groups} groups`);
        }
        if (metric !== undefined && a.metric !== metric) throw new Error(`search: shard ${shard} uses metric ${a.metric}, others ${metric}: not one codebook`);
        metric = a.metric;
      }
      present.push({ order, chunks: ok as Extract<SearchResponse, { ok: true }>[] });
    });
    // The merge works on result rows: a chunk of c queries holds c × groups rows, starting at row first × groups.
    const rowChunks = groups === 1 ? chunks : chunks.map((c) => ({ ...c, first: c.first * groups, nq: c.nq * groups }));
    const merged = this.#merge(nq * groups, k, rowChunks, present, metric);
    return {
      ids: merged.ids, distances: merged.distances, k, ...(perCategoryGroups ? { groups: perCategoryGroups } : {}),
      metric, partial: missingShards.length > 0, missingShards,
    };
  }

  /** One shard's answer to one chunk, or undefined when no replica answered in time. */
  async #ask(shard: number, payload: Uint8Array, deadline: number): Promise<SearchResponse | undefined> {
    const subject = `${this.#subject}.${shard}`;
    for (let attempt = 0; attempt < this.#attempts; attempt++) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      // Share what is left among the remaining tries: a request lost with a dying replica leaves time to ask
      // the one that takes over.
      const timeout = Math.max(1, Math.floor(remaining / (this.#attempts - attempt)));
      try {
        const msg = await this.#nc.request(subject, payload, { timeout });
        return decodeResponse(msg.data);
      } catch (error) {
        const code = natsCode(error);
        if (code === this.#nats.ErrorCode.Timeout) continue;
        if (code === this.#nats.ErrorCode.NoResponders) {
          // No member in the queue group right now; a replica may be (re)subscribing: pause briefly, then retry.
          await new Promise((r) => setTimeout(r, Math.min(50, Math.max(0, deadline - Date.now()))));
          continue;
        }
        throw error;
      }
    }
    return undefined;
  }

  #merge(nq: number, k: number, chunks: Chunk[], present: { order: number; chunks: Extract<SearchResponse, { ok: true }>[] }[], metric: Metric | undefined) {
    const ascending = metric === undefined || metric === 'l2';
    const ids = new BigInt64Array(nq * k).fill(-1n);
    const distances = new Float32Array(nq * k).fill(ascending ? Infinity : -Infinity);
    type Entry = { d: number; order: number; rank: number; id: bigint };
    // Better distance first; equal distances in shard order, then in the shard's own order: how one index
    // holding the shards' rows in shardId order breaks ties (by row).
    const better = (a: Entry, b: Entry) => (a.d !== b.d ? (ascending ? a.d - b.d : b.d - a.d) : a.order !== b.order ? a.order - b.order : a.rank - b.rank);
    chunks.forEach((chunk, c) => {
      for (let q = 0; q < chunk.nq; q++) {
        const entries: Entry[] = [];
        for (const shard of present) {
          const r = shard.chunks[c];
          for (let rank = 0; rank < k; rank++) {
            const id = r.ids[q * k + rank];
            if (id === -1n) break;
            entries.push({ d: r.distances[q * k + rank], order: shard.order, rank, id });
          }
        }
        entries.sort(better);
        const at = (chunk.first + q) * k;
        for (let i = 0; i < Math.min(k, entries.length); i++) {
          ids[at + i] = entries[i].id;
          distances[at + i] = entries[i].d;
        }
      }
    });
    return { ids, distances };
  }

  /** Closes the connection (waiting for requests in flight). */
  async close(): Promise<void> {
    if (!this.#nc.isClosed()) await this.#nc.drain();
  }
}
