// Distributed build on BullMQ (npm "bullmq", an optional peer dependency loaded on first use; Redis ≥ 6.2).
//
// buildDistributed() adds one BullMQ flow: a parent job `merge` whose children are `encode` jobs, one per shard.
// Each encode job reads its slice of the vector file, runs encodeShard (lib/scaleout/files.ts) and returns the
// shard's manifest; once every child has completed, BullMQ releases the parent, whose job collects the children's
// results and runs mergeShards. Workers (startBuildWorker, on any number of machines) run both kinds of job.
// Job data holds only paths and numbers: the client, the workers and the output share one file system.
//
// Failures: a job that throws is retried (`attempts`, with a back-off); a worker that dies mid-job stops renewing
// its lock, and after `lockDurationMs` another worker's stalled-job check (every `stalledIntervalMs`) puts the
// job back in the queue. Every step writes its file atomically and depends only on its inputs, so a retried job
// writes the same bytes, and the final file is byte-identical to buildLocal() with the same codebook and file.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { VectorFormat } from '../io';
import { loadOptional } from '../pipeline/optional';
import { describe, expectInteger, expectOptions, expectString, optionalInteger } from '../validate';
import { countVectors, encodeShardFromFile, mergeShards, planShards, readCodebook, shardFileName, type MergedInfo, type ShardInfo } from './files';

type BullMQ = typeof import('bullmq');
type BullJob = import('bullmq').Job;

/** Where Redis is (passed to ioredis). */
export interface RedisConnection {
  host?: string;
  port?: number;
  username?: string;
  password?: string;
  db?: number;
}

export interface BuildWorkerOptions {
  connection: RedisConnection;
  /** Queue name (default 'quiver-build'); client and workers must agree. */
  queueName?: string;
  /** Redis key prefix of BullMQ (default 'bull'). */
  prefix?: string;
  /** Jobs this worker runs at once (default 1). */
  concurrency?: number;
  /** Encoding threads per job (default: all). The files do not depend on it. */
  threads?: number;
  /** A worker that has not renewed a job's lock for this long is taken for dead (default 30 000 ms). */
  lockDurationMs?: number;
  /** How often this worker looks for jobs of dead workers (default 30 000 ms). */
  stalledIntervalMs?: number;
  /** Times a job may be recovered from dead workers before it fails (default 2). */
  maxStalledCount?: number;
  /** Called when a job starts here, before any work (awaited). */
  onJobStart?: (job: BuildJobInfo) => void | Promise<void>;
  /** Called when a job completes here. */
  onJobDone?: (job: BuildJobInfo, result: ShardInfo | MergedInfo) => void;
  /** Connection and processing errors of the worker (default: printed with console.error). */
  onError?: (error: Error) => void;
}

export interface BuildJobInfo {
  /** The BullMQ job id: `<buildId>.encode.<shardId>` or `<buildId>.merge`. */
  id: string;
  name: 'encode' | 'merge';
  buildId: string;
  shardId?: number;
  /** Earlier failed attempts of this job. */
  attemptsMade: number;
  /** Times this job was recovered from a dead worker. */
  stalledCount: number;
}

export interface BuildWorker {
  /** Finishes the running jobs, then disconnects. */
  close(): Promise<void>;
}

export interface DistributedBuildOptions {
  connection: RedisConnection;
  queueName?: string;
  prefix?: string;
  /** The codebook (from trainCodebook; its manifest must be beside it). */
  codebookFile: string;
  /** The vectors, read in slices by the workers (.fvecs, .bvecs, .fbin, .u8bin, .i8bin). */
  vectorsFile: string;
  format?: VectorFormat;
  /** Encode jobs (contiguous, near-equal slices). The merged file is the same for any number. */
  shards: number;
  /** Folder for the shard files (seen by every worker). */
  workDir: string;
  /** The merged index file. */
  outFile: string;
  /** The id of row r is idOffset + r (default 0). */
  idOffset?: number;
  /** Names the flow's jobs (default: a random id). Letters, digits, '_', '-' and '.'. */
  buildId?: string;
  /** Tries per job when it throws (default 3). */
  attempts?: number;
  /** Give up waiting after this long (default 3 600 000 ms); the jobs keep running. */
  timeoutMs?: number;
  onProgress?: (progress: BuildProgress) => void;
}

export interface BuildProgress {
  /** 'encode' while shards are being encoded, 'merge' while merging, 'done' at the end. */
  phase: 'encode' | 'merge' | 'done';
  shards: number;
  /** Shards encoded so far. */
  shardsDone: number;
  /** The shard a per-job report is about, and its step ('read', 'encode', 'merge'). */
  shardId?: number;
  step?: string;
}

interface EncodeData {
  buildId: string;
  shardId: number;
  codebookFile: string;
  codebookSha256: string;
  vectorsFile: string;
  format?: VectorFormat;
  offset: number;
  count: number;
  idOffset: number;
  outFile: string;
}

interface MergeData {
  buildId: string;
  codebookFile: string;
  outFile: string;
  shards: number;
}

const DEFAULT_QUEUE = 'quiver-build';
const NAME_PATTERN = /^[A-Za-z0-9_.-]+$/;

function loadBullMQ(purpose: string): BullMQ {
  return loadOptional<BullMQ>('bullmq', purpose);
}

function checkConnection(value: unknown, name: string): RedisConnection {
  if (value === undefined) throw new TypeError(`${name}: expected { host, port } of a Redis server, got undefined`);
  const c = expectOptions<RedisConnection>(value, name, ['host', 'port', 'username', 'password', 'db']);
  if (c.host !== undefined) expectString(c.host, `${name}.host`);
  optionalInteger(c.port, `${name}.port`, 1, 65535);
  if (c.username !== undefined) expectString(c.username, `${name}.username`);
  if (c.password !== undefined) expectString(c.password, `${name}.password`);
  optionalInteger(c.db, `${name}.db`, 0, 1 << 16);
  return { ...c };
}

function checkName(value: unknown, name: string, fallback: string): string {
  if (value === undefined) return fallback;
  const s = expectString(value, name);
  if (!NAME_PATTERN.test(s)) throw new RangeError(`${name}: expected letters, digits, '_', '-' or '.', got ${describe(s)}`);
  return s;
}

function checkPath(value: unknown, name: string): string {
  const p = expectString(value, name);
  if (p.length === 0 || p.includes('\0')) throw new RangeError(`${name}: expected a non-empty file path, got ${describe(p)}`);
  return path.resolve(p);
}

function jobInfo(job: BullJob): BuildJobInfo {
  const data = job.data as Partial<EncodeData>;
  return {
    id: String(job.id),
    name: job.name as 'encode' | 'merge',
    buildId: String(data.buildId),
    ...(job.name === 'encode' ? { shardId: data.shardId } : {}),
    attemptsMade: job.attemptsMade,
    stalledCount: job.stalledCounter ?? 0,
  };
}

/** BullMQ needs Redis ≥ 6.2 (its scripts use commands added there): say so plainly instead of failing in a script. */
async function checkRedisVersion(client: { info(section: string): Promise<string> }): Promise<void> {
  const info = await client.info('server');
  const match = /redis_version:(\d+)\.(\d+)/.exec(info);
  if (match && (Number(match[1]) < 6 || (Number(match[1]) === 6 && Number(match[2]) < 2))) {
    throw new Error(`distributed build: Redis ${match[1]}.${match[2]} is too old; BullMQ needs Redis >= 6.2`);
  }
}

/** Starts a worker that runs encode and merge jobs of quiver builds; resolves once it is connected. */
export async function startBuildWorker(options: BuildWorkerOptions): Promise<BuildWorker> {
  if (options === undefined) throw new TypeError('options: expected { connection }, got undefined');
  const o = expectOptions<BuildWorkerOptions>(options, 'options', [
    'connection', 'queueName', 'prefix', 'concurrency', 'threads', 'lockDurationMs', 'stalledIntervalMs', 'maxStalledCount', 'onJobStart', 'onJobDone', 'onError',
  ]);
  const connection = checkConnection(o.connection, 'options.connection');
  const queueName = checkName(o.queueName, 'options.queueName', DEFAULT_QUEUE);
  const prefix = checkName(o.prefix, 'options.prefix', 'bull');
  const concurrency = optionalInteger(o.concurrency, 'options.concurrency', 1, 1024) ?? 1;
  const threads = optionalInteger(o.threads, 'options.threads', 0, 1024);
  const lockDuration = optionalInteger(o.lockDurationMs, 'options.lockDurationMs', 100, 3_600_000) ?? 30_000;
  const stalledInterval = optionalInteger(o.stalledIntervalMs, 'options.stalledIntervalMs', 100, 3_600_000) ?? 30_000;
  const maxStalledCount = optionalInteger(o.maxStalledCount, 'options.maxStalledCount', 0, 1000) ?? 2;
  for (const key of ['onJobStart', 'onJobDone', 'onError'] as const) {
    if (o[key] !== undefined && typeof o[key] !== 'function') throw new TypeError(`options.${key}: expected a function, got ${describe(o[key])}`);
  }
  const onError = o.onError ?? ((e: Error) => console.error(`quiver build worker: ${e.message}`));
  const bullmq = loadBullMQ('startBuildWorker (quiver distributed build)');

  const processor = async (job: BullJob): Promise<ShardInfo | MergedInfo> => {
    const info = jobInfo(job);
    await o.onJobStart?.(info);
    let result: ShardInfo | MergedInfo;
    if (job.name === 'encode') {
      const d = job.data as EncodeData;
      await job.updateProgress({ shardId: d.shardId, step: 'encode' });
      result = await encodeShardFromFile(
        d.codebookFile,
        { file: d.vectorsFile, offset: d.offset, count: d.count, idOffset: d.idOffset, ...(d.format ? { format: d.format } : {}) },
        d.shardId,
        d.outFile,
        { codebookSha256: d.codebookSha256, ...(threads !== undefined ? { threads } : {}) },
      );
    } else if (job.name === 'merge') {
      const d = job.data as MergeData;
      await job.updateProgress({ step: 'merge' });
      const children = Object.values(await job.getChildrenValues<ShardInfo>());
      if (children.length !== d.shards) throw new Error(`merge: expected ${d.shards} encoded shards, found ${children.length}`);
      result = await mergeShards(
        children.map((c) => c.path),
        d.outFile,
        { codebook: d.codebookFile },
      );
    } else {
      throw new Error(`unknown job name ${JSON.stringify(job.name)} in queue ${queueName}`);
    }
    o.onJobDone?.(info, result);
    return result;
  };

  const worker = new bullmq.Worker(queueName, processor, {
    connection,
    prefix,
    concurrency,
    lockDuration,
    stalledInterval,
    maxStalledCount,
  });
  worker.on('error', onError);
  await worker.waitUntilReady();
  await checkRedisVersion(await worker.client);
  return {
    close: () => worker.close(),
  };
}

/**
 * Builds `outFile` from `vectorsFile` with the codebook, as a BullMQ flow of `shards` encode jobs feeding one merge
 * job, run by workers started with startBuildWorker. Resolves with the merged file's manifest.
 */
export async function buildDistributed(options: DistributedBuildOptions): Promise<MergedInfo> {
  if (options === undefined) throw new TypeError('options: expected { connection, codebookFile, vectorsFile, shards, workDir, outFile }, got undefined');
  const o = expectOptions<DistributedBuildOptions>(options, 'options', [
    'connection', 'queueName', 'prefix', 'codebookFile', 'vectorsFile', 'format', 'shards', 'workDir', 'outFile', 'idOffset', 'buildId', 'attempts', 'timeoutMs', 'onProgress',
  ]);
  const connection = checkConnection(o.connection, 'options.connection');
  const queueName = checkName(o.queueName, 'options.queueName', DEFAULT_QUEUE);
  const prefix = checkName(o.prefix, 'options.prefix', 'bull');
  const codebookFile = checkPath(o.codebookFile, 'options.codebookFile');
  const vectorsFile = checkPath(o.vectorsFile, 'options.vectorsFile');
  const shards = expectInteger(o.shards, 'options.shards', 1, 1 << 16);
  const workDir = checkPath(o.workDir, 'options.workDir');
  const outFile = checkPath(o.outFile, 'options.outFile');
  const idOffset = optionalInteger(o.idOffset, 'options.idOffset', 0, Number.MAX_SAFE_INTEGER) ?? 0;
  const buildId = checkName(o.buildId, 'options.buildId', `build-${randomUUID()}`);
  const attempts = optionalInteger(o.attempts, 'options.attempts', 1, 100) ?? 3;
  const timeoutMs = optionalInteger(o.timeoutMs, 'options.timeoutMs', 1, 2 ** 31 - 1) ?? 3_600_000;
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw new TypeError(`options.onProgress: expected a function, got ${describe(o.onProgress)}`);
  }
  const bullmq = loadBullMQ('buildDistributed (quiver distributed build)');

  // Checked here, once, so that a bad codebook or vector file fails the call rather than every job.
  const codebook = await readCodebook(codebookFile);
  const { n, dim } = await countVectors(vectorsFile, o.format);
  if (dim !== codebook.dim) throw new RangeError(`options.vectorsFile: vectors of dimension ${dim}, the codebook's is ${codebook.dim}`);

  const jobOptions = { attempts, backoff: { type: 'fixed', delay: 1000 } };
  const children = planShards(n, shards).map((p) => ({
    name: 'encode',
    queueName,
    data: {
      buildId,
      shardId: p.shardId,
      codebookFile,
      codebookSha256: codebook.sha256,
      vectorsFile,
      ...(o.format ? { format: o.format } : {}),
      offset: p.offset,
      count: p.count,
      idOffset,
      outFile: path.join(workDir, `${buildId}.${shardFileName(p.shardId)}`),
    } satisfies EncodeData,
    // A shard that fails for good fails the build instead of leaving the merge waiting forever.
    opts: { ...jobOptions, jobId: `${buildId}.encode.${p.shardId}`, failParentOnFailure: true },
  }));

  const events = new bullmq.QueueEvents(queueName, { connection, prefix });
  const flow = new bullmq.FlowProducer({ connection, prefix });
  try {
    await events.waitUntilReady();
    await checkRedisVersion(await flow.client);
    await fs.promises.mkdir(workDir, { recursive: true });

    let shardsDone = 0;
    const report = (p: Omit<BuildProgress, 'shards' | 'shardsDone'>) => {
      try {
        o.onProgress?.({ ...p, shards, shardsDone });
      } catch {
        // A throwing progress callback must not break the event stream.
      }
    };
    const mergeId = `${buildId}.merge`;
    const ours = (jobId: string) => jobId.startsWith(`${buildId}.`);
    events.on('progress', ({ jobId, data }) => {
      if (!ours(jobId)) return;
      const d = (typeof data === 'object' && data !== null ? data : {}) as { shardId?: number; step?: string };
      report({ phase: jobId === mergeId ? 'merge' : 'encode', ...d });
    });
    events.on('completed', ({ jobId }) => {
      if (!ours(jobId) || jobId === mergeId) return;
      shardsDone++;
      report({ phase: shardsDone === shards ? 'merge' : 'encode', shardId: Number(jobId.slice(jobId.lastIndexOf('.') + 1)) });
    });

    const node = await flow.add({
      name: 'merge',
      queueName,
      data: { buildId, codebookFile, outFile, shards } satisfies MergeData,
      opts: { ...jobOptions, jobId: mergeId },
      children,
    });
    report({ phase: 'encode' });
    const result = (await node.job.waitUntilFinished(events, timeoutMs)) as MergedInfo;
    report({ phase: 'done' });
    return result;
  } finally {
    await Promise.allSettled([events.close(), flow.close()]);
  }
}
