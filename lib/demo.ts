// The main job: on the embedded SIFT slice, build exact and compressed indexes, search the held-out queries
// and report recall against the exact ground truth, speed and memory per vector.
import * as path from 'node:path';

import { readVectors } from './io';
import { Index, simdLevel, type TrainProgress } from './quiver';
import { kRecallAt, oneRecallAt } from './recall';
import { packageRoot } from './native';

export interface DemoOptions {
  specs?: string[];
  seed?: number;
  threads?: number;
  /** Refine factor used for specs that end in ",Refine". */
  refine?: number;
  /** Inverted lists visited by IVF specs (default 16). */
  nprobe?: number;
  onTrainStart?: (spec: string) => void;
  onProgress?: (spec: string, p: TrainProgress) => void;
  onTrainEnd?: (spec: string) => void;
}

export interface DemoRow {
  spec: string;
  /** Bytes per vector: the codes plus, for ",Refine" specs, the stored copy (refineBytesPerVector of it). */
  bytesPerVector: number;
  /** The refine store's share of bytesPerVector (0 without one). */
  refineBytesPerVector: number;
  trainSeconds: number;
  addSeconds: number;
  batchQps: number;
  singleQps: number;
  recallAt1: number;
  recallAt10: number;
  recallAt100: number;
  tenRecallAt10: number;
}

export interface DemoResult {
  dataset: string;
  base: number;
  queries: number;
  dim: number;
  simd: string;
  rows: DemoRow[];
}

export const DEFAULT_DEMO_SPECS = [
  'Flat',
  'PQ8x8',
  'PQ16x8',
  'PQ32x8',
  'PQ32x4fs',
  'IVF64,PQ16x8',
  'IVF64,TRQ,PQ16x8',
  'IVF64,PQ16x8,Refine',
];

export function demoDataDir(): string {
  return path.join(packageRoot(), 'data', 'bigann10k');
}

/** Runs `fn` repeatedly for at least `minMs` and returns calls per second. */
function rate(fn: () => void, minMs = 200): number {
  let calls = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    fn();
    calls++;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return (calls * 1000) / elapsed;
}

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const dir = demoDataDir();
  const base = await readVectors(path.join(dir, 'bigann10k_heldout_base.bvecs'));
  const queries = await readVectors(path.join(dir, 'bigann10k_heldout_query.bvecs'));
  const gt = await readVectors(path.join(dir, 'bigann10k_heldout_groundtruth.ivecs'));
  const dim = base.dim;
  const k = 100;
  const refine = options.refine ?? 10;
  const rows: DemoRow[] = [];
  for (const spec of options.specs ?? DEFAULT_DEMO_SPECS) {
    options.onTrainStart?.(spec);
    let t0 = performance.now();
    const index = await Index.train(spec, base.data as Float32Array, {
      dim,
      seed: options.seed ?? 1234,
      threads: options.threads,
      onProgress: options.onProgress ? (p) => options.onProgress!(spec, p) : undefined,
    });
    const trainSeconds = (performance.now() - t0) / 1000;
    options.onTrainEnd?.(spec);
    t0 = performance.now();
    await index.add(base.data as Float32Array);
    const addSeconds = (performance.now() - t0) / 1000;
    const searchOptions = { refine: /,Refine(,store=\w+)?$/.test(spec) ? refine : 1, nprobe: options.nprobe ?? 16, threads: options.threads };
    const result = await index.search(queries.data as Float32Array, k, searchOptions);
    const qdata = queries.data as Float32Array;
    const batchQps = rate(() => index.searchSync(qdata, k, searchOptions)) * queries.n;
    let next = 0;
    const singleQps = rate(() => {
      const q = qdata.subarray((next % queries.n) * dim, (next % queries.n + 1) * dim);
      next++;
      index.searchSync(q, k, searchOptions);
    });
    rows.push({
      spec: index.spec,
      bytesPerVector: index.codeSize + index.refineBytes,
      refineBytesPerVector: index.refineBytes,
      trainSeconds,
      addSeconds,
      batchQps,
      singleQps,
      recallAt1: oneRecallAt(result.ids, k, gt.data, gt.dim, 1),
      recallAt10: oneRecallAt(result.ids, k, gt.data, gt.dim, 10),
      recallAt100: oneRecallAt(result.ids, k, gt.data, gt.dim, 100),
      tenRecallAt10: kRecallAt(result.ids, k, gt.data, gt.dim, 10),
    });
    index.close();
  }
  return { dataset: 'SIFT slice (bigann10k, held-out split)', base: base.n, queries: queries.n, dim, simd: simdLevel(), rows };
}

function searchNote(spec: string, refine: number, nprobe: number): string {
  const notes = [spec.startsWith('IVF') ? `nprobe ${nprobe}` : '', /,Refine(,store=\w+)?$/.test(spec) ? `refine ${refine}` : ''];
  const text = notes.filter(Boolean).join(', ');
  return text ? ` (${text})` : '';
}

export function formatDemo(result: DemoResult, refine = 10, nprobe = 16): string {
  const header = ['spec', 'bytes/vec', 'train s', 'add s', 'batch q/s', 'single q/s', 'R@1', 'R@10', 'R@100', '10-R@10'];
  const lines = result.rows.map((r) => [
    r.spec + searchNote(r.spec, refine, nprobe),
    r.refineBytesPerVector ? `${r.bytesPerVector - r.refineBytesPerVector} + ${r.refineBytesPerVector}` : String(r.bytesPerVector),
    r.trainSeconds.toFixed(2),
    r.addSeconds.toFixed(3),
    Math.round(r.batchQps).toLocaleString('en-US'),
    Math.round(r.singleQps).toLocaleString('en-US'),
    r.recallAt1.toFixed(3),
    r.recallAt10.toFixed(3),
    r.recallAt100.toFixed(3),
    r.tenRecallAt10.toFixed(3),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (cells: string[]) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |';
  return [
    `${result.dataset}: ${result.base} base vectors, ${result.queries} queries, d=${result.dim}, SIMD ${result.simd}`,
    'R@r = 1-recall@r (true nearest neighbour within the first r results); 10-R@10 = 10-recall@10.',
    '',
    fmt(header),
    '|' + widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|') + '|',
    ...lines.map(fmt),
  ].join('\n');
}
