// Speed ratios against the peers measured in the same run. A ratio only means something at equal accuracy,
// so each quiver configuration is compared with the peer's fastest configuration whose 10-recall@10 is at
// least quiver's (a peer that never gets there has no ratio). Two ways of querying are compared:
//   single: one query per call, quiver on one thread (ann-benchmarks' setting);
//   batch:  all queries in one call on all threads (the throughput setting).
// A peer that cannot run that way is compared as it can run, and the ratio says so (peerCondition).
import type { QpsFigures, SpeedRatio, SuiteResult, SuiteRow } from './types';

const EPSILON = 1e-9;

function tenRecall(row: SuiteRow): number | undefined {
  return row.kRecall['10'];
}

function modeFigure(qps: QpsFigures, mode: 'single' | 'batch'): { value: number | null; condition?: string } {
  if (mode === 'single') {
    if (qps.single1 !== null) return { value: qps.single1 };
    return { value: qps.singleAll, condition: qps.singleAll === null ? undefined : 'all threads (no 1-thread mode)' };
  }
  if (qps.batchAll !== null) return { value: qps.batchAll };
  return { value: qps.batch1, condition: qps.batch1 === null ? undefined : 'one thread (no multi-thread mode)' };
}

export function speedRatios(result: Pick<SuiteResult, 'rows'>): SpeedRatio[] {
  const ours = result.rows.filter((r) => r.system === 'quiver');
  const peerNames = [...new Set(result.rows.filter((r) => r.system !== 'quiver' && r.role === 'speed').map((r) => r.system))];
  const ratios: SpeedRatio[] = [];
  for (const row of ours) {
    const recall = tenRecall(row);
    if (recall === undefined) continue;
    for (const peer of peerNames) {
      const candidates = result.rows.filter((r) => r.system === peer && (tenRecall(r) ?? -1) >= recall - EPSILON);
      for (const mode of ['single', 'batch'] as const) {
        const mine = mode === 'single' ? row.qps.single1 : row.qps.batchAll;
        if (mine === null) continue;
        let best: { row: SuiteRow; value: number; condition?: string } | undefined;
        for (const candidate of candidates) {
          const figure = modeFigure(candidate.qps, mode);
          if (figure.value !== null && (!best || figure.value > best.value)) {
            best = { row: candidate, value: figure.value, condition: figure.condition };
          }
        }
        ratios.push({
          spec: row.spec,
          params: row.params,
          recall,
          peer,
          mode,
          ours: mine,
          peerSpec: best?.row.spec ?? null,
          peerParams: best?.row.params ?? null,
          peerRecall: best ? tenRecall(best.row) ?? null : null,
          theirs: best?.value ?? null,
          ratio: best ? mine / best.value : null,
          ...(best?.condition ? { peerCondition: best.condition } : {}),
        });
      }
    }
  }
  return ratios;
}
