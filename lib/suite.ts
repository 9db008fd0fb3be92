// The benchmark suite runner: one dataset × quiver specs × search-parameter sweeps, plus peer systems in the
// same run. For every configuration it records recall (faiss's 1-recall@R and ann-benchmarks' k-recall@k),
// queries per second at one thread and at all threads, in one batch call and one query per call, training
// and adding time, bytes per vector and the resident-memory growth of building. report.ts turns the result
// into JSON, Markdown and an SVG recall–QPS plot.
//
// Timing protocol, the same for quiver and every peer: one untimed warm-up call, then plan.rounds rounds of
// calls, each lasting at least plan.minSeconds; the best round's rate counts. Timings use plan.k results per query (10 by default, as the anchors); recall@100
// comes from a second search with plan.recallK results, which HNSW peers answer with ef ≥ recallK.
import * as os from 'node:os';

import { Index, type SearchOptions } from './quiver';
import { kRecallAt, oneRecallAt } from './recall';
import type { SuiteDataset } from './suite/datasets';
import { allThreads, callsPerSecond, machineInfo, residentBytes, timed } from './suite/measure';
import { speedRatios } from './suite/ratios';
import type {
  AnchorSet,
  MachineInfo,
  PeerAdapter,
  PeerIndex,
  QpsFigures,
  RecallTable,
  SearchParams,
  SkippedEntry,
  SuiteEvent,
  SuitePlan,
  SuiteResult,
  SuiteRow,
} from './suite/types';

export * from './suite/types';
export * from './suite/datasets';
export { createPeers, faissFactoryFor, faissPeer, hnswlibPeer, lancedbPeer, PEER_NAMES, runPythonPeer, usearchPeer, writeBinVectors } from './suite/peers';
export type { FaissOptions, HnswOptions, LancedbOptions, PeerSetOptions } from './suite/peers';
export { formatMarkdown, renderSvg, writeSuiteOutputs } from './suite/report';
export { speedRatios } from './suite/ratios';
export { callsPerSecond, machineInfo } from './suite/measure';
export { suiteProgress } from './suite/progress';

export interface SuiteOptions {
  dataset: SuiteDataset;
  /** quiver specs, e.g. ['Flat', 'PQ16x8', 'PQ16x8,Refine']. */
  specs: string[];
  /** nprobe values, swept for IVF specs (quiver's and the peers'). Default [4, 16, 64]. */
  nprobe?: number[];
  /** refine factors, swept for specs ending in ",Refine". Default [1, 4, 16]. */
  refine?: number[];
  /** HNSW ef values for the graph peers. Default [16, 32, 64, 128]. */
  ef?: number[];
  /** Results per query for timing and recall@1/@10 (default 10). */
  k?: number;
  /** Results per query of the recall@100 search (default 100; capped by the ground truth's depth). */
  recallK?: number;
  /** Minimum seconds per timing round (default 0.2). */
  minSeconds?: number;
  /** Timing rounds per figure, of which the best counts (default 3). */
  rounds?: number;
  seed?: number;
  peers?: PeerAdapter[];
  /** Figures from elsewhere to print beside ours (not measured in this run). */
  anchors?: AnchorSet;
  /** Extra machine facts to record (e.g. the git commit). */
  machine?: Record<string, string | number>;
  onEvent?: (event: SuiteEvent) => void;
}

const RECALL_CUTOFFS = [1, 10, 100];

/** The search-parameter grid of a quiver spec: nprobe for IVF specs, refine for ",Refine" specs. */
export function quiverSweep(spec: string, plan: Pick<SuitePlan, 'nprobe' | 'refine'>): SearchParams[] {
  const nprobes: (number | undefined)[] = /(^|,)IVF/i.test(spec) ? plan.nprobe : [undefined];
  const refines: (number | undefined)[] = /,Refine(,store=\w+)?$/i.test(spec) ? plan.refine : [undefined];
  const grid: SearchParams[] = [];
  for (const nprobe of nprobes) {
    for (const refine of refines) {
      const params: SearchParams = {};
      if (nprobe !== undefined) params.nprobe = nprobe;
      if (refine !== undefined) params.refine = refine;
      grid.push(params);
    }
  }
  return grid;
}

function positiveIntegers(values: number[], name: string): number[] {
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) {
    throw new RangeError(`${name}: expected positive integers, got ${JSON.stringify(values)}`);
  }
  return values;
}

function makePlan(options: SuiteOptions): SuitePlan {
  const { dataset } = options;
  const one = (value: number | undefined, fallback: number, name: string) => positiveIntegers([value ?? fallback], name)[0];
  const k = Math.min(one(options.k, 10, 'k'), dataset.baseCount);
  const minSeconds = options.minSeconds ?? 0.2;
  if (!(minSeconds > 0)) throw new RangeError(`minSeconds: expected a positive number, got ${minSeconds}`);
  return {
    specs: options.specs,
    nprobe: positiveIntegers(options.nprobe ?? [4, 16, 64], 'nprobe'),
    refine: positiveIntegers(options.refine ?? [1, 4, 16], 'refine'),
    ef: positiveIntegers(options.ef ?? [16, 32, 64, 128], 'ef'),
    k,
    recallK: Math.max(k, Math.min(one(options.recallK, 100, 'recallK'), dataset.gtK, dataset.baseCount)),
    minSeconds,
    rounds: one(options.rounds, 3, 'rounds'),
    seed: options.seed ?? 1234,
    threads: allThreads(),
  };
}

/** Recall at 1/10/100 from a search with k results and, when given, a deeper one with recallK results. */
export function recallTables(
  dataset: SuiteDataset,
  ids: ArrayLike<number | bigint>,
  k: number,
  deepIds: ArrayLike<number | bigint> | null,
  recallK: number,
): { oneRecall: RecallTable; kRecall: RecallTable } {
  const oneRecall: RecallTable = {};
  const kRecall: RecallTable = {};
  const gt = dataset.groundTruth;
  for (const r of RECALL_CUTOFFS) {
    const [source, width] = r <= k ? [ids, k] : deepIds && r <= recallK ? [deepIds, recallK] : [null, 0];
    if (!source) continue;
    oneRecall[r] = oneRecallAt(source, width, gt, dataset.gtK, r);
    if (r <= dataset.gtK) kRecall[r] = kRecallAt(source, width, gt, dataset.gtK, r);
  }
  return { oneRecall, kRecall };
}

interface Timable {
  threadModes: number[];
  batch?: (threads: number) => unknown;
  one?: (query: number, threads: number) => unknown;
}

async function measureQps(target: Timable, queryCount: number, plan: SuitePlan): Promise<QpsFigures> {
  const { minSeconds, rounds } = plan;
  const qps: QpsFigures = { batch1: null, batchAll: null, single1: null, singleAll: null };
  for (const threads of target.threadModes) {
    const suffix = threads === 1 ? '1' : 'All';
    if (target.batch) {
      qps[`batch${suffix}`] = (await callsPerSecond(() => target.batch!(threads), minSeconds, rounds)) * queryCount;
    }
    if (target.one) {
      qps[`single${suffix}`] = await callsPerSecond((call) => target.one!(call % queryCount, threads), minSeconds, rounds);
    }
  }
  return qps;
}

function loadAverage(): string {
  return os.loadavg()[0].toFixed(2);
}

function quiverVersionLabel(machine: MachineInfo): string {
  return `${machine.quiverVersion} (${machine.simd})`;
}

/** Runs the suite and returns every measured row, the skips with their reasons, and the machine facts. */
export async function runSuite(options: SuiteOptions): Promise<SuiteResult> {
  const { dataset } = options;
  const plan = makePlan(options);
  // The load average says how much else was running: this suite is often run on shared machines.
  const machine: MachineInfo = { ...machineInfo(), ...(options.machine ?? {}), 'load average at start': loadAverage() };
  const emit = options.onEvent ?? (() => {});
  const rows: SuiteRow[] = [];
  const skipped: SkippedEntry[] = [];
  const dim = dataset.dim;
  const trainCount = dataset.trainCount ?? dataset.baseCount;

  const peers: { adapter: PeerAdapter; version: string }[] = [];
  for (const adapter of options.peers ?? []) {
    const probe = await adapter.probe();
    if ('skip' in probe) skipped.push({ system: adapter.name, reason: probe.skip });
    else peers.push({ adapter, version: probe.version });
  }
  const peerConfigs = peers.map((p) => ({ ...p, configs: p.adapter.configurations(dataset, plan) }));
  const total =
    plan.specs.reduce((n, spec) => n + quiverSweep(spec, plan).length, 0) +
    peerConfigs.reduce((n, p) => n + p.configs.reduce((m, c) => m + c.sweepSize, 0), 0);
  let done = 0;
  const skip = (entry: SkippedEntry, steps: number) => {
    skipped.push(entry);
    done += steps;
    emit({ type: 'skip', ...entry, done, total });
  };
  emit({ type: 'start', total, dataset: dataset.name });

  // quiver
  const trainVectors = dataset.base.subarray(0, trainCount * dim);
  for (const spec of plan.specs) {
    const sweep = quiverSweep(spec, plan);
    emit({ type: 'build', system: 'quiver', spec });
    let index: Index | undefined;
    try {
      const rssBefore = residentBytes();
      const trained = await timed(() => Index.train(spec, trainVectors, { dim, metric: dataset.metric, seed: plan.seed }));
      index = trained.value;
      const built = index;
      const added = await timed(() => built.add(dataset.base));
      const rssDeltaBytes = residentBytes() - rssBefore;
      const refineStore = index.refineBytes;
      for (const params of sweep) {
        try {
          const searchOptions = (threads: number): SearchOptions => ({ ...params, threads });
          const qps = await measureQps(
            {
              threadModes: [1, 0],
              batch: (threads) => built.searchSync(dataset.queries, plan.k, searchOptions(threads)),
              one: (q, threads) => built.searchSync(dataset.queries.subarray(q * dim, (q + 1) * dim), plan.k, searchOptions(threads)),
            },
            dataset.queryCount,
            plan,
          );
          const ids = built.searchSync(dataset.queries, plan.k, searchOptions(0)).ids;
          const deep = plan.recallK > plan.k ? built.searchSync(dataset.queries, plan.recallK, searchOptions(0)).ids : null;
          rows.push({
            system: 'quiver',
            systemVersion: quiverVersionLabel(machine),
            role: 'speed',
            spec: built.spec,
            params,
            bytesPerVector: built.codeSize + refineStore,
            bytesNote: refineStore ? `${built.codeSize} B codes + ${refineStore} B float32 refine store` : undefined,
            trainSeconds: trained.seconds,
            addSeconds: added.seconds,
            rssDeltaBytes,
            ...recallTables(dataset, ids, plan.k, deep, plan.recallK),
            qps,
            notes: [],
          });
          done++;
          emit({ type: 'search', system: 'quiver', spec, params, done, total });
        } catch (error) {
          skip({ system: 'quiver', spec: `${spec} ${JSON.stringify(params)}`, reason: (error as Error).message }, 1);
        }
      }
    } catch (error) {
      skip({ system: 'quiver', spec, reason: `unsupported: ${(error as Error).message}` }, sweep.length);
    } finally {
      index?.close();
    }
  }

  // peers
  for (const { adapter, version, configs } of peerConfigs) {
    for (const config of configs) {
      emit({ type: 'build', system: adapter.name, spec: config.label });
      let built: PeerIndex | undefined;
      let measured = 0;
      try {
        const rssBefore = residentBytes();
        built = await adapter.build(dataset, config, plan);
        const rssDeltaBytes = built.rssDeltaBytes !== undefined ? built.rssDeltaBytes : residentBytes() - rssBefore;
        const peer = built;
        for (const params of peer.sweep) {
          let figures: { qps: QpsFigures; ids: ArrayLike<number | bigint>; deep: ArrayLike<number | bigint> | null };
          if (peer.measured) {
            const m = peer.measured(params);
            figures = { qps: m.qps, ids: m.ids, deep: m.recallIds };
          } else {
            const qps = await measureQps(
              {
                threadModes: peer.threadModes,
                batch: peer.searchBatch && ((threads) => peer.searchBatch!(dataset.queries, plan.k, params, threads)),
                one: peer.searchOne && ((q, threads) => peer.searchOne!(q, plan.k, params, threads)),
              },
              dataset.queryCount,
              plan,
            );
            const threads = peer.threadModes.includes(0) ? 0 : peer.threadModes[0];
            const ids = await peer.searchBatch!(dataset.queries, plan.k, params, threads);
            const deep = plan.recallK > plan.k ? await peer.searchBatch!(dataset.queries, plan.recallK, params, threads) : null;
            figures = { qps, ids, deep };
          }
          rows.push({
            system: adapter.name,
            systemVersion: version,
            role: adapter.role,
            spec: peer.spec,
            params,
            bytesPerVector: peer.bytesPerVector,
            bytesNote: peer.bytesNote,
            trainSeconds: peer.trainSeconds,
            addSeconds: peer.addSeconds,
            rssDeltaBytes,
            ...recallTables(dataset, figures.ids, plan.k, figures.deep, plan.recallK),
            qps: figures.qps,
            notes: peer.notes ?? [],
          });
          done++;
          measured++;
          emit({ type: 'search', system: adapter.name, spec: peer.spec, params, done, total });
        }
      } catch (error) {
        skip({ system: adapter.name, spec: config.label, reason: (error as Error).message }, Math.max(0, config.sweepSize - measured));
      } finally {
        await built?.close();
      }
    }
    await adapter.dispose?.();
  }
  emit({ type: 'end' });
  machine['load average at end'] = loadAverage();

  const result: SuiteResult = {
    schema: 'quiver-suite/1',
    dataset: {
      name: dataset.name,
      description: dataset.description,
      metric: dataset.metric,
      dim,
      baseCount: dataset.baseCount,
      queryCount: dataset.queryCount,
      gtK: dataset.gtK,
      trainCount,
    },
    machine,
    plan,
    rows,
    skipped,
    ratios: [],
    anchors: options.anchors,
  };
  result.ratios = speedRatios(result);
  return result;
}
