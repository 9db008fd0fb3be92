// Scale-out: file-based build steps (files.ts), a distributed build on BullMQ (bullmq.ts) and distributed search
// on NATS (nats.ts). The job systems' packages are optional peers, loaded only when their functions are called.
export * from './files';
export {
  buildDistributed,
  startBuildWorker,
  type BuildJobInfo,
  type BuildProgress,
  type BuildWorker,
  type BuildWorkerOptions,
  type DistributedBuildOptions,
  type RedisConnection,
} from './bullmq';
export {
  ShardedSearchClient,
  serveShard,
  type SearchClientOptions,
  type ShardServer,
  type ShardServerOptions,
  type ShardedSearchOptions,
  type ShardedSearchResult,
} from './nats';
