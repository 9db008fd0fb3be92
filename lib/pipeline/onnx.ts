// ONNX models through onnxruntime-node (an optional peer): OnnxEmbedder turns images, texts or feature
// vectors into embeddings with any exported model; OnnxReranker scores query–candidate pairs with a model over
// their global vectors and, optionally, their sets of local features (Reranking-Transformer style).
import {
  describe,
  expectBoolean,
  expectChoice,
  expectFunction,
  expectInteger,
  expectOptions,
  expectString,
  optionalInteger,
} from './args';
import {
  MAX_BATCH_SIZE,
  checkBatchSize,
  checkImageInputs,
  checkTextInputs,
  embedInBatches,
  type Embedder,
  type ImageInput,
} from './embedder';
import { checkPreprocessing, prepareChecked, type CheckedPreprocessing, type ImagePreprocessing } from './image';
import { loadOptional } from './optional';
import { checkRerankArgs, type LocalFeatureStore, type Reranker, type RerankQuery } from './rerank';
import { normalizeRowsUnchecked, type VectorStore } from './vectors';

// The part of onnxruntime-node's API used here, declared locally so that quiver's types do not need the package.
export type OrtData = Float32Array | Int32Array | BigInt64Array;
export interface OrtTensor {
  readonly data: unknown;
  readonly dims: readonly number[];
  readonly type: string;
}
export interface OrtValueMetadata {
  readonly name: string;
  readonly isTensor: boolean;
  readonly type?: string;
  readonly shape?: ReadonlyArray<number | string>;
}
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata?: readonly OrtValueMetadata[];
  readonly outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface OrtModule {
  InferenceSession: { create(model: string | Uint8Array, options?: Record<string, unknown>): Promise<OrtSession> };
  Tensor: new (type: string, data: OrtData, dims: readonly number[]) => OrtTensor;
}

/** A model: the path of an .onnx file, or its bytes. */
export type OnnxModelSource = string | Uint8Array;

export interface OnnxSessionOptions {
  /** Threads onnxruntime uses inside one operator (default: its own choice, all cores). */
  threads?: number;
}

export function ort(purpose: string): OrtModule {
  return loadOptional<OrtModule>('onnxruntime-node', purpose);
}

export function checkModelSource(model: unknown): OnnxModelSource {
  if (typeof model === 'string') {
    if (model.length === 0) throw new RangeError('model: expected the path of an .onnx file, got an empty string');
    return model;
  }
  if (model instanceof Uint8Array) {
    if (model.length === 0) throw new RangeError('model: expected the bytes of an ONNX model, got 0 bytes');
    return model;
  }
  throw new TypeError(`model: expected the path of an .onnx file or a Uint8Array of its bytes, got ${describe(model)}`);
}

export async function openSession(model: OnnxModelSource, threads: number | undefined, purpose: string): Promise<OrtSession> {
  const runtime = ort(purpose);
  const options: Record<string, unknown> = {};
  if (threads !== undefined) options.intraOpNumThreads = threads;
  try {
    return await runtime.InferenceSession.create(model, options);
  } catch (error) {
    const what = typeof model === 'string' ? JSON.stringify(model) : `${model.length} bytes`;
    throw new Error(`${purpose}: onnxruntime cannot load the model (${what}): ${(error as Error).message}`, { cause: error });
  }
}

export function metadataOf(list: readonly OrtValueMetadata[] | undefined, name: string): OrtValueMetadata | undefined {
  return list?.find((m) => m.name === name);
}

/** The fixed size of the last axis of a value, when the model declares one. */
export function lastFixedSize(meta: OrtValueMetadata | undefined): number | undefined {
  const last = meta?.shape?.[meta.shape.length - 1];
  return typeof last === 'number' && last > 0 ? last : undefined;
}

export function pickName(session: OrtSession, kind: 'input' | 'output', wanted: string | undefined, optionName: string, fallback?: string): string {
  const names = kind === 'input' ? session.inputNames : session.outputNames;
  const name = wanted ?? fallback;
  if (name === undefined || !names.includes(name)) {
    throw new RangeError(
      `${optionName}: the model has no ${kind} ${describe(name)}; its ${kind}s are ${names.map((n) => JSON.stringify(n)).join(', ')}`,
    );
  }
  return name;
}

export function toFloat32(tensor: OrtTensor, what: string): Float32Array {
  if (tensor.data instanceof Float32Array) return tensor.data;
  throw new Error(`${what}: expected a float32 output, got ${tensor.type}`);
}

// ---------------------------------------------------------------------------------------------------------------
// OnnxEmbedder

/** Token ids of one text, optionally with segment ids (BERT's token_type_ids). */
export type TokenizerResult = ArrayLike<number> | { ids: ArrayLike<number>; typeIds?: ArrayLike<number> };
/** Turns one text into token ids; supplied by the user (e.g. a WordPiece or SentencePiece tokenizer). */
export type TextTokenizer = (text: string) => TokenizerResult;

export interface OnnxImageInputSpec {
  type: 'image';
  preprocessing: ImagePreprocessing;
}
export interface OnnxTextInputSpec {
  type: 'text';
  tokenizer: TextTokenizer;
  /** Tokens kept per text (longer ones are cut; default 256). */
  maxLength?: number;
  /** Id used to pad shorter texts of a batch (default 0). */
  padId?: number;
  /** Model input names (defaults: found by name — input_ids, attention_mask, token_type_ids). */
  names?: { ids?: string; mask?: string; typeIds?: string };
}
export interface OnnxVectorInputSpec {
  type: 'vector';
  /** Length of each input vector. */
  dim: number;
}

export interface OnnxEmbedderOptions extends OnnxSessionOptions {
  input: OnnxImageInputSpec | OnnxTextInputSpec | OnnxVectorInputSpec;
  /** The model input fed with the image or vector batch (default: the model's first input). */
  inputName?: string;
  /** The model output that holds the embeddings (default: the model's first output). */
  output?: string;
  /**
   * For outputs of shape [batch, tokens, dim]: 'mean' (default; over the tokens the attention mask keeps, as
   * sentence-transformers does) or 'first' (the [CLS] position). Outputs of shape [batch, dim] are used as is.
   */
  pooling?: 'mean' | 'first';
  /** Scale each embedding to unit length (default false). */
  normalize?: boolean;
  /** Embedding length, when the model's output shape does not fix it. */
  dim?: number;
  /** Inputs per model run (default 16). */
  batchSize?: number;
}

const EMBEDDER_KEYS = ['input', 'inputName', 'output', 'pooling', 'normalize', 'dim', 'batchSize', 'threads'] as const;

interface Feeder<Input> {
  check(inputs: unknown): readonly Input[];
  /** The model feeds for one batch, and the attention mask (for mean pooling over tokens), if any. */
  feeds(batch: readonly Input[]): Promise<{ feeds: Record<string, OrtTensor>; mask?: { data: Float32Array; length: number } }>;
}

function imageFeeder(runtime: OrtModule, session: OrtSession, inputName: string, p: CheckedPreprocessing): Feeder<ImageInput> {
  return {
    check: (inputs) => checkImageInputs(inputs),
    async feeds(batch) {
      const pixels = await prepareChecked(batch, p, 'OnnxEmbedder');
      const dims = p.layout === 'NCHW' ? [batch.length, p.channels, p.height, p.width] : [batch.length, p.height, p.width, p.channels];
      return { feeds: { [inputName]: new runtime.Tensor('float32', pixels, dims) } };
    },
  };
}

function vectorFeeder(runtime: OrtModule, inputName: string, dim: number): Feeder<Float32Array> {
  return {
    check(inputs) {
      if (!Array.isArray(inputs)) throw new TypeError(`inputs: expected an array of Float32Array vectors, got ${describe(inputs)}`);
      if (inputs.length === 0) throw new RangeError('inputs: expected a non-empty array, got an empty one');
      inputs.forEach((v, i) => {
        if (!(v instanceof Float32Array)) throw new TypeError(`inputs[${i}]: expected a Float32Array of ${dim} floats, got ${describe(v)}`);
        if (v.length !== dim) throw new RangeError(`inputs[${i}]: expected ${dim} floats, got ${v.length}`);
      });
      return inputs as Float32Array[];
    },
    async feeds(batch) {
      const data = new Float32Array(batch.length * dim);
      batch.forEach((v, i) => data.set(v, i * dim));
      return { feeds: { [inputName]: new runtime.Tensor('float32', data, [batch.length, dim]) } };
    },
  };
}

function findInput(session: OrtSession, pattern: RegExp): string | undefined {
  return session.inputNames.find((n) => pattern.test(n));
}

function textFeeder(runtime: OrtModule, session: OrtSession, spec: OnnxTextInputSpec): Feeder<string> {
  const o = expectOptions<OnnxTextInputSpec>(spec, 'options.input', ['type', 'tokenizer', 'maxLength', 'padId', 'names']);
  const tokenizer = expectFunction<TextTokenizer>(o.tokenizer, 'options.input.tokenizer');
  const maxLength = o.maxLength === undefined ? 256 : expectInteger(o.maxLength, 'options.input.maxLength', 1, 1 << 16);
  const padId = o.padId === undefined ? 0 : expectInteger(o.padId, 'options.input.padId', 0, 2 ** 31 - 1);
  const names = expectOptions<NonNullable<OnnxTextInputSpec['names']>>(o.names, 'options.input.names', ['ids', 'mask', 'typeIds']);
  const idsName = pickName(session, 'input', names.ids, 'options.input.names.ids', findInput(session, /input_ids|^ids$|tokens/i) ?? session.inputNames[0]);
  const maskName = names.mask !== undefined ? pickName(session, 'input', names.mask, 'options.input.names.mask') : findInput(session, /attention_mask|mask/i);
  const typeName = names.typeIds !== undefined ? pickName(session, 'input', names.typeIds, 'options.input.names.typeIds') : findInput(session, /token_type/i);
  const known = [idsName, maskName, typeName].filter(Boolean);
  const unknown = session.inputNames.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new RangeError(
      `options.input.names: the model also needs input(s) ${unknown.map((n) => JSON.stringify(n)).join(', ')}, which a text embedder does not know how to feed; name its ids, mask and typeIds inputs`,
    );
  }
  const intType = (name: string) => (metadataOf(session.inputMetadata, name)?.type === 'int32' ? 'int32' : 'int64');
  const tensor = (name: string, values: number[], dims: number[]) =>
    intType(name) === 'int32'
      ? new runtime.Tensor('int32', Int32Array.from(values), dims)
      : new runtime.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), dims);

  return {
    check: (inputs) => checkTextInputs(inputs),
    async feeds(batch) {
      const tokenized = batch.map((text, i) => {
        const result = tokenizer(text);
        const ids = result !== null && typeof result === 'object' && 'ids' in result ? result.ids : (result as ArrayLike<number>);
        const typeIds = result !== null && typeof result === 'object' && 'typeIds' in result ? result.typeIds : undefined;
        if (ids === null || typeof ids !== 'object' || typeof ids.length !== 'number') {
          throw new TypeError(`options.input.tokenizer: expected token ids (an array of integers) for inputs[${i}], got ${describe(ids)}`);
        }
        if (ids.length === 0) throw new RangeError(`options.input.tokenizer: returned no tokens for inputs[${i}]`);
        for (let j = 0; j < ids.length; j++) {
          if (!Number.isInteger(ids[j]) || ids[j] < 0) {
            throw new RangeError(`options.input.tokenizer: token ${j} of inputs[${i}] is ${describe(ids[j])}, expected a non-negative integer`);
          }
        }
        return { ids: Array.from(ids).slice(0, maxLength), typeIds: typeIds ? Array.from(typeIds).slice(0, maxLength) : undefined };
      });
      const length = Math.max(...tokenized.map((t) => t.ids.length));
      const ids: number[] = [];
      const mask: number[] = [];
      const types: number[] = [];
      for (const t of tokenized) {
        for (let j = 0; j < length; j++) {
          const real = j < t.ids.length;
          ids.push(real ? t.ids[j] : padId);
          mask.push(real ? 1 : 0);
          types.push(real && t.typeIds ? (t.typeIds[j] ?? 0) : 0);
        }
      }
      const dims = [batch.length, length];
      const feeds: Record<string, OrtTensor> = { [idsName]: tensor(idsName, ids, dims) };
      if (maskName) feeds[maskName] = tensor(maskName, mask, dims);
      if (typeName) feeds[typeName] = tensor(typeName, types, dims);
      return { feeds, mask: { data: Float32Array.from(mask), length } };
    },
  };
}

/** Rows of [batch, tokens, dim] averaged over the kept tokens (or the first token taken), → [batch, dim]. */
function pool(values: Float32Array, batch: number, tokens: number, dim: number, pooling: 'mean' | 'first', mask?: Float32Array): Float32Array {
  const out = new Float32Array(batch * dim);
  for (let b = 0; b < batch; b++) {
    if (pooling === 'first') {
      out.set(values.subarray(b * tokens * dim, b * tokens * dim + dim), b * dim);
      continue;
    }
    let kept = 0;
    for (let t = 0; t < tokens; t++) {
      const weight = mask ? mask[b * tokens + t] : 1;
      if (weight === 0) continue;
      kept += weight;
      const row = (b * tokens + t) * dim;
      for (let j = 0; j < dim; j++) out[b * dim + j] += values[row + j] * weight;
    }
    if (kept > 0) for (let j = 0; j < dim; j++) out[b * dim + j] /= kept;
  }
  return out;
}

/**
 * Embeddings from any ONNX model. Create with `await OnnxEmbedder.create(model, options)`; the input type
 * follows options.input.type: ImageInput for 'image', string for 'text', Float32Array for 'vector'.
 */
export class OnnxEmbedder<Input = unknown> implements Embedder<Input> {
  readonly dim: number;
  readonly batchSize: number;
  /** The names of the model's inputs and outputs, as onnxruntime reports them. */
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  #session: OrtSession;
  #feeder: Feeder<Input>;
  #output: string;
  #pooling: 'mean' | 'first';
  #normalize: boolean;
  #closed = false;

  private constructor(session: OrtSession, feeder: Feeder<Input>, o: { dim: number; batchSize: number; output: string; pooling: 'mean' | 'first'; normalize: boolean }) {
    this.#session = session;
    this.#feeder = feeder;
    this.dim = o.dim;
    this.batchSize = o.batchSize;
    this.#output = o.output;
    this.#pooling = o.pooling;
    this.#normalize = o.normalize;
    this.inputNames = [...session.inputNames];
    this.outputNames = [...session.outputNames];
  }

  static create(model: OnnxModelSource, options: OnnxEmbedderOptions & { input: OnnxImageInputSpec }): Promise<OnnxEmbedder<ImageInput>>;
  static create(model: OnnxModelSource, options: OnnxEmbedderOptions & { input: OnnxTextInputSpec }): Promise<OnnxEmbedder<string>>;
  static create(model: OnnxModelSource, options: OnnxEmbedderOptions & { input: OnnxVectorInputSpec }): Promise<OnnxEmbedder<Float32Array>>;
  static async create(model: OnnxModelSource, options: OnnxEmbedderOptions): Promise<OnnxEmbedder<unknown>> {
    const source = checkModelSource(model);
    if (options === undefined) throw new TypeError('options: expected an object with at least { input }, got undefined');
    const o = expectOptions<OnnxEmbedderOptions>(options, 'options', EMBEDDER_KEYS);
    if (o.input === null || typeof o.input !== 'object') {
      throw new TypeError(`options.input: expected { type: 'image' | 'text' | 'vector', … }, got ${describe(o.input)}`);
    }
    const type = expectChoice(o.input.type, 'options.input.type', ['image', 'text', 'vector'] as const);
    // Check everything that does not need the model before loading it, so that mistakes fail fast.
    const preprocessing =
      type === 'image'
        ? checkPreprocessing(expectOptions<OnnxImageInputSpec>(o.input, 'options.input', ['type', 'preprocessing']).preprocessing, 'options.input.preprocessing')
        : undefined;
    const vectorDim =
      type === 'vector' ? expectInteger(expectOptions<OnnxVectorInputSpec>(o.input, 'options.input', ['type', 'dim']).dim, 'options.input.dim', 1, 1 << 20) : 0;
    if (type === 'text') expectFunction((o.input as OnnxTextInputSpec).tokenizer, 'options.input.tokenizer');
    if (o.inputName !== undefined) expectString(o.inputName, 'options.inputName');
    if (o.output !== undefined) expectString(o.output, 'options.output');
    const pooling = o.pooling === undefined ? 'mean' : expectChoice(o.pooling, 'options.pooling', ['mean', 'first'] as const);
    const normalize = o.normalize === undefined ? false : expectBoolean(o.normalize, 'options.normalize');
    const wantedDim = optionalInteger(o.dim, 'options.dim', 1, 1 << 20);
    const batchSize = checkBatchSize(o.batchSize, 'options.batchSize', 16);
    const threads = optionalInteger(o.threads, 'options.threads', 0, 1024);

    const session = await openSession(source, threads, 'OnnxEmbedder');
    try {
      const runtime = ort('OnnxEmbedder');
      const output = pickName(session, 'output', o.output, 'options.output', session.outputNames[0]);
      const declaredDim = lastFixedSize(metadataOf(session.outputMetadata, output));
      if (wantedDim !== undefined && declaredDim !== undefined && wantedDim !== declaredDim) {
        throw new RangeError(`options.dim: the model's output ${JSON.stringify(output)} has ${declaredDim} values per row, not ${wantedDim}`);
      }
      const dim = wantedDim ?? declaredDim;
      if (dim === undefined) {
        throw new RangeError(`options.dim: the model does not fix the size of its output ${JSON.stringify(output)}; pass options.dim`);
      }
      let feeder: Feeder<unknown>;
      if (type === 'text') {
        feeder = textFeeder(runtime, session, o.input as OnnxTextInputSpec) as Feeder<unknown>;
      } else {
        const inputName = pickName(session, 'input', o.inputName, 'options.inputName', session.inputNames[0]);
        if (session.inputNames.length > 1) {
          throw new RangeError(`model: it has ${session.inputNames.length} inputs; an ${type} embedder feeds exactly one`);
        }
        feeder = (type === 'image' ? imageFeeder(runtime, session, inputName, preprocessing!) : vectorFeeder(runtime, inputName, vectorDim)) as Feeder<unknown>;
      }
      return new OnnxEmbedder(session, feeder, { dim, batchSize, output, pooling, normalize });
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  async embed(inputs: readonly Input[]): Promise<Float32Array> {
    const list = this.#feeder.check(inputs);
    this.#checkOpen();
    return embedInBatches(list, this.batchSize, this.dim, (batch) => this.#run(batch));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#session.release();
  }

  #checkOpen(): void {
    if (this.#closed) {
      const e = new Error('OnnxEmbedder: closed; create a new one');
      (e as NodeJS.ErrnoException).code = 'ERR_QUIVER_CLOSED';
      throw e;
    }
  }

  async #run(batch: readonly Input[]): Promise<Float32Array> {
    const { feeds, mask } = await this.#feeder.feeds(batch);
    const result = (await this.#session.run(feeds))[this.#output];
    const values = toFloat32(result, `OnnxEmbedder output ${JSON.stringify(this.#output)}`);
    const dims = result.dims;
    let rows: Float32Array;
    if (dims.length === 2 && dims[0] === batch.length && dims[1] === this.dim) {
      rows = values.slice();
    } else if (dims.length === 3 && dims[0] === batch.length && dims[2] === this.dim) {
      rows = pool(values, batch.length, dims[1], this.dim, this.#pooling, mask && mask.length === dims[1] ? mask.data : undefined);
    } else {
      throw new Error(`OnnxEmbedder: the model returned shape [${dims.join(', ')}] for ${batch.length} inputs; expected [${batch.length}, ${this.dim}] or [${batch.length}, tokens, ${this.dim}]`);
    }
    return this.#normalize ? normalizeRowsUnchecked(rows, this.dim) : rows;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// OnnxReranker

/** Model input names; the defaults are the names below. Only 'query' and 'candidate' are required. */
export interface OnnxRerankerInputNames {
  /** [pairs, dim] query global vectors (default 'query'). */
  query?: string;
  /** [pairs, dim] candidate global vectors (default 'candidate'). */
  candidate?: string;
  /** [pairs, queryLocals, localDim] query local features (default 'query_local'). */
  queryLocal?: string;
  /** [pairs, queryLocals] 1 for real local features, 0 for padding (default 'query_local_mask'). */
  queryLocalMask?: string;
  /** [pairs, candidateLocals, localDim] (default 'candidate_local'). */
  candidateLocal?: string;
  /** [pairs, candidateLocals] (default 'candidate_local_mask'). */
  candidateLocalMask?: string;
}

export interface OnnxRerankerOptions<Input> extends OnnxSessionOptions {
  /** Global vectors of the candidates, by id. */
  candidates: VectorStore;
  /** Local feature sets of the candidates, by id (needed when the model takes candidate local features). */
  candidateLocal?: LocalFeatureStore;
  /** Local features of a query (count × localDim floats), when the model takes them. */
  queryLocal?: (query: RerankQuery<Input>) => Float32Array | Promise<Float32Array>;
  names?: OnnxRerankerInputNames;
  /** The output holding one score per pair, [pairs] or [pairs, 1] (default: the first output). */
  output?: string;
  /** Pairs per model run (default 256). */
  batchSize?: number;
}

const DEFAULT_NAMES: Required<OnnxRerankerInputNames> = {
  query: 'query',
  candidate: 'candidate',
  queryLocal: 'query_local',
  queryLocalMask: 'query_local_mask',
  candidateLocal: 'candidate_local',
  candidateLocalMask: 'candidate_local_mask',
};

/** Pads local feature sets (each count × localDim) into one [sets, maxCount, localDim] tensor and its mask. */
function padLocalSets(sets: readonly Float32Array[], localDim: number): { data: Float32Array; mask: Float32Array; count: number } {
  const count = Math.max(1, ...sets.map((s) => s.length / localDim));
  const data = new Float32Array(sets.length * count * localDim);
  const mask = new Float32Array(sets.length * count);
  sets.forEach((s, i) => {
    data.set(s, i * count * localDim);
    mask.fill(1, i * count, i * count + s.length / localDim);
  });
  return { data, mask, count };
}

/**
 * Scores each (query, candidate) pair with an ONNX model over their features. Candidates absent from the
 * store score -Infinity (they sink to the end).
 */
export class OnnxReranker<Input = unknown> implements Reranker<Input> {
  readonly dim: number;
  readonly batchSize: number;
  #session: OrtSession;
  #runtime: OrtModule;
  #names: Required<OnnxRerankerInputNames>;
  #uses: { queryLocal: boolean; candidateLocal: boolean };
  #output: string;
  #candidates: VectorStore;
  #candidateLocal?: LocalFeatureStore;
  #queryLocal?: OnnxRerankerOptions<Input>['queryLocal'];
  #localDim = 0;

  private constructor(
    session: OrtSession,
    o: Required<Pick<OnnxRerankerOptions<Input>, 'candidates' | 'batchSize' | 'output'>> &
      OnnxRerankerOptions<Input> & { names: Required<OnnxRerankerInputNames>; localDim: number },
  ) {
    this.#session = session;
    this.#runtime = ort('OnnxReranker');
    this.#names = o.names;
    this.#output = o.output;
    this.#candidates = o.candidates;
    this.#candidateLocal = o.candidateLocal;
    this.#queryLocal = o.queryLocal;
    this.dim = o.candidates.dim;
    this.batchSize = o.batchSize;
    this.#uses = {
      queryLocal: session.inputNames.includes(o.names.queryLocal),
      candidateLocal: session.inputNames.includes(o.names.candidateLocal),
    };
    this.#localDim = o.localDim;
  }

  static async create<Input = unknown>(model: OnnxModelSource, options: OnnxRerankerOptions<Input>): Promise<OnnxReranker<Input>> {
    const source = checkModelSource(model);
    if (options === undefined) throw new TypeError('options: expected an object with at least { candidates }, got undefined');
    const o = expectOptions<OnnxRerankerOptions<Input>>(options, 'options', ['candidates', 'candidateLocal', 'queryLocal', 'names', 'output', 'batchSize', 'threads']);
    checkStore(o.candidates, 'options.candidates', 'VectorStore');
    if (o.candidateLocal !== undefined) checkStore(o.candidateLocal, 'options.candidateLocal', 'LocalFeatureStore');
    if (o.queryLocal !== undefined) expectFunction(o.queryLocal, 'options.queryLocal');
    const given = expectOptions<OnnxRerankerInputNames>(o.names, 'options.names', Object.keys(DEFAULT_NAMES));
    const names = { ...DEFAULT_NAMES };
    for (const [key, value] of Object.entries(given)) names[key as keyof OnnxRerankerInputNames] = expectString(value, `options.names.${key}`);
    if (o.output !== undefined) expectString(o.output, 'options.output');
    const batchSize = o.batchSize === undefined ? 256 : expectInteger(o.batchSize, 'options.batchSize', 1, MAX_BATCH_SIZE * 16);
    const threads = optionalInteger(o.threads, 'options.threads', 0, 1024);

    const session = await openSession(source, threads, 'OnnxReranker');
    try {
      const output = pickName(session, 'output', o.output, 'options.output', session.outputNames[0]);
      pickName(session, 'input', names.query, 'options.names.query');
      pickName(session, 'input', names.candidate, 'options.names.candidate');
      const known = Object.values(names);
      const unknown = session.inputNames.filter((n) => !known.includes(n));
      if (unknown.length > 0) {
        throw new RangeError(`options.names: the model input(s) ${unknown.map((n) => JSON.stringify(n)).join(', ')} match none of the reranker's inputs (${known.join(', ')})`);
      }
      const declared = lastFixedSize(metadataOf(session.inputMetadata, names.query));
      if (declared !== undefined && declared !== o.candidates!.dim) {
        throw new RangeError(`options.candidates: the model's ${JSON.stringify(names.query)} input has ${declared} values per row, but the store holds ${o.candidates!.dim}`);
      }
      if (session.inputNames.includes(names.candidateLocal) && o.candidateLocal === undefined) {
        throw new TypeError(`options.candidateLocal: the model takes ${JSON.stringify(names.candidateLocal)}; pass a LocalFeatureStore`);
      }
      if (session.inputNames.includes(names.queryLocal) && o.queryLocal === undefined) {
        throw new TypeError(`options.queryLocal: the model takes ${JSON.stringify(names.queryLocal)}; pass a function that gives a query's local features`);
      }
      // The local feature length comes from the candidates' store, else from the model's declared query_local shape.
      const localDim = o.candidateLocal?.dim ?? lastFixedSize(metadataOf(session.inputMetadata, names.queryLocal)) ?? 0;
      if (session.inputNames.includes(names.queryLocal) && localDim === 0) {
        throw new RangeError(`options.candidateLocal: the model does not fix the length of ${JSON.stringify(names.queryLocal)} rows; pass a LocalFeatureStore to tell it`);
      }
      return new OnnxReranker<Input>(session, { ...o, candidates: o.candidates!, names, output, batchSize, localDim });
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  async rerank(query: RerankQuery<Input>, candidates: BigInt64Array): Promise<Float32Array> {
    checkRerankArgs(query, candidates, this.dim);
    const scores = new Float32Array(candidates.length).fill(-Infinity);
    const known: number[] = [];
    for (let i = 0; i < candidates.length; i++) if (candidates[i] >= 0n && this.#candidates.has(candidates[i])) known.push(i);
    if (known.length === 0) return scores;
    let queryLocal: Float32Array | undefined;
    if (this.#uses.queryLocal) {
      queryLocal = await this.#queryLocal!(query);
      if (!(queryLocal instanceof Float32Array) || queryLocal.length === 0 || queryLocal.length % this.#localDim !== 0) {
        throw new RangeError(`options.queryLocal: expected a non-empty Float32Array of count × ${this.#localDim} floats, got ${describe(queryLocal)}`);
      }
    }
    for (let start = 0; start < known.length; start += this.batchSize) {
      const slots = known.slice(start, start + this.batchSize);
      const batchScores = await this.#runBatch(query.vector, queryLocal, BigInt64Array.from(slots, (s) => candidates[s]));
      slots.forEach((slot, i) => (scores[slot] = batchScores[i]));
    }
    return scores;
  }

  async close(): Promise<void> {
    await this.#session.release();
  }

  async #runBatch(queryVector: Float32Array, queryLocal: Float32Array | undefined, ids: BigInt64Array): Promise<Float32Array> {
    const T = this.#runtime.Tensor;
    const pairs = ids.length;
    const dim = this.dim;
    const queries = new Float32Array(pairs * dim);
    for (let i = 0; i < pairs; i++) queries.set(queryVector, i * dim);
    const feeds: Record<string, OrtTensor> = {
      [this.#names.query]: new T('float32', queries, [pairs, dim]),
      [this.#names.candidate]: new T('float32', this.#candidates.gather(ids).vectors, [pairs, dim]),
    };
    const inputs = this.#session.inputNames;
    if (this.#uses.queryLocal && queryLocal) {
      const padded = padLocalSets(new Array(pairs).fill(queryLocal), this.#localDim);
      feeds[this.#names.queryLocal] = new T('float32', padded.data, [pairs, padded.count, this.#localDim]);
      if (inputs.includes(this.#names.queryLocalMask)) feeds[this.#names.queryLocalMask] = new T('float32', padded.mask, [pairs, padded.count]);
    }
    if (this.#uses.candidateLocal) {
      const empty = new Float32Array(0);
      const sets = Array.from(ids, (id) => this.#candidateLocal!.get(id) ?? empty);
      const padded = padLocalSets(sets, this.#localDim);
      feeds[this.#names.candidateLocal] = new T('float32', padded.data, [pairs, padded.count, this.#localDim]);
      if (inputs.includes(this.#names.candidateLocalMask)) feeds[this.#names.candidateLocalMask] = new T('float32', padded.mask, [pairs, padded.count]);
    }
    const out = (await this.#session.run(feeds))[this.#output];
    const values = toFloat32(out, `OnnxReranker output ${JSON.stringify(this.#output)}`);
    if (values.length !== pairs) throw new Error(`OnnxReranker: the model returned ${values.length} scores for ${pairs} pairs (shape [${out.dims.join(', ')}])`);
    return values;
  }
}

function checkStore(value: unknown, name: string, kind: 'VectorStore' | 'LocalFeatureStore'): void {
  const v = value as { dim?: unknown; gather?: unknown; get?: unknown } | null;
  const ok = v !== null && typeof v === 'object' && typeof v.dim === 'number' && (kind === 'VectorStore' ? typeof v.gather === 'function' : typeof v.get === 'function');
  if (!ok) throw new TypeError(`${name}: expected a ${kind}, got ${describe(value)}`);
}
