// quiver's embedding and reranking pipelines: embedders (ONNX models, the Universal Sentence Encoder,
// MobileNetV2 features, image + text products), rerankers (exact refine, ONNX pair scorers, cross-modal),
// SearchPipeline around a quiver Index, and the pieces they share. Model runtimes are optional peers, loaded
// on first use.
export {
  checkEmbedder,
  embedInBatches,
  type Embedder,
  type ImageInput,
  type RawImage,
} from './embedder';
export { prepareImages, type ImagePreprocessing, type ResizeKernel } from './image';
export { readIdx, type IdxArray } from './idx';
export { retrievalMetrics, type RetrievalMetrics, type RetrievalMetricsInput } from './metrics';
export { MobileNetV2Embedder, UniversalSentenceEncoder, type MobileNetV2Options, type ModelEmbedderOptions } from './models';
export {
  OnnxEmbedder,
  OnnxReranker,
  type OnnxEmbedderOptions,
  type OnnxImageInputSpec,
  type OnnxModelSource,
  type OnnxRerankerInputNames,
  type OnnxRerankerOptions,
  type OnnxSessionOptions,
  type OnnxTextInputSpec,
  type OnnxVectorInputSpec,
  type TextTokenizer,
  type TokenizerResult,
} from './onnx';
export {
  bilinearScoreModel,
  concatProjectionModel,
  encodeOnnxModel,
  linearProjectionModel,
  type OnnxAttributeValue,
  type OnnxElementType,
  type OnnxGraph,
  type OnnxInitializer,
  type OnnxNode,
  type OnnxValueInfo,
} from './onnx-model';
export { MissingPackageError, OPTIONAL_PACKAGES, loadOptional } from './optional';
export {
  ProductEmbedder,
  type ConcatFusion,
  type Fusion,
  type OnnxFusion,
  type ProductEmbedderOptions,
  type ProductInput,
  type ProductParts,
} from './product';
export {
  CrossModalReranker,
  ExactReranker,
  LocalFeatureStore,
  type CrossModalRerankerOptions,
  type EmbeddedCandidates,
  type ExactRerankerOptions,
  type Reranker,
  type RerankQuery,
} from './rerank';
export {
  SearchPipeline,
  type IndexProductsOptions,
  type IndexProductsResult,
  type IndexProgress,
  type PipelineIndexSearchOptions,
  type PipelineItem,
  type PipelineSearchOptions,
  type PipelineSearchResult,
  type SearchPipelineOptions,
  type StageTimings,
} from './search';
export { loadWordPieceTokenizer, wordPieceTokenizer, type Vocabulary, type WordPieceOptions } from './tokenizer';
export { VectorStore, l2NormalizeRows, type VectorStoreOptions } from './vectors';
