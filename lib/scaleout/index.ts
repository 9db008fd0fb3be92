// Scale-out: file-based build steps (files.ts) and a distributed build on BullMQ (bullmq.ts). The job system's
// package is an optional peer, loaded only when its functions are called.
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
