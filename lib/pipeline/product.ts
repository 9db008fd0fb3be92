// ProductEmbedder: one vector for a product from its image and its text (title, description), in the spirit
// of ITEm (image-text embedding of products). Each modality has its own embedder; the fusion is either a
// weighted concatenation of the L2-normalised parts or a learned head given as an ONNX model.
import { describe, expectBoolean, expectChoice, expectNumber, expectOptions, expectString, optionalInteger } from './args';
import { checkEmbedder, checkImageInput, checkBatchSize, type Embedder, type ImageInput } from './embedder';
import { checkModelSource, lastFixedSize, metadataOf, openSession, ort, pickName, toFloat32, type OnnxModelSource, type OrtSession } from './onnx';
import { normalizeRowsUnchecked } from './vectors';

/** A product: an image, a text, or both (a query may have just one). */
export interface ProductInput {
  image?: ImageInput;
  text?: string;
}

/**
 * Weighted concatenation: [a·û, b·t̂] / √(a² + b²) over the parts present, where û and t̂ are the unit-length
 * image and text embeddings. Every fused vector has unit length, and for two products with both parts
 * dot(p, q) = (a²·cos(image) + b²·cos(text)) / (a² + b²): the weights set how much each modality counts.
 * A part that is absent contributes zeros, so a text-only query ranks products by their text alone.
 */
export interface ConcatFusion {
  type: 'concat';
  /** Default 1. */
  imageWeight?: number;
  /** Default 1. */
  textWeight?: number;
}

/**
 * A learned fusion head as an ONNX model. With two inputs it gets the unit-length image and text embeddings
 * separately ([batch, imageDim] and [batch, textDim]); with one input, their concatenation. An absent part
 * is fed as zeros.
 */
export interface OnnxFusion {
  type: 'onnx';
  model: OnnxModelSource;
  /** Names of the model inputs (defaults: 'image' and 'text', else the model's first and second input). */
  names?: { image?: string; text?: string };
  /** The output holding the fused vectors (default: the first output). */
  output?: string;
  /** Scale each fused vector to unit length (default true). */
  normalize?: boolean;
  threads?: number;
}

export type Fusion = ConcatFusion | OnnxFusion;

export interface ProductEmbedderOptions {
  image: Embedder<ImageInput>;
  text: Embedder<string>;
  /** Default { type: 'concat', imageWeight: 1, textWeight: 1 }. */
  fusion?: Fusion;
  /** Products per batch (default: the smaller batch size of the two embedders). */
  batchSize?: number;
}

/** The parts of a batch of products: unit-length embeddings, zeros where a product lacks that part. */
export interface ProductParts {
  image: Float32Array;
  text: Float32Array;
  hasImage: boolean[];
  hasText: boolean[];
}

interface FusionHead {
  dim: number;
  fuse(parts: ProductParts, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}

function concatHead(imageDim: number, textDim: number, imageWeight: number, textWeight: number): FusionHead {
  const dim = imageDim + textDim;
  return {
    dim,
    async fuse(parts, n) {
      const out = new Float32Array(n * dim);
      for (let i = 0; i < n; i++) {
        const a = parts.hasImage[i] ? imageWeight : 0;
        const b = parts.hasText[i] ? textWeight : 0;
        const norm = Math.sqrt(a * a + b * b);
        if (norm === 0) continue;
        for (let j = 0; j < imageDim; j++) out[i * dim + j] = (a / norm) * parts.image[i * imageDim + j];
        for (let j = 0; j < textDim; j++) out[i * dim + imageDim + j] = (b / norm) * parts.text[i * textDim + j];
      }
      return out;
    },
    async close() {},
  };
}

async function onnxHead(f: OnnxFusion, imageDim: number, textDim: number): Promise<FusionHead> {
  const o = expectOptions<OnnxFusion>(f, 'options.fusion', ['type', 'model', 'names', 'output', 'normalize', 'threads']);
  const source = checkModelSource(o.model);
  const names = expectOptions<NonNullable<OnnxFusion['names']>>(o.names, 'options.fusion.names', ['image', 'text']);
  if (names.image !== undefined) expectString(names.image, 'options.fusion.names.image');
  if (names.text !== undefined) expectString(names.text, 'options.fusion.names.text');
  if (o.output !== undefined) expectString(o.output, 'options.fusion.output');
  const normalize = o.normalize === undefined ? true : expectBoolean(o.normalize, 'options.fusion.normalize');
  const threads = optionalInteger(o.threads, 'options.fusion.threads', 0, 1024);
  const session: OrtSession = await openSession(source, threads, 'ProductEmbedder fusion');
  try {
    const runtime = ort('ProductEmbedder fusion');
    const inputs = session.inputNames;
    if (inputs.length < 1 || inputs.length > 2) throw new RangeError(`options.fusion.model: expected a model with 1 or 2 inputs, it has ${inputs.length}`);
    const output = pickName(session, 'output', o.output, 'options.fusion.output', session.outputNames[0]);
    const dim = lastFixedSize(metadataOf(session.outputMetadata, output));
    if (dim === undefined) throw new RangeError(`options.fusion.model: its output ${JSON.stringify(output)} must have a fixed last dimension`);
    const separate = inputs.length === 2;
    const imageName = separate ? pickName(session, 'input', names.image, 'options.fusion.names.image', inputs.includes('image') ? 'image' : inputs[0]) : inputs[0];
    const textName = separate ? pickName(session, 'input', names.text, 'options.fusion.names.text', inputs.includes('text') ? 'text' : inputs[1]) : '';
    if (separate && imageName === textName) throw new RangeError(`options.fusion.names: image and text name the same input ${JSON.stringify(imageName)}`);
    const expectWidth = (name: string, width: number, what: string) => {
      const declared = lastFixedSize(metadataOf(session.inputMetadata, name));
      if (declared !== undefined && declared !== width) {
        throw new RangeError(`options.fusion.model: its input ${JSON.stringify(name)} takes ${declared} values per row, but the ${what} has ${width}`);
      }
    };
    if (separate) {
      expectWidth(imageName, imageDim, 'image embedder');
      expectWidth(textName, textDim, 'text embedder');
    } else {
      expectWidth(imageName, imageDim + textDim, 'concatenation of the image and text embeddings');
    }
    return {
      dim,
      async fuse(parts, n) {
        const feeds = separate
          ? {
              [imageName]: new runtime.Tensor('float32', parts.image, [n, imageDim]),
              [textName]: new runtime.Tensor('float32', parts.text, [n, textDim]),
            }
          : { [imageName]: new runtime.Tensor('float32', concatRows(parts.image, imageDim, parts.text, textDim, n), [n, imageDim + textDim]) };
        const result = (await session.run(feeds))[output];
        const values = toFloat32(result, `fusion output ${JSON.stringify(output)}`);
        if (values.length !== n * dim) throw new Error(`ProductEmbedder: the fusion model returned shape [${result.dims.join(', ')}] for ${n} products; expected [${n}, ${dim}]`);
        const rows = values.slice();
        return normalize ? normalizeRowsUnchecked(rows, dim) : rows;
      },
      close: () => session.release(),
    };
  } catch (error) {
    await session.release();
    throw error;
  }
}

function concatRows(a: Float32Array, aDim: number, b: Float32Array, bDim: number, n: number): Float32Array {
  const out = new Float32Array(n * (aDim + bDim));
  for (let i = 0; i < n; i++) {
    out.set(a.subarray(i * aDim, (i + 1) * aDim), i * (aDim + bDim));
    out.set(b.subarray(i * bDim, (i + 1) * bDim), i * (aDim + bDim) + aDim);
  }
  return out;
}

export function checkProducts(inputs: unknown, name = 'inputs'): readonly ProductInput[] {
  if (!Array.isArray(inputs)) throw new TypeError(`${name}: expected an array of products ({ image?, text? }), got ${describe(inputs)}`);
  if (inputs.length === 0) throw new RangeError(`${name}: expected a non-empty array, got an empty one`);
  inputs.forEach((p, i) => {
    const o = expectOptions<ProductInput>(p, `${name}[${i}]`, ['image', 'text']);
    if (o.image === undefined && o.text === undefined) throw new TypeError(`${name}[${i}]: expected a product with an image, a text or both, got neither`);
    if (o.image !== undefined) checkImageInput(o.image, `${name}[${i}].image`);
    if (o.text !== undefined) expectString(o.text, `${name}[${i}].text`);
  });
  return inputs as ProductInput[];
}

/** Image + text → one vector. Create with `await ProductEmbedder.create({ image, text, fusion })`. */
export class ProductEmbedder implements Embedder<ProductInput> {
  readonly dim: number;
  readonly batchSize: number;
  readonly fusion: 'concat' | 'onnx';
  #image: Embedder<ImageInput>;
  #text: Embedder<string>;
  #head: FusionHead;

  private constructor(image: Embedder<ImageInput>, text: Embedder<string>, head: FusionHead, batchSize: number, fusion: 'concat' | 'onnx') {
    this.#image = image;
    this.#text = text;
    this.#head = head;
    this.dim = head.dim;
    this.batchSize = batchSize;
    this.fusion = fusion;
  }

  static async create(options: ProductEmbedderOptions): Promise<ProductEmbedder> {
    if (options === undefined) throw new TypeError('options: expected { image, text, fusion? }, got undefined');
    const o = expectOptions<ProductEmbedderOptions>(options, 'options', ['image', 'text', 'fusion', 'batchSize']);
    const image = checkEmbedder<ImageInput>(o.image, 'options.image');
    const text = checkEmbedder<string>(o.text, 'options.text');
    const batchSize = checkBatchSize(o.batchSize, 'options.batchSize', Math.min(image.batchSize, text.batchSize));
    const fusion = o.fusion ?? { type: 'concat' };
    if (fusion === null || typeof fusion !== 'object') throw new TypeError(`options.fusion: expected { type: 'concat' | 'onnx', … }, got ${describe(fusion)}`);
    const type = expectChoice(fusion.type, 'options.fusion.type', ['concat', 'onnx'] as const);
    let head: FusionHead;
    if (type === 'concat') {
      const f = expectOptions<ConcatFusion>(fusion, 'options.fusion', ['type', 'imageWeight', 'textWeight']);
      const imageWeight = f.imageWeight === undefined ? 1 : expectNumber(f.imageWeight, 'options.fusion.imageWeight', 0);
      const textWeight = f.textWeight === undefined ? 1 : expectNumber(f.textWeight, 'options.fusion.textWeight', 0);
      if (imageWeight === 0 && textWeight === 0) throw new RangeError('options.fusion: imageWeight and textWeight cannot both be 0');
      head = concatHead(image.dim, text.dim, imageWeight, textWeight);
    } else {
      head = await onnxHead(fusion as OnnxFusion, image.dim, text.dim);
    }
    return new ProductEmbedder(image, text, head, batchSize, type);
  }

  get imageDim(): number {
    return this.#image.dim;
  }
  get textDim(): number {
    return this.#text.dim;
  }

  /** The unit-length image and text embeddings of each product (zeros for a missing part). */
  async embedParts(inputs: readonly ProductInput[]): Promise<ProductParts> {
    const products = checkProducts(inputs);
    const n = products.length;
    const hasImage = products.map((p) => p.image !== undefined);
    const hasText = products.map((p) => p.text !== undefined);
    const image = new Float32Array(n * this.#image.dim);
    const text = new Float32Array(n * this.#text.dim);
    const scatter = (rows: Float32Array, present: boolean[], into: Float32Array, dim: number) => {
      normalizeRowsUnchecked(rows, dim);
      let r = 0;
      present.forEach((has, i) => has && into.set(rows.subarray(r * dim, ++r * dim), i * dim));
    };
    // The two models run one after the other: both compete for the same cores, so overlapping gains nothing.
    const images = products.filter((p) => p.image !== undefined).map((p) => p.image!);
    if (images.length > 0) scatter(await this.#image.embed(images), hasImage, image, this.#image.dim);
    const texts = products.filter((p) => p.text !== undefined).map((p) => p.text!);
    if (texts.length > 0) scatter(await this.#text.embed(texts), hasText, text, this.#text.dim);
    return { image, text, hasImage, hasText };
  }

  async embed(inputs: readonly ProductInput[]): Promise<Float32Array> {
    const parts = await this.embedParts(inputs);
    return this.#head.fuse(parts, inputs.length);
  }

  /** Releases the fusion model (the two embedders belong to the caller). */
  async close(): Promise<void> {
    await this.#head.close();
  }
}
