// Retrieval quality against labels, as visual-search benchmarks (eProduct, Stanford Online Products, …)
// measure it: a result is relevant when it carries the query's label (product id or class).
//   recall@k: the fraction of queries with at least one relevant result among the first k.
//   mAP@k: the mean over queries of AP@k = (1 / min(k, R)) · Σ_{i ≤ k} precision@i · rel(i), where R is how many
//     relevant items the index holds for the query — 1.0 when the first min(k, R) results are all relevant.
import { describe, expectArray, expectFunction, expectInteger, expectOptions } from './args';

export interface RetrievalMetricsInput {
  /** nq × perQuery result ids, best first (-1n for padding), as SearchPipeline and Index.search return. */
  ids: BigInt64Array;
  perQuery: number;
  /** One label per query. */
  queryLabels: ArrayLike<number>;
  /** The label of an indexed id (undefined: unknown, never relevant). */
  labelOf: (id: bigint) => number | undefined;
  /** How many indexed items are relevant to query q (R in mAP@k). */
  relevantCount: (q: number) => number;
  /** Cut-offs to report, each ≤ perQuery. */
  ks: readonly number[];
}

export interface RetrievalMetrics {
  queries: number;
  /** recall@k for each k in ks. */
  recall: Record<number, number>;
  /** mAP@k for each k in ks. */
  map: Record<number, number>;
}

export function retrievalMetrics(input: RetrievalMetricsInput): RetrievalMetrics {
  const o = expectOptions<RetrievalMetricsInput>(input, 'input', ['ids', 'perQuery', 'queryLabels', 'labelOf', 'relevantCount', 'ks']);
  if (!(o.ids instanceof BigInt64Array)) throw new TypeError(`input.ids: expected a BigInt64Array, got ${describe(o.ids)}`);
  const perQuery = expectInteger(o.perQuery, 'input.perQuery', 1, 1 << 24);
  if (o.queryLabels === null || typeof o.queryLabels !== 'object' || typeof o.queryLabels.length !== 'number') {
    throw new TypeError(`input.queryLabels: expected an array of labels, got ${describe(o.queryLabels)}`);
  }
  const nq = o.queryLabels.length;
  if (o.ids.length !== nq * perQuery) {
    throw new RangeError(`input.ids: expected queryLabels.length × perQuery = ${nq} × ${perQuery} ids, got ${o.ids.length}`);
  }
  const labelOf = expectFunction<(id: bigint) => number | undefined>(o.labelOf, 'input.labelOf');
  const relevantCount = expectFunction<(q: number) => number>(o.relevantCount, 'input.relevantCount');
  const ks = expectArray<number>(o.ks, 'input.ks').map((k, i) => expectInteger(k, `input.ks[${i}]`, 1, perQuery));
  const recall: Record<number, number> = {};
  const map: Record<number, number> = {};
  for (const k of ks) {
    recall[k] = 0;
    map[k] = 0;
  }
  if (nq === 0) return { queries: 0, recall, map };
  const maxK = Math.max(...ks);
  for (let q = 0; q < nq; q++) {
    const label = o.queryLabels[q];
    const relevantTotal = relevantCount(q);
    let hits = 0;
    let precisionSum = 0;
    let firstHit = Infinity;
    const apAt = new Map<number, number>();
    for (let i = 0; i < maxK; i++) {
      const id = o.ids[q * perQuery + i];
      if (id >= 0n && labelOf(id) === label) {
        hits++;
        precisionSum += hits / (i + 1);
        if (firstHit === Infinity) firstHit = i;
      }
      const rank = i + 1;
      if (ks.includes(rank)) apAt.set(rank, relevantTotal > 0 ? precisionSum / Math.min(rank, relevantTotal) : 0);
    }
    for (const k of ks) {
      if (firstHit < k) recall[k] += 1;
      map[k] += apAt.get(k) ?? 0;
    }
  }
  for (const k of ks) {
    recall[k] /= nq;
    map[k] /= nq;
  }
  return { queries: nq, recall, map };
}
