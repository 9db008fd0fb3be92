// Shared shapes of the benchmark suite: what a measured row holds and what a peer adapter must provide.
import type { SuiteDataset } from './datasets';

/** Search-time parameters of one configuration; each system reads the ones it has. */
export interface SearchParams {
  /** Inverted lists visited per query (IVF indexes: quiver IVF specs, LanceDB, faiss IVF). */
  nprobe?: number;
  /** Candidates re-scored with full vectors, as a multiple of k (specs ending in ",Refine"). */
  refine?: number;
  /** HNSW search beam width. */
  ef?: number;
}

/** Queries per second. null where the system cannot run that way (e.g. a library without thread control). */
export interface QpsFigures {
  /** All queries in one call, one thread. */
  batch1: number | null;
  /** All queries in one call, all threads. */
  batchAll: number | null;
  /** One query per call, one thread. */
  single1: number | null;
  /** One query per call, all threads. */
  singleAll: number | null;
}

/** Recall at several cut-offs, keyed by the cut-off (1, 10, 100). */
export type RecallTable = Record<string, number>;

export interface SuiteRow {
  /** 'quiver', or the peer's name ('usearch', 'hnswlib-node', 'lancedb', 'faiss'). */
  system: string;
  systemVersion: string;
  /** 'speed': timed in this run and compared; 'accuracy': only its recall is meaningful (e.g. faiss without SIMD). */
  role: 'speed' | 'accuracy';
  /** The index as built: a quiver spec, or the peer's own description (e.g. 'HNSW M=16 efC=128'). */
  spec: string;
  params: SearchParams;
  /** Bytes stored per vector for search (codes, or vectors + graph), including a refine store when used. */
  bytesPerVector: number;
  bytesNote?: string;
  trainSeconds: number;
  addSeconds: number;
  /** process RSS after building minus before (bytes); for an out-of-process peer, its own process's. */
  rssDeltaBytes: number | null;
  /** faiss's 1-recall@R: true nearest neighbour within the first R results, R = 1, 10, 100. */
  oneRecall: RecallTable;
  /** ann-benchmarks' k-recall@k: share of the true k nearest found in the first k results, k = 1, 10, 100. */
  kRecall: RecallTable;
  qps: QpsFigures;
  notes: string[];
}

export interface SkippedEntry {
  system: string;
  spec?: string;
  reason: string;
}

/** What the suite asks of every system: the quiver specs, sweeps and search sizes. */
export interface SuitePlan {
  specs: string[];
  nprobe: number[];
  refine: number[];
  ef: number[];
  /** Results per query for timing and for recall@1/@10 and 10-recall@10. */
  k: number;
  /** Results per query of the second search that gives recall@100 and 100-recall@100. */
  recallK: number;
  /** Each timing round runs at least this long (and at least one call). */
  minSeconds: number;
  /** Timing rounds per figure; the figure is the best round's rate. */
  rounds: number;
  seed: number;
  /** "All threads": how many the machine has. */
  threads: number;
}

/** An index a peer built, ready to search. */
export interface PeerIndex {
  spec: string;
  bytesPerVector: number;
  bytesNote?: string;
  trainSeconds: number;
  addSeconds: number;
  /** Set by peers that build in another process, where the suite cannot see the memory. */
  rssDeltaBytes?: number | null;
  sweep: SearchParams[];
  notes?: string[];
  /** Thread counts it can be told to use: 1 and/or 0 (all). A library without the choice lists what it does. */
  threadModes: number[];
  /** All queries (queryCount × dim) in one call, or the library's nearest equivalent; nq × k ids, -1 padded. */
  searchBatch?(queries: Float32Array, k: number, params: SearchParams, threads: number): Promise<ArrayLike<number | bigint>> | ArrayLike<number | bigint>;
  /** One query; the result is discarded (timing only). Synchronous where the library is. */
  searchOne?(queryIndex: number, k: number, params: SearchParams, threads: number): unknown;
  /** Out-of-process peers measure themselves: their figures and result ids for these params. */
  measured?(params: SearchParams): { qps: QpsFigures; ids: ArrayLike<number | bigint>; recallIds: ArrayLike<number | bigint> };
  close(): Promise<void> | void;
}

export interface PeerConfiguration {
  /** Short description used in progress output. */
  label: string;
  /** How many search configurations its sweep will have (for the progress total). */
  sweepSize: number;
  /** Opaque to the suite; handed back to build(). */
  options: Record<string, unknown>;
}

export interface PeerAdapter {
  name: string;
  role: 'speed' | 'accuracy';
  /** The version in use, or why this peer is skipped (not installed, no python, …). */
  probe(): Promise<{ version: string } | { skip: string }>;
  configurations(dataset: SuiteDataset, plan: SuitePlan): PeerConfiguration[];
  build(dataset: SuiteDataset, config: PeerConfiguration, plan: SuitePlan): Promise<PeerIndex>;
  /** Frees what the adapter keeps across builds (temporary files). */
  dispose?(): Promise<void> | void;
}

/** Progress events, in order: start, then per configuration build → search…, skip where something fails, end. */
export type SuiteEvent =
  | { type: 'start'; total: number; dataset: string }
  | { type: 'build'; system: string; spec: string }
  | { type: 'search'; system: string; spec: string; params: SearchParams; done: number; total: number }
  | { type: 'skip'; system: string; spec?: string; reason: string; done: number; total: number }
  | { type: 'end' };

export interface MachineInfo {
  cpu: string;
  cores: number;
  node: string;
  platform: string;
  date: string;
  simd: string;
  quiverVersion: string;
  /** Anything the caller adds (e.g. the git commit). */
  [key: string]: string | number;
}

export interface SuiteResult {
  schema: 'quiver-suite/1';
  dataset: {
    name: string;
    description: string;
    metric: string;
    dim: number;
    baseCount: number;
    queryCount: number;
    gtK: number;
    trainCount: number;
  };
  machine: MachineInfo;
  plan: SuitePlan;
  rows: SuiteRow[];
  skipped: SkippedEntry[];
  /** quiver's speed against each peer at matched recall (see ratios.ts). */
  ratios: SpeedRatio[];
  /** Figures measured elsewhere (not in this run) to print beside ours, e.g. faiss with AVX2. */
  anchors?: AnchorSet;
}

export interface AnchorRow {
  /** The anchor's own name of the index, e.g. 'PQ16'. */
  index: string;
  /** The quiver spec it corresponds to, when there is one. */
  quiverSpec?: string;
  params?: SearchParams;
  bytesPerVector?: number | null;
  trainSeconds?: number | null;
  addSeconds?: number | null;
  batchQps?: number | null;
  singleQps?: number | null;
  tenRecallAt10?: number | null;
  /** Base size × single q/s, where the anchor states it. */
  codesPerSecondPerCore?: number | null;
}

export interface AnchorSet {
  system: string;
  source: string;
  conditions: string;
  rows: AnchorRow[];
}

/** quiver's speed over a peer's, at recall the peer at least matches. */
export interface SpeedRatio {
  spec: string;
  params: SearchParams;
  /** quiver's 10-recall@10 for this configuration. */
  recall: number;
  peer: string;
  /** 'single': one query per call (quiver at one thread); 'batch': all queries in one call, all threads. */
  mode: 'single' | 'batch';
  ours: number;
  /** The peer configuration compared: its fastest one whose 10-recall@10 is at least ours; null if none. */
  peerSpec: string | null;
  peerParams: SearchParams | null;
  peerRecall: number | null;
  theirs: number | null;
  /** ours / theirs; null when the peer never reaches our recall. */
  ratio: number | null;
  /** Set when the peer could not run the same way (e.g. no thread control) and what was used instead. */
  peerCondition?: string;
}
