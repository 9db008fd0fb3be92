export {
  Codec,
  Index,
  gpu,
  gpuInfo,
  setSimdLevel,
  simdLevel,
  supportedSimdLevels,
  type AddOptions,
  type CodecTrainOptions,
  type Device,
  type EncodeOptions,
  type GpuInfo,
  type LoadOptions,
  type Metric,
  type SearchOptions,
  type SearchResult,
  type TrainOptions,
  type TrainProgress,
} from './quiver';
export { CODEBOOKS_FORMAT_VERSION, type CodebooksManifest } from './codebooks';
export { formatOf, readVectors, type ReadVectorsOptions, type VectorFormat, type Vectors } from './io';
export { kRecallAt, oneRecallAt } from './recall';
export * from './pipeline/index';
export * as scaleout from './scaleout/index';
