// Recall measures, as the two communities define them.
//   oneRecallAt (faiss's "1-recall@R"): the fraction of queries whose true nearest neighbour is among the
//     first R results.
//   kRecallAt (ann-benchmarks' "k-recall@k", also "10-recall@10"): the fraction of the true k nearest
//     neighbours found among the first k results, averaged over queries.
// `ids` is nq × resultK (best first, as search returns); `groundTruth` is nq × gtK neighbour ids.

function check(ids: ArrayLike<bigint | number>, resultK: number, groundTruth: ArrayLike<number | bigint>, gtK: number) {
  if (resultK < 1 || gtK < 1) throw new RangeError('resultK and gtK must be >= 1');
  const nq = ids.length / resultK;
  if (!Number.isInteger(nq) || groundTruth.length < nq * gtK) {
    throw new RangeError(
      `ids (${ids.length} = nq × ${resultK}) and groundTruth (${groundTruth.length} = nq × ${gtK}) do not match`,
    );
  }
  return nq;
}

export function oneRecallAt(
  ids: ArrayLike<bigint | number>,
  resultK: number,
  groundTruth: ArrayLike<number | bigint>,
  gtK: number,
  r: number,
): number {
  const nq = check(ids, resultK, groundTruth, gtK);
  if (r > resultK) throw new RangeError(`r: ${r} exceeds the ${resultK} results per query`);
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const nearest = BigInt(groundTruth[q * gtK]);
    for (let i = 0; i < r; i++) {
      if (BigInt(ids[q * resultK + i]) === nearest) {
        hits++;
        break;
      }
    }
  }
  return hits / nq;
}

export function kRecallAt(
  ids: ArrayLike<bigint | number>,
  resultK: number,
  groundTruth: ArrayLike<number | bigint>,
  gtK: number,
  k: number,
): number {
  const nq = check(ids, resultK, groundTruth, gtK);
  if (k > resultK || k > gtK) throw new RangeError(`k: ${k} exceeds the results (${resultK}) or ground truth (${gtK})`);
  let hits = 0;
  for (let q = 0; q < nq; q++) {
    const truth = new Set<bigint>();
    for (let i = 0; i < k; i++) truth.add(BigInt(groundTruth[q * gtK + i]));
    for (let i = 0; i < k; i++) if (truth.has(BigInt(ids[q * resultK + i]))) hits++;
  }
  return hits / (nq * k);
}
