// Helpers for the pipeline tests: in-memory embedders with known outputs, and dot products.
import type { Embedder } from '../lib/pipeline/index';

/** An embedder that looks each input up in a table (or computes it), counting the batches it was asked for. */
export class TableEmbedder<Input> implements Embedder<Input> {
  readonly dim: number;
  readonly batchSize: number;
  batches: number[] = [];
  #vectorOf: (input: Input) => Float32Array;

  constructor(dim: number, vectorOf: (input: Input) => Float32Array, batchSize = 4) {
    this.dim = dim;
    this.batchSize = batchSize;
    this.#vectorOf = vectorOf;
  }

  async embed(inputs: readonly Input[]): Promise<Float32Array> {
    const out = new Float32Array(inputs.length * this.dim);
    for (let start = 0; start < inputs.length; start += this.batchSize) {
      const batch = inputs.slice(start, start + this.batchSize);
      this.batches.push(batch.length);
      batch.forEach((input, i) => out.set(this.#vectorOf(input), (start + i) * this.dim));
      await new Promise((resolve) => setImmediate(resolve)); // behave like a real async model
    }
    return out;
  }
}

export function dot(a: ArrayLike<number>, aOffset: number, b: ArrayLike<number>, bOffset: number, dim: number): number {
  let s = 0;
  for (let j = 0; j < dim; j++) s += a[aOffset + j] * b[bOffset + j];
  return s;
}

export function unit(values: number[]): Float32Array {
  const norm = Math.hypot(...values);
  return Float32Array.from(values, (v) => v / norm);
}
