// The Embedder contract and the pieces every embedder shares: input kinds, argument checks and batching.
import { describe, expectArray, expectFunction, expectInteger, expectString } from './args';

/**
 * Turns inputs into vectors. `embed` resolves to inputs.length × dim floats, row i for input i, and splits
 * the work into batches of at most `batchSize` inputs itself, so callers may pass any number of inputs.
 */
export interface Embedder<Input> {
  /** Length of each vector. */
  readonly dim: number;
  /** Inputs per model call. */
  readonly batchSize: number;
  embed(inputs: readonly Input[]): Promise<Float32Array>;
  /** Releases the model, where there is one to release. */
  close?(): Promise<void>;
}

/** Decoded pixels, row-major, interleaved channels (1 grey, 2 grey + alpha, 3 RGB, 4 RGBA). */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/** An image: a file path, the bytes of an encoded file (JPEG, PNG, WebP, …), or decoded pixels. */
export type ImageInput = string | Uint8Array | RawImage;

export const MAX_BATCH_SIZE = 4096;
const MAX_IMAGE_SIDE = 1 << 15;

export function checkBatchSize(value: unknown, name: string, fallback: number): number {
  return value === undefined ? fallback : expectInteger(value, name, 1, MAX_BATCH_SIZE);
}

export function isRawImage(value: unknown): value is RawImage {
  return typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && 'data' in value && 'width' in value;
}

/** Checks one image input; `name` is how the error names it (e.g. `inputs[3]`). */
export function checkImageInput(value: unknown, name: string): ImageInput {
  if (typeof value === 'string') {
    if (value.length === 0) throw new RangeError(`${name}: expected an image file path, got an empty string`);
    return value;
  }
  if (value instanceof Uint8Array && !(value instanceof Uint8ClampedArray)) {
    if (value.length === 0) throw new RangeError(`${name}: expected the bytes of an encoded image, got 0 bytes`);
    return value;
  }
  if (isRawImage(value)) {
    const { data, width, height, channels } = value;
    if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray)) {
      throw new TypeError(`${name}.data: expected a Uint8Array of pixels, got ${describe(data)}`);
    }
    expectInteger(width, `${name}.width`, 1, MAX_IMAGE_SIDE);
    expectInteger(height, `${name}.height`, 1, MAX_IMAGE_SIDE);
    expectInteger(channels, `${name}.channels`, 1, 4);
    if (data.length !== width * height * channels) {
      throw new RangeError(
        `${name}.data: expected width × height × channels = ${width} × ${height} × ${channels} = ${width * height * channels} bytes, got ${data.length}`,
      );
    }
    return value;
  }
  throw new TypeError(
    `${name}: expected an image (a file path, a Uint8Array of an encoded file, or { data, width, height, channels }), got ${describe(value)}`,
  );
}

export function checkImageInputs(inputs: unknown, name = 'inputs'): readonly ImageInput[] {
  const list = expectArray(inputs, name);
  list.forEach((x, i) => checkImageInput(x, `${name}[${i}]`));
  return list as ImageInput[];
}

export function checkTextInputs(inputs: unknown, name = 'inputs'): readonly string[] {
  const list = expectArray(inputs, name);
  list.forEach((x, i) => expectString(x, `${name}[${i}]`));
  return list as string[];
}

/**
 * Runs `embedBatch` over consecutive slices of `inputs` (one at a time, so that a model is never asked for
 * more memory than one batch needs) and packs the rows into one n × dim array.
 */
export async function embedInBatches<Input>(
  inputs: readonly Input[],
  batchSize: number,
  dim: number,
  embedBatch: (batch: readonly Input[]) => Promise<Float32Array>,
): Promise<Float32Array> {
  expectArray(inputs, 'inputs', false);
  expectInteger(batchSize, 'batchSize', 1, MAX_BATCH_SIZE);
  expectInteger(dim, 'dim', 1, 1 << 20);
  expectFunction(embedBatch, 'embedBatch');
  const out = new Float32Array(inputs.length * dim);
  for (let start = 0; start < inputs.length; start += batchSize) {
    const batch = inputs.slice(start, start + batchSize);
    const rows: unknown = await embedBatch(batch);
    if (!(rows instanceof Float32Array) || rows.length !== batch.length * dim) {
      throw new TypeError(`embedBatch: expected a Float32Array of ${batch.length} × ${dim} floats for ${batch.length} inputs, got ${describe(rows)}`);
    }
    out.set(rows, start * dim);
  }
  return out;
}

/** Checks that `value` behaves like an Embedder (dim, batchSize, embed) and returns it typed. */
export function checkEmbedder<Input>(value: unknown, name: string): Embedder<Input> {
  const e = value as Partial<Embedder<Input>> | null;
  if (e === null || typeof e !== 'object' || typeof e.embed !== 'function') {
    throw new TypeError(`${name}: expected an Embedder (an object with embed(), dim and batchSize), got ${describe(value)}`);
  }
  expectInteger(e.dim, `${name}.dim`, 1, 1 << 20);
  expectInteger(e.batchSize, `${name}.batchSize`, 1, MAX_BATCH_SIZE);
  return e as Embedder<Input>;
}
