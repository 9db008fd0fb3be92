// Shared test helpers: seeded data, brute-force reference, paths to the real datasets.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const ROOT = path.join(__dirname, '..');
export const DEMO_DATA = path.join(ROOT, 'data', 'bigann10k');

/** The shared real datasets: QUIVER_DATA_DIR, or ../shared/data beside the checkout; undefined when absent. */
export function sharedDataDir(): string | undefined {
  const candidates = [process.env.QUIVER_DATA_DIR, path.join(ROOT, '..', 'shared', 'data')].filter(Boolean) as string[];
  return candidates.find((d) => fs.existsSync(d));
}

/** Deterministic uniform floats in [-1, 1) (mulberry32). */
export function randomFloats(count: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * Whether two typed arrays hold the same bytes: an exact comparison for large arrays, where tap's t.same walks
 * them element by element through its generic deep equality (about 20 s for a 3.9 M-float array here).
 */
export function sameBytes(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

export type RefMetric = 'l2' | 'ip' | 'cosine';

/** Exact top-k by brute force in float64: ids (row numbers) and user-facing scores. */
export function bruteForce(base: Float32Array, queries: Float32Array, dim: number, k: number, metric: RefMetric = 'l2') {
  const n = base.length / dim;
  const nq = queries.length / dim;
  const ids: number[][] = [];
  const scores: number[][] = [];
  const norm = (v: Float32Array, o: number) => {
    let s = 0;
    for (let j = 0; j < dim; j++) s += v[o + j] * v[o + j];
    return Math.sqrt(s);
  };
  for (let q = 0; q < nq; q++) {
    const all: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < dim; j++) {
        const a = queries[q * dim + j];
        const b = base[i * dim + j];
        s += metric === 'l2' ? (a - b) * (a - b) : a * b;
      }
      if (metric === 'cosine') s /= norm(queries, q * dim) * norm(base, i * dim);
      all.push([s, i]);
    }
    all.sort((x, y) => (metric === 'l2' ? x[0] - y[0] : y[0] - x[0]) || x[1] - y[1]);
    ids.push(all.slice(0, k).map((x) => x[1]));
    scores.push(all.slice(0, k).map((x) => x[0]));
  }
  return { ids, scores };
}
