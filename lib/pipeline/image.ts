// Image preprocessing for vision models, with sharp (an optional peer): decode, resize the shorter side,
// centre-crop, scale, normalise with a per-channel mean and std, and lay the pixels out as one float32 tensor
// (NCHW by default, as PyTorch-exported models expect; NHWC for TensorFlow-exported ones).
import { describe, expectChoice, expectInteger, expectNumber, expectOptions } from './args';
import { checkImageInputs, isRawImage, type ImageInput } from './embedder';
import { loadOptional } from './optional';

/** The part of sharp's API used here (declared locally so that quiver's types do not require sharp). */
interface SharpInstance {
  rotate(): SharpInstance;
  greyscale(): SharpInstance;
  toColourspace(space: string): SharpInstance;
  removeAlpha(): SharpInstance;
  resize(width: number, height: number, options: { kernel: string; fit: 'fill' }): SharpInstance;
  extract(region: { left: number; top: number; width: number; height: number }): SharpInstance;
  raw(): SharpInstance;
  toBuffer(options: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
}
type SharpFactory = (
  input?: string | Uint8Array,
  options?: { raw?: { width: number; height: number; channels: number }; failOn?: string },
) => SharpInstance;

export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'mitchell' | 'lanczos2' | 'lanczos3';
const KERNELS: readonly ResizeKernel[] = ['nearest', 'linear', 'cubic', 'mitchell', 'lanczos2', 'lanczos3'];

export interface ImagePreprocessing {
  /** Output size: one number for a square, or [height, width]. */
  size: number | readonly [number, number];
  /**
   * The shorter side is resized to this before the centre crop (default: the larger side of `size`, so the
   * crop only trims the longer side). ImageNet-style models use 256 for a 224 crop.
   */
  resize?: number;
  /** Multiplies each 0…255 pixel value before normalising (default 1/255). */
  scale?: number;
  /** Subtracted per channel after scaling (default 0 for every channel). */
  mean?: readonly number[];
  /** Divides per channel after the mean (default 1 for every channel). */
  std?: readonly number[];
  /** 3 (RGB, default) or 1 (grey). */
  channels?: 1 | 3;
  /** 'NCHW' (default) or 'NHWC'. */
  layout?: 'NCHW' | 'NHWC';
  /** sharp's resampling kernel (default 'cubic', as CLIP-style preprocessing uses). */
  kernel?: ResizeKernel;
}

export interface CheckedPreprocessing {
  height: number;
  width: number;
  resize: number;
  scale: number;
  mean: number[];
  std: number[];
  channels: 1 | 3;
  layout: 'NCHW' | 'NHWC';
  kernel: ResizeKernel;
}

const PREPROCESSING_KEYS = ['size', 'resize', 'scale', 'mean', 'std', 'channels', 'layout', 'kernel'] as const;
const MAX_SIDE = 8192;

function channelValues(value: unknown, name: string, channels: number, fallback: number, positive: boolean): number[] {
  if (value === undefined) return new Array(channels).fill(fallback);
  if (!Array.isArray(value)) throw new TypeError(`${name}: expected an array of ${channels} numbers, got ${describe(value)}`);
  if (value.length !== channels) throw new RangeError(`${name}: expected ${channels} numbers (one per channel), got ${value.length}`);
  return value.map((v, i) => {
    const x = expectNumber(v, `${name}[${i}]`);
    if (positive && x <= 0) throw new RangeError(`${name}[${i}]: expected a positive number, got ${x}`);
    return x;
  });
}

export function checkPreprocessing(options: unknown, name = 'preprocessing'): CheckedPreprocessing {
  if (options === undefined) throw new TypeError(`${name}: expected an object with at least { size }, got undefined`);
  const o = expectOptions<ImagePreprocessing>(options, name, PREPROCESSING_KEYS);
  let height: number;
  let width: number;
  if (Array.isArray(o.size)) {
    if (o.size.length !== 2) throw new RangeError(`${name}.size: expected [height, width], got an Array of length ${o.size.length}`);
    height = expectInteger(o.size[0], `${name}.size[0]`, 1, MAX_SIDE);
    width = expectInteger(o.size[1], `${name}.size[1]`, 1, MAX_SIDE);
  } else {
    height = width = expectInteger(o.size, `${name}.size`, 1, MAX_SIDE);
  }
  const channels = o.channels === undefined ? 3 : expectInteger(o.channels, `${name}.channels`, 1, 3);
  if (channels === 2) throw new RangeError(`${name}.channels: expected 1 or 3, got 2`);
  return {
    height,
    width,
    resize: o.resize === undefined ? Math.max(height, width) : expectInteger(o.resize, `${name}.resize`, 1, MAX_SIDE),
    scale: o.scale === undefined ? 1 / 255 : expectNumber(o.scale, `${name}.scale`),
    mean: channelValues(o.mean, `${name}.mean`, channels, 0, false),
    std: channelValues(o.std, `${name}.std`, channels, 1, true),
    channels: channels as 1 | 3,
    layout: o.layout === undefined ? 'NCHW' : expectChoice(o.layout, `${name}.layout`, ['NCHW', 'NHWC'] as const),
    kernel: o.kernel === undefined ? 'cubic' : expectChoice(o.kernel, `${name}.kernel`, KERNELS),
  };
}

function sharpModule(purpose: string): SharpFactory {
  // sharp exports its factory as the module itself; bundlers may wrap it as { default }.
  const module = loadOptional<SharpFactory | { default: SharpFactory }>('sharp', purpose);
  return typeof module === 'function' ? module : module.default;
}

/** Decodes any input to interleaved uint8 pixels with exactly `channels` channels, upright (EXIF applied). */
async function decode(sharp: SharpFactory, input: ImageInput, channels: 1 | 3) {
  let image = isRawImage(input)
    ? sharp(new Uint8Array(input.data.buffer, input.data.byteOffset, input.data.length), { raw: { width: input.width, height: input.height, channels: input.channels } })
    : sharp(input, { failOn: 'error' }).rotate();
  image = channels === 1 ? image.greyscale() : image.toColourspace('srgb');
  const { data, info } = await image.removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (info.channels === channels) return { data, width: info.width, height: info.height };
  // A grey source asked for as RGB keeps one channel through sharp's 'srgb' step: replicate it.
  const out = Buffer.alloc(info.width * info.height * channels);
  for (let p = 0, q = 0; p < data.length; p += info.channels) {
    for (let c = 0; c < channels; c++) out[q++] = data[p + Math.min(c, info.channels - 1)];
  }
  return { data: out, width: info.width, height: info.height };
}

/** Resizes the shorter side to p.resize (never below the crop) and cuts the centred p.height × p.width window. */
async function resizeAndCrop(sharp: SharpFactory, pixels: { data: Buffer; width: number; height: number }, p: CheckedPreprocessing) {
  const { width, height } = pixels;
  const factor = Math.max(p.resize / Math.min(width, height), p.width / width, p.height / height);
  const resizedWidth = Math.max(p.width, Math.round(width * factor));
  const resizedHeight = Math.max(p.height, Math.round(height * factor));
  let image = sharp(pixels.data, { raw: { width, height, channels: p.channels } });
  if (resizedWidth !== width || resizedHeight !== height) {
    image = image.resize(resizedWidth, resizedHeight, { kernel: p.kernel, fit: 'fill' });
  }
  // extract() after resize() crops the resized image (sharp applies them in call order).
  image = image.extract({
    left: Math.floor((resizedWidth - p.width) / 2),
    top: Math.floor((resizedHeight - p.height) / 2),
    width: p.width,
    height: p.height,
  });
  const { data, info } = await image.raw().toBuffer({ resolveWithObject: true });
  if (info.width !== p.width || info.height !== p.height || info.channels !== p.channels) {
    throw new Error(`image preprocessing produced ${info.width}×${info.height}×${info.channels}, expected ${p.width}×${p.height}×${p.channels}`);
  }
  return data;
}

/** Writes one image's normalised pixels into `out` at image slot `slot`, in p.layout order. */
function normalizeInto(out: Float32Array, slot: number, pixels: Uint8Array, p: CheckedPreprocessing): void {
  const plane = p.height * p.width;
  const base = slot * plane * p.channels;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < p.channels; c++) {
      const value = (pixels[i * p.channels + c] * p.scale - p.mean[c]) / p.std[c];
      out[p.layout === 'NCHW' ? base + c * plane + i : base + i * p.channels + c] = value;
    }
  }
}

/**
 * Prepares images for a vision model: n × channels × height × width floats (NCHW; or NHWC), where each value
 * is (pixel · scale − mean[c]) / std[c]. Images are decoded in parallel on sharp's threads.
 */
export async function prepareImages(inputs: readonly ImageInput[], preprocessing: ImagePreprocessing): Promise<Float32Array> {
  checkImageInputs(inputs, 'inputs');
  const p = checkPreprocessing(preprocessing);
  return prepareChecked(inputs, p, 'prepareImages');
}

/** prepareImages() for arguments already checked (the embedders check theirs up front). */
export async function prepareChecked(inputs: readonly ImageInput[], p: CheckedPreprocessing, purpose: string): Promise<Float32Array> {
  const sharp = sharpModule(purpose);
  const out = new Float32Array(inputs.length * p.channels * p.height * p.width);
  await Promise.all(
    inputs.map(async (input, slot) => {
      let decoded;
      try {
        decoded = await decode(sharp, input, p.channels);
      } catch (error) {
        const what = typeof input === 'string' ? JSON.stringify(input) : isRawImage(input) ? 'raw pixels' : 'encoded bytes';
        throw new Error(`inputs[${slot}]: cannot read the image (${what}): ${(error as Error).message}`, { cause: error });
      }
      normalizeInto(out, slot, await resizeAndCrop(sharp, decoded, p), p);
    }),
  );
  return out;
}
