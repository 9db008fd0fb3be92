// Turns a suite result into the three files a reader looks at: results.json (everything), results.md (tables)
// and results.svg (recall–QPS plot: x = 10-recall@10, y = queries/s on a log scale, one series per method).
import * as fs from 'node:fs';
import * as path from 'node:path';

import type { AnchorRow, QpsFigures, SearchParams, SpeedRatio, SuiteResult, SuiteRow } from './types';
import { faissFactoryFor } from './peers';

const num = (value: number | null | undefined, digits = 0): string =>
  value === null || value === undefined || !Number.isFinite(value)
    ? '—'
    : value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const qpsText = (value: number | null | undefined): string =>
  value === null || value === undefined ? '—' : value >= 100 ? num(value) : num(value, 1);

const ratioText = (value: number | null | undefined): string =>
  value === null || value === undefined ? '—' : value >= 10 ? `${num(value, 0)}×` : `${num(value, 2)}×`;

export function paramsText(params: SearchParams | null | undefined): string {
  if (!params) return '';
  return Object.entries(params)
    .map(([key, value]) => `${key}=${value}`)
    .join(' ');
}

function table(header: string[], rows: string[][], alignRightFrom = 1): string {
  const line = (cells: string[]) => `| ${cells.map((c) => c.replace(/\|/g, '\\|')).join(' | ')} |`;
  const rule = `|${header.map((_, i) => (i >= alignRightFrom ? '---:' : '---')).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

function systemLabel(row: Pick<SuiteRow, 'system' | 'systemVersion'>): string {
  return `${row.system} ${row.systemVersion}`;
}

function resultsTable(result: SuiteResult): string {
  const header = [
    'system', 'index', 'params', 'bytes/vec', 'train s', 'add s', 'RSS Δ MB',
    '1-R@1', '1-R@10', '1-R@100', '10-R@10', '100-R@100',
    'batch q/s 1t', 'batch q/s all', 'single q/s 1t', 'single q/s all',
  ];
  const rows = result.rows.map((r) => [
    systemLabel(r),
    r.spec,
    paramsText(r.params),
    num(r.bytesPerVector, Number.isInteger(r.bytesPerVector) ? 0 : 1),
    num(r.trainSeconds, 2),
    num(r.addSeconds, 2),
    r.rssDeltaBytes === null ? '—' : num(r.rssDeltaBytes / 2 ** 20, 1),
    num(r.oneRecall['1'], 3),
    num(r.oneRecall['10'], 3),
    num(r.oneRecall['100'], 3),
    num(r.kRecall['10'], 3),
    num(r.kRecall['100'], 3),
    qpsText(r.qps.batch1),
    qpsText(r.qps.batchAll),
    qpsText(r.qps.single1),
    qpsText(r.qps.singleAll),
  ]);
  return table(header, rows, 3);
}

function ratioTable(ratios: SpeedRatio[]): string {
  const key = (r: SpeedRatio) => `${r.spec}|${paramsText(r.params)}|${r.peer}`;
  const grouped = new Map<string, { single?: SpeedRatio; batch?: SpeedRatio }>();
  for (const r of ratios) {
    const entry = grouped.get(key(r)) ?? {};
    entry[r.mode] = r;
    grouped.set(key(r), entry);
  }
  const cell = (r: SpeedRatio | undefined) => {
    if (!r) return '—';
    if (r.ratio === null) return `never reaches ${num(r.recall, 3)}`;
    const condition = r.peerCondition ? ` (peer: ${r.peerCondition})` : '';
    return `**${ratioText(r.ratio)}** (${qpsText(r.ours)} vs ${qpsText(r.theirs)} at ${r.peerSpec} ${paramsText(r.peerParams)}, 10-R@10 ${num(r.peerRecall, 3)})${condition}`;
  };
  const rows = [...grouped.values()].map(({ single, batch }) => {
    const any = (single ?? batch)!;
    return [`${any.spec} ${paramsText(any.params)}`.trim(), num(any.recall, 3), any.peer, cell(single), cell(batch)];
  });
  return table(['quiver index', '10-R@10', 'peer', 'one query per call (quiver 1 thread)', 'batch, all threads'], rows, 5);
}

function anchorSection(result: SuiteResult): string {
  const anchors = result.anchors;
  if (!anchors) return '';
  // The quiver row of the anchor's spec with the anchor's parameters (nprobe for IVF rows), and no others.
  const ours = (a: AnchorRow) => {
    const wanted = a.params ?? {};
    return a.quiverSpec
      ? result.rows.find(
          (r) =>
            r.system === 'quiver' &&
            r.spec === a.quiverSpec &&
            Object.keys(r.params).length === Object.keys(wanted).length &&
            Object.entries(wanted).every(([key, value]) => (r.params as Record<string, unknown>)[key] === value),
        )
      : undefined;
  };
  const faissHere = (spec: string | undefined) =>
    spec ? result.rows.find((r) => r.system === 'faiss' && r.spec === faissFactoryFor(spec)) : undefined;
  const rows = anchors.rows.map((a: AnchorRow) => {
    const mine = ours(a);
    const reference = faissHere(a.quiverSpec);
    const ratio = (x: number | null | undefined, y: number | null | undefined) => (x && y ? ratioText(x / y) : '—');
    return [
      `${a.index}${a.params ? ' ' + paramsText(a.params) : ''}`,
      a.quiverSpec && mine ? a.quiverSpec : '—',
      num(a.bytesPerVector),
      `${num(mine?.kRecall['10'], 3)} / ${num(a.tenRecallAt10, 3)} / ${num(reference?.kRecall['10'], 3)}`,
      `${qpsText(mine?.qps.single1)} / ${qpsText(a.singleQps)}`,
      ratio(mine?.qps.single1, a.singleQps),
      `${qpsText(mine?.qps.batch1)} / ${qpsText(a.batchQps)}`,
      ratio(mine?.qps.batch1, a.batchQps),
      `${num(mine?.trainSeconds, 2)} / ${num(a.trainSeconds, 2)}`,
    ];
  });
  return [
    `## Against the ${anchors.system} anchors (measured elsewhere, not in this run)`,
    '',
    `Source: ${anchors.source}. Conditions: ${anchors.conditions}`,
    'Our figures here are at one thread to match; our training uses all threads. The last recall is Debian\'s faiss 1.7.3',
    'measured in this run on the same data (same algorithm, no SIMD), a check that the anchor\'s recall is reproducible.',
    '',
    table(
      ['anchor index', 'quiver spec', 'bytes/vec', '10-R@10 ours / anchor / faiss 1.7.3 here', 'single q/s 1t ours / anchor', 'ratio', 'batch q/s 1t ours / anchor', 'ratio', 'train s ours / anchor'],
      rows,
      2,
    ),
    '',
  ].join('\n');
}

export function formatMarkdown(result: SuiteResult): string {
  const { dataset: d, machine: m, plan } = result;
  const extraFacts = Object.entries(m)
    .filter(([key]) => !['cpu', 'cores', 'node', 'platform', 'date', 'simd', 'quiverVersion'].includes(key))
    .map(([key, value]) => `${key} ${value}`);
  const notes = new Map<string, string>();
  for (const row of result.rows) for (const note of row.notes) notes.set(`${row.system}: ${note}`, '');
  for (const row of result.rows) if (row.bytesNote) notes.set(`${row.system} bytes/vec: ${row.bytesNote}`, '');
  const hasAccuracyOnly = result.rows.some((r) => r.role === 'accuracy');
  const load = Math.max(Number(m['load average at start'] ?? 0), Number(m['load average at end'] ?? 0));
  const loaded = load > m.cores
    ? [`**The machine was busy with other work** (load average up to ${load.toFixed(1)} on ${m.cores} threads): q/s figures are understated and noisy, ` +
        'all-thread figures most of all, build times are inflated, and ratios between systems are only indicative; recall and bytes/vector are unaffected.', '']
    : [];
  return [
    `# quiver benchmark suite: ${d.name}`,
    '',
    `${d.description}. ${num(d.baseCount)} base vectors, ${num(d.queryCount)} queries, d = ${d.dim}, metric ${d.metric}, ` +
      `trained on the first ${num(d.trainCount)}; ground truth ${d.gtK} deep.`,
    '',
    `Machine: ${m.cpu}, ${m.cores} threads, Node ${m.node}, ${m.platform}, quiver ${m.quiverVersion} with SIMD ${m.simd}` +
      `${extraFacts.length ? ', ' + extraFacts.join(', ') : ''}; ${m.date}.`,
    '',
    `Protocol: k = ${plan.k} results per query for timing and recall@1/@10; recall@100 from a second search with k = ${plan.recallK}. ` +
      `Each q/s figure is the best of ${plan.rounds} rounds of at least ${plan.minSeconds} s each, after one warm-up call. "1t" = one thread, "all" = ${plan.threads} threads; ` +
      'batch = all queries in one call, single = one query per call (synchronous where the library allows). ' +
      '1-R@R = faiss\'s 1-recall@R (true nearest neighbour within the first R); k-R@k = ann-benchmarks\' k-recall@k. ' +
      'RSS Δ = resident memory after building minus before (negative where memory from earlier steps was returned meanwhile). Training uses all threads.',
    '',
    ...loaded,
    '## Results',
    '',
    resultsTable(result),
    '',
    ...(hasAccuracyOnly
      ? ['faiss here is Debian\'s python3-faiss 1.7.3, built without SIMD: its recall is a reference, its speed is not an anchor.', '']
      : []),
    '## Speed against the peers in this run',
    '',
    'Ratio = quiver q/s ÷ the peer\'s q/s, taking the peer\'s fastest configuration whose 10-recall@10 is at least quiver\'s.',
    '',
    result.ratios.length ? ratioTable(result.ratios) : '(no peer measured for speed in this run)',
    '',
    anchorSection(result),
    ...(result.skipped.length
      ? ['## Skipped', '', ...result.skipped.map((s) => `- ${s.system}${s.spec ? ' ' + s.spec : ''}: ${s.reason}`), '']
      : []),
    ...(notes.size ? ['## Notes', '', ...[...notes.keys()].map((n) => `- ${n}`), ''] : []),
  ].join('\n');
}

// ------------------------------------------------------------------------------------------------ SVG plot

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

const escapeXml = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function plottedQps(qps: QpsFigures): number | null {
  return qps.single1 ?? qps.singleAll;
}

function compactNumber(value: number): string {
  if (value >= 1e6) return `${value / 1e6}M`;
  if (value >= 1e3) return `${value / 1e3}k`;
  return String(value);
}

interface Series {
  name: string;
  points: { x: number; y: number; label: string }[];
  color: string;
  dashed: boolean;
  marker: 'circle' | 'diamond';
}

/** The recall–QPS plot: one series per system and index, points along its parameter sweep. */
export function renderSvg(result: SuiteResult): string {
  const groups = new Map<string, SuiteRow[]>();
  for (const row of result.rows) {
    const key = `${row.system}\u0000${row.spec}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  const series: Series[] = [];
  let colorIndex = 0;
  for (const rows of groups.values()) {
    const points = rows
      .map((r) => ({ x: r.kRecall['10'], y: plottedQps(r.qps), label: paramsText(r.params) }))
      .filter((p): p is { x: number; y: number; label: string } => p.x !== undefined && p.y !== null && p.y > 0)
      .sort((a, b) => a.x - b.x);
    if (points.length === 0) continue;
    const first = rows[0];
    const accuracyOnly = first.role === 'accuracy';
    series.push({
      name: `${first.system} ${first.spec}${accuracyOnly ? ' (no SIMD)' : ''}`,
      points,
      color: PALETTE[colorIndex++ % PALETTE.length],
      dashed: accuracyOnly,
      marker: 'circle',
    });
  }
  const anchorPoints = (result.anchors?.rows ?? [])
    .filter((a) => typeof a.tenRecallAt10 === 'number' && typeof a.singleQps === 'number' && a.singleQps > 0)
    .map((a) => ({ x: a.tenRecallAt10 as number, y: a.singleQps as number, label: a.index }));
  if (anchorPoints.length) {
    series.push({ name: `${result.anchors!.system} (anchor, elsewhere)`, points: anchorPoints, color: '#000000', dashed: false, marker: 'diamond' });
  }

  const all = series.flatMap((s) => s.points);
  const minX = all.length ? Math.min(...all.map((p) => p.x)) : 0;
  const x0 = Math.max(0, Math.floor(minX * 10) / 10 - (minX % 0.1 < 0.02 ? 0.1 : 0));
  const x1 = 1;
  const ys = all.map((p) => p.y);
  const y0 = ys.length ? Math.floor(Math.log10(Math.min(...ys))) : 0;
  const y1 = ys.length ? Math.max(y0 + 1, Math.ceil(Math.log10(Math.max(...ys)))) : 1;

  const width = 900;
  const legendRow = 18;
  const plot = { left: 70, top: 44, width: 480, height: 340 };
  const height = Math.max(plot.top + plot.height + 56, plot.top + series.length * legendRow + 20);
  const sx = (x: number) => plot.left + ((x - x0) / (x1 - x0)) * plot.width;
  const sy = (y: number) => plot.top + plot.height - ((Math.log10(y) - y0) / (y1 - y0)) * plot.height;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${plot.left}" y="20" font-size="14" font-weight="bold">${escapeXml(`${result.dataset.name}: recall vs queries per second`)}</text>`,
    `<text x="${plot.left}" y="36" fill="#555555">${escapeXml(`one query per call, one thread (all threads where a peer has no choice); ${result.machine.cpu}, ${result.machine.date.slice(0, 10)}`)}</text>`,
  );
  // grid and axes
  const xStep = x1 - x0 > 0.5 ? 0.1 : 0.05;
  for (let x = x0; x <= x1 + 1e-9; x += xStep) {
    const px = sx(x).toFixed(1);
    out.push(`<line x1="${px}" y1="${plot.top}" x2="${px}" y2="${plot.top + plot.height}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${px}" y="${plot.top + plot.height + 16}" text-anchor="middle">${x.toFixed(xStep < 0.1 ? 2 : 1)}</text>`);
  }
  for (let e = y0; e <= y1; e++) {
    const py = sy(10 ** e).toFixed(1);
    out.push(`<line x1="${plot.left}" y1="${py}" x2="${plot.left + plot.width}" y2="${py}" stroke="#d0d0d0"/>`);
    out.push(`<text x="${plot.left - 6}" y="${py}" text-anchor="end" dominant-baseline="middle">${compactNumber(10 ** e)}</text>`);
    if (e < y1) {
      for (let m = 2; m < 10; m++) {
        const pm = sy(m * 10 ** e).toFixed(1);
        out.push(`<line x1="${plot.left}" y1="${pm}" x2="${plot.left + plot.width}" y2="${pm}" stroke="#f2f2f2"/>`);
      }
    }
  }
  out.push(`<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}" fill="none" stroke="#333333"/>`);
  out.push(`<text x="${plot.left + plot.width / 2}" y="${plot.top + plot.height + 38}" text-anchor="middle">10-recall@10</text>`);
  out.push(
    `<text x="18" y="${plot.top + plot.height / 2}" text-anchor="middle" transform="rotate(-90 18 ${plot.top + plot.height / 2})">queries per second (log scale)</text>`,
  );
  // series
  const marker = (s: Series, px: number, py: number, title: string) => {
    const tip = `<title>${escapeXml(title)}</title>`;
    if (s.marker === 'diamond') {
      return `<path d="M${px.toFixed(1)} ${(py - 5).toFixed(1)} l5 5 l-5 5 l-5 -5 z" fill="none" stroke="${s.color}" stroke-width="1.5">${tip}</path>`;
    }
    return `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="3.5" fill="${s.dashed ? '#ffffff' : s.color}" stroke="${s.color}" stroke-width="1.5">${tip}</circle>`;
  };
  // Anchors first, so this run's markers stay visible where they coincide.
  const drawOrder = [...series.filter((s) => s.marker === 'diamond'), ...series.filter((s) => s.marker !== 'diamond')];
  for (const s of drawOrder) {
    if (s.points.length > 1 && s.marker === 'circle') {
      const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${sx(p.x).toFixed(1)} ${sy(p.y).toFixed(1)}`).join(' ');
      out.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`);
    }
    for (const p of s.points) {
      out.push(marker(s, sx(p.x), sy(p.y), `${s.name} ${p.label}: 10-recall@10 ${p.x.toFixed(3)}, ${Math.round(p.y)} q/s`));
    }
  }
  // legend
  const legendX = plot.left + plot.width + 20;
  series.forEach((s, i) => {
    const y = plot.top + 8 + i * legendRow;
    if (s.marker === 'circle' && s.points.length > 1) {
      out.push(`<line x1="${legendX - 2}" y1="${y}" x2="${legendX + 14}" y2="${y}" stroke="${s.color}" stroke-width="1.5"${s.dashed ? ' stroke-dasharray="4 3"' : ''}/>`);
    }
    out.push(marker(s, legendX + 6, y, s.name));
    out.push(`<text x="${legendX + 18}" y="${y}" dominant-baseline="middle">${escapeXml(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes results.json, results.md and results.svg into `dir` (created if needed); returns their paths. */
export function writeSuiteOutputs(result: SuiteResult, dir: string): { json: string; markdown: string; svg: string } {
  fs.mkdirSync(dir, { recursive: true });
  const files = { json: path.join(dir, 'results.json'), markdown: path.join(dir, 'results.md'), svg: path.join(dir, 'results.svg') };
  fs.writeFileSync(files.json, JSON.stringify(result, null, 2) + '\n');
  fs.writeFileSync(files.markdown, formatMarkdown(result));
  fs.writeFileSync(files.svg, renderSvg(result));
  return files;
}
