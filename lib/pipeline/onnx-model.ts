// A minimal writer of ONNX model files (the ModelProto protobuf), enough to turn weights computed in JS into a
// model that onnxruntime runs: a linear projection head, a fusion head over two embeddings, a pairwise scoring
// head. It writes only the protobuf fields such graphs need; field numbers follow onnx/onnx.proto.
// Why not a protobuf library: the subset is small, and a dependency-free writer keeps quiver's install lean.
import { describe, expectArray, expectInteger, expectOptions, expectString } from './args';

export type OnnxElementType = 'float32' | 'int32' | 'int64';
/** ONNX TensorProto.DataType codes. */
const DATA_TYPE: Record<OnnxElementType, number> = { float32: 1, int32: 6, int64: 7 };

export interface OnnxValueInfo {
  name: string;
  type: OnnxElementType;
  /** Fixed sizes as numbers, symbolic ones (e.g. 'batch') as strings. */
  shape: readonly (number | string)[];
}

export interface OnnxInitializer {
  name: string;
  dims: readonly number[];
  data: Float32Array | Int32Array | BigInt64Array;
}

/**
 * An attribute: integers go out as INT (arrays of integers as INTS), other numbers as FLOAT(S), strings as
 * STRING; `{ float }` / `{ floats }` force FLOAT(S) for values that happen to be whole (e.g. alpha = 1).
 */
export type OnnxAttributeValue = number | readonly number[] | string | { float: number } | { floats: readonly number[] };

export interface OnnxNode {
  op: string;
  inputs: readonly string[];
  outputs: readonly string[];
  attributes?: Readonly<Record<string, OnnxAttributeValue>>;
  name?: string;
}

export interface OnnxGraph {
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
  nodes: readonly OnnxNode[];
  initializers?: readonly OnnxInitializer[];
  /** Default-domain opset (default 13). */
  opset?: number;
  name?: string;
}

/** Appends protobuf wire-format pieces to a growing byte list. */
class ProtoWriter {
  #bytes: number[] = [];

  varint(value: number | bigint): this {
    // int64 fields take negative values as their 64-bit two's complement: 10 bytes on the wire.
    let v = BigInt.asUintN(64, BigInt(value));
    do {
      let byte = Number(v & 0x7fn);
      v >>= 7n;
      if (v !== 0n) byte |= 0x80;
      this.#bytes.push(byte);
    } while (v !== 0n);
    return this;
  }

  tag(field: number, wireType: 0 | 2 | 5): this {
    return this.varint((field << 3) | wireType);
  }

  int(field: number, value: number | bigint): this {
    return this.tag(field, 0).varint(value);
  }

  float(field: number, value: number): this {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.#bytes.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.tag(field, 2).varint(data.length);
    for (let i = 0; i < data.length; i++) this.#bytes.push(data[i]);
    return this;
  }

  string(field: number, text: string): this {
    return this.bytes(field, new TextEncoder().encode(text));
  }

  message(field: number, build: (w: ProtoWriter) => void): this {
    const inner = new ProtoWriter();
    build(inner);
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

// Field numbers of onnx.proto's messages.
const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8 };
const OPSET = { domain: 1, version: 2 };
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 };
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 };
const ATTRIBUTE = { name: 1, f: 2, i: 3, s: 4, floats: 7, ints: 8, type: 20 };
const ATTRIBUTE_TYPE = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 };
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 };
const VALUE_INFO = { name: 1, type: 2 };
const TYPE = { tensorType: 1 };
const TENSOR_TYPE = { elemType: 1, shape: 2 };
const SHAPE = { dim: 1 };
const DIMENSION = { value: 1, param: 2 };

function writeValueInfo(w: ProtoWriter, v: OnnxValueInfo): void {
  w.string(VALUE_INFO.name, v.name).message(VALUE_INFO.type, (t) =>
    t.message(TYPE.tensorType, (tt) =>
      tt.int(TENSOR_TYPE.elemType, DATA_TYPE[v.type]).message(TENSOR_TYPE.shape, (s) => {
        for (const d of v.shape) {
          s.message(SHAPE.dim, (dim) => (typeof d === 'number' ? dim.int(DIMENSION.value, d) : dim.string(DIMENSION.param, d)));
        }
      }),
    ),
  );
}

function elementTypeOf(data: OnnxInitializer['data']): OnnxElementType {
  return data instanceof Float32Array ? 'float32' : data instanceof Int32Array ? 'int32' : 'int64';
}

function writeInitializer(w: ProtoWriter, t: OnnxInitializer): void {
  for (const d of t.dims) w.int(TENSOR.dims, d);
  w.int(TENSOR.dataType, DATA_TYPE[elementTypeOf(t.data)]).string(TENSOR.name, t.name);
  // raw_data holds the values little-endian, which is how typed arrays lay them out on every host Node runs on.
  w.bytes(TENSOR.rawData, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
}

function writeAttribute(w: ProtoWriter, name: string, value: OnnxAttributeValue): void {
  w.string(ATTRIBUTE.name, name);
  if (typeof value === 'string') {
    w.string(ATTRIBUTE.s, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.STRING);
  } else if (typeof value === 'number') {
    if (Number.isInteger(value)) w.int(ATTRIBUTE.i, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.INT);
    else w.float(ATTRIBUTE.f, value).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.FLOAT);
  } else if ('float' in value) {
    w.float(ATTRIBUTE.f, value.float).int(ATTRIBUTE.type, ATTRIBUTE_TYPE.FLOAT);
  } else if ('floats' in value || !value.every(Number.isInteger)) {
    for (const x of 'floats' in value ? value.floats : value) w.float(ATTRIBUTE.floats, x);
    w.int(ATTRIBUTE.type, ATTRIBUTE_TYPE.FLOATS);
  } else {
    for (const x of value) w.int(ATTRIBUTE.ints, x);
    w.int(ATTRIBUTE.type, ATTRIBUTE_TYPE.INTS);
  }
}

function checkValueInfo(v: unknown, name: string): void {
  const o = expectOptions<OnnxValueInfo>(v, name, ['name', 'type', 'shape']);
  expectString(o.name, `${name}.name`);
  if (!(o.type! in DATA_TYPE)) throw new RangeError(`${name}.type: expected 'float32', 'int32' or 'int64', got ${describe(o.type)}`);
  expectArray(o.shape, `${name}.shape`, false).forEach((d, i) => {
    if (typeof d !== 'string') expectInteger(d, `${name}.shape[${i}]`, 0, 2 ** 31 - 1);
  });
}

function checkGraph(graph: unknown): Required<Pick<OnnxGraph, 'opset'>> & OnnxGraph {
  const g = expectOptions<OnnxGraph>(graph, 'graph', ['inputs', 'outputs', 'nodes', 'initializers', 'opset', 'name']);
  expectArray(g.inputs, 'graph.inputs', false).forEach((v, i) => checkValueInfo(v, `graph.inputs[${i}]`));
  expectArray(g.outputs, 'graph.outputs').forEach((v, i) => checkValueInfo(v, `graph.outputs[${i}]`));
  expectArray(g.nodes, 'graph.nodes').forEach((n, i) => {
    const node = expectOptions<OnnxNode>(n, `graph.nodes[${i}]`, ['op', 'inputs', 'outputs', 'attributes', 'name']);
    expectString(node.op, `graph.nodes[${i}].op`);
    expectArray(node.inputs, `graph.nodes[${i}].inputs`, false).forEach((s, j) => expectString(s, `graph.nodes[${i}].inputs[${j}]`));
    expectArray(node.outputs, `graph.nodes[${i}].outputs`).forEach((s, j) => expectString(s, `graph.nodes[${i}].outputs[${j}]`));
    if (node.attributes !== undefined && (typeof node.attributes !== 'object' || node.attributes === null)) {
      throw new TypeError(`graph.nodes[${i}].attributes: expected an object, got ${describe(node.attributes)}`);
    }
  });
  expectArray(g.initializers ?? [], 'graph.initializers', false).forEach((t, i) => {
    const init = expectOptions<OnnxInitializer>(t, `graph.initializers[${i}]`, ['name', 'dims', 'data']);
    expectString(init.name, `graph.initializers[${i}].name`);
    const dims = expectArray<number>(init.dims, `graph.initializers[${i}].dims`, false);
    dims.forEach((d, j) => expectInteger(d, `graph.initializers[${i}].dims[${j}]`, 0, 2 ** 31 - 1));
    if (!(init.data instanceof Float32Array || init.data instanceof Int32Array || init.data instanceof BigInt64Array)) {
      throw new TypeError(`graph.initializers[${i}].data: expected a Float32Array, Int32Array or BigInt64Array, got ${describe(init.data)}`);
    }
    const count = dims.reduce((a, b) => a * b, 1);
    if (init.data.length !== count) {
      throw new RangeError(`graph.initializers[${i}].data: dims [${dims.join(', ')}] need ${count} values, got ${init.data.length}`);
    }
  });
  const opset = g.opset === undefined ? 13 : expectInteger(g.opset, 'graph.opset', 7, 30);
  return { ...(g as OnnxGraph), opset };
}

/** Serialises a graph as an ONNX model file (bytes for InferenceSession.create or fs.writeFile). */
export function encodeOnnxModel(graph: OnnxGraph): Uint8Array {
  const g = checkGraph(graph);
  const w = new ProtoWriter();
  // IR version 8 is what onnx 1.10+ writes for opsets 13–16; onnxruntime reads IR versions up to 10 and beyond.
  w.int(MODEL.irVersion, 8).string(MODEL.producerName, 'quiver').string(MODEL.producerVersion, '0.1');
  w.message(MODEL.graph, (gw) => {
    g.nodes.forEach((node, i) => {
      gw.message(GRAPH.node, (nw) => {
        for (const input of node.inputs) nw.string(NODE.input, input);
        for (const output of node.outputs) nw.string(NODE.output, output);
        nw.string(NODE.name, node.name ?? `${node.op}_${i}`).string(NODE.opType, node.op);
        for (const [name, value] of Object.entries(node.attributes ?? {})) nw.message(NODE.attribute, (aw) => writeAttribute(aw, name, value));
      });
    });
    gw.string(GRAPH.name, g.name ?? 'quiver_graph');
    for (const t of g.initializers ?? []) gw.message(GRAPH.initializer, (tw) => writeInitializer(tw, t));
    for (const v of g.inputs) gw.message(GRAPH.input, (vw) => writeValueInfo(vw, v));
    for (const v of g.outputs) gw.message(GRAPH.output, (vw) => writeValueInfo(vw, v));
  });
  w.message(MODEL.opsetImport, (ow) => ow.string(OPSET.domain, '').int(OPSET.version, g.opset));
  return w.finish();
}

function checkWeights(weights: unknown, name: string, rows: number, cols: number): Float32Array {
  if (!(weights instanceof Float32Array)) throw new TypeError(`${name}: expected a Float32Array of ${rows} × ${cols} floats, got ${describe(weights)}`);
  if (weights.length !== rows * cols) throw new RangeError(`${name}: expected ${rows} × ${cols} = ${rows * cols} floats, got ${weights.length}`);
  return weights;
}

/**
 * A linear projection head y = x·W + b as an ONNX model: input 'input' [batch, inDim] → output 'output'
 * [batch, outDim]. `weights` is inDim × outDim, row-major; `bias` (outDim floats) is optional.
 */
export function linearProjectionModel(weights: Float32Array, inDim: number, outDim: number, bias?: Float32Array): Uint8Array {
  expectInteger(inDim, 'inDim', 1, 1 << 20);
  expectInteger(outDim, 'outDim', 1, 1 << 20);
  checkWeights(weights, 'weights', inDim, outDim);
  if (bias !== undefined) checkWeights(bias, 'bias', 1, outDim);
  const nodes: OnnxNode[] = [{ op: 'MatMul', inputs: ['input', 'W'], outputs: [bias ? 'xW' : 'output'] }];
  const initializers: OnnxInitializer[] = [{ name: 'W', dims: [inDim, outDim], data: weights }];
  if (bias) {
    nodes.push({ op: 'Add', inputs: ['xW', 'b'], outputs: ['output'] });
    initializers.push({ name: 'b', dims: [outDim], data: bias });
  }
  return encodeOnnxModel({
    inputs: [{ name: 'input', type: 'float32', shape: ['batch', inDim] }],
    outputs: [{ name: 'output', type: 'float32', shape: ['batch', outDim] }],
    nodes,
    initializers,
  });
}

/**
 * A fusion head over an image and a text embedding as an ONNX model: inputs 'image' [batch, imageDim] and
 * 'text' [batch, textDim] → output 'output' = concat(image, text)·W + b, [batch, outDim]. `weights` is
 * (imageDim + textDim) × outDim, row-major — e.g. a projection learned offline (PCA, CCA, a trained layer).
 */
export function concatProjectionModel(
  weights: Float32Array,
  imageDim: number,
  textDim: number,
  outDim: number,
  bias?: Float32Array,
): Uint8Array {
  expectInteger(imageDim, 'imageDim', 1, 1 << 20);
  expectInteger(textDim, 'textDim', 1, 1 << 20);
  expectInteger(outDim, 'outDim', 1, 1 << 20);
  checkWeights(weights, 'weights', imageDim + textDim, outDim);
  if (bias !== undefined) checkWeights(bias, 'bias', 1, outDim);
  const nodes: OnnxNode[] = [
    { op: 'Concat', inputs: ['image', 'text'], outputs: ['joint'], attributes: { axis: 1 } },
    { op: 'MatMul', inputs: ['joint', 'W'], outputs: [bias ? 'jW' : 'output'] },
  ];
  const initializers: OnnxInitializer[] = [{ name: 'W', dims: [imageDim + textDim, outDim], data: weights }];
  if (bias) {
    nodes.push({ op: 'Add', inputs: ['jW', 'b'], outputs: ['output'] });
    initializers.push({ name: 'b', dims: [outDim], data: bias });
  }
  return encodeOnnxModel({
    inputs: [
      { name: 'image', type: 'float32', shape: ['batch', imageDim] },
      { name: 'text', type: 'float32', shape: ['batch', textDim] },
    ],
    outputs: [{ name: 'output', type: 'float32', shape: ['batch', outDim] }],
    nodes,
    initializers,
  });
}

/**
 * A bilinear pair scorer as an ONNX model: inputs 'query' and 'candidate', both [batch, dim] → output 'score'
 * [batch] = Σ_j (query·W)_j · candidate_j. W = identity gives the inner product; a learned W re-weights the
 * dimensions — the global-feature half of a Reranking-Transformer-style head.
 */
export function bilinearScoreModel(weights: Float32Array, dim: number): Uint8Array {
  expectInteger(dim, 'dim', 1, 1 << 16);
  checkWeights(weights, 'weights', dim, dim);
  return encodeOnnxModel({
    inputs: [
      { name: 'query', type: 'float32', shape: ['batch', dim] },
      { name: 'candidate', type: 'float32', shape: ['batch', dim] },
    ],
    outputs: [{ name: 'score', type: 'float32', shape: ['batch'] }],
    nodes: [
      { op: 'MatMul', inputs: ['query', 'W'], outputs: ['qW'] },
      { op: 'Mul', inputs: ['qW', 'candidate'], outputs: ['products'] },
      { op: 'ReduceSum', inputs: ['products', 'axes'], outputs: ['score'], attributes: { keepdims: 0 } },
    ],
    initializers: [
      { name: 'W', dims: [dim, dim], data: weights },
      { name: 'axes', dims: [1], data: BigInt64Array.of(1n) },
    ],
  });
}
