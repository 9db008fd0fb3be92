// Readers for the standard ANN dataset formats (little-endian):
//   .fvecs / .bvecs / .ivecs (TEXMEX): per vector an int32 dim, then dim float32 / uint8 / int32 values;
//   .fbin / .u8bin / .i8bin / .ibin (big-ann-benchmarks): int32 n, int32 dim, then n × dim values.
// Float and byte formats come back as Float32Array (ready for Index/Codec); integer formats (ground truth)
// as Int32Array. Only the requested range of vectors is read from disk.
import * as fs from 'node:fs';
import * as path from 'node:path';

import { describe, expectOptions, expectString, optionalInteger } from './validate';

export type VectorFormat = 'fvecs' | 'bvecs' | 'ivecs' | 'fbin' | 'u8bin' | 'i8bin' | 'ibin';

export interface ReadVectorsOptions {
  /** First vector to read (default 0). */
  offset?: number;
  /** Vectors to read at most (default: all from offset). */
  count?: number;
  /** Format, when the file name's extension does not tell it. */
  format?: VectorFormat;
}

export interface Vectors<T extends Float32Array | Int32Array = Float32Array | Int32Array> {
  data: T;
  n: number;
  dim: number;
  format: VectorFormat;
}

interface Layout {
  kind: 'vecs' | 'bin';
  bytesPerValue: number;
  read: (buf: Buffer, byteOffset: number) => number;
  integer: boolean;
}

const LAYOUTS: Record<VectorFormat, Layout> = {
  fvecs: { kind: 'vecs', bytesPerValue: 4, read: (b, o) => b.readFloatLE(o), integer: false },
  bvecs: { kind: 'vecs', bytesPerValue: 1, read: (b, o) => b[o], integer: false },
  ivecs: { kind: 'vecs', bytesPerValue: 4, read: (b, o) => b.readInt32LE(o), integer: true },
  fbin: { kind: 'bin', bytesPerValue: 4, read: (b, o) => b.readFloatLE(o), integer: false },
  u8bin: { kind: 'bin', bytesPerValue: 1, read: (b, o) => b[o], integer: false },
  i8bin: { kind: 'bin', bytesPerValue: 1, read: (b, o) => b.readInt8(o), integer: false },
  ibin: { kind: 'bin', bytesPerValue: 4, read: (b, o) => b.readInt32LE(o), integer: true },
};

const MAX_DIM = 1 << 20;

export function formatOf(file: string): VectorFormat | undefined {
  const ext = path.extname(file).slice(1).toLowerCase();
  return ext in LAYOUTS ? (ext as VectorFormat) : undefined;
}

function corrupt(file: string, why: string): Error {
  const e = new Error(`readVectors: ${file}: ${why}`);
  (e as NodeJS.ErrnoException).code = 'ERR_QUIVER_CORRUPT';
  return e;
}

async function readExactly(handle: fs.promises.FileHandle, length: number, position: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await handle.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  if (done !== length) throw new Error(`short read: wanted ${length} bytes at ${position}, got ${done}`);
  return buf;
}

/** Reads vectors from a dataset file; see the module comment for formats. */
export async function readVectors(file: string, options?: ReadVectorsOptions): Promise<Vectors> {
  expectString(file, 'path');
  const o = expectOptions<ReadVectorsOptions>(options, 'options', ['offset', 'count', 'format']);
  const offset = optionalInteger(o.offset, 'options.offset', 0, Number.MAX_SAFE_INTEGER) ?? 0;
  const count = optionalInteger(o.count, 'options.count', 0, Number.MAX_SAFE_INTEGER);
  const format = o.format ?? formatOf(file);
  if (format === undefined || !(format in LAYOUTS)) {
    throw new RangeError(
      o.format !== undefined
        ? `options.format: expected one of ${Object.keys(LAYOUTS).join(', ')}, got ${describe(o.format)}`
        : `path: cannot tell the format of ${JSON.stringify(file)} from its extension; expected .fvecs, .bvecs, .ivecs, .fbin, .u8bin, .i8bin or .ibin, or pass options.format`,
    );
  }
  const layout = LAYOUTS[format];
  const handle = await fs.promises.open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size < 8 && layout.kind === 'bin') throw corrupt(file, `${size} bytes is too short for a .${format} header`);
    if (size < 4) throw corrupt(file, `${size} bytes is too short for a .${format} file`);
    const header = await readExactly(handle, layout.kind === 'bin' ? 8 : 4, 0);
    let dim: number, total: number, recordBytes: number, dataStart: number;
    if (layout.kind === 'vecs') {
      dim = header.readInt32LE(0);
      if (dim < 1 || dim > MAX_DIM) throw corrupt(file, `first vector has dimension ${dim}`);
      recordBytes = 4 + dim * layout.bytesPerValue;
      if (size % recordBytes !== 0) {
        throw corrupt(file, `size ${size} is not a multiple of the ${recordBytes}-byte record of dimension ${dim}`);
      }
      total = size / recordBytes;
      dataStart = 0;
    } else {
      total = header.readInt32LE(0);
      dim = header.readInt32LE(4);
      if (total < 0 || dim < 1 || dim > MAX_DIM) throw corrupt(file, `header says n=${total}, dim=${dim}`);
      recordBytes = dim * layout.bytesPerValue;
      if (8 + total * recordBytes > size) {
        throw corrupt(file, `header says ${total} × ${dim} values but the file has only ${size} bytes`);
      }
      dataStart = 8;
    }
    const first = Math.min(offset, total);
    const n = Math.min(count ?? total - first, total - first);
    const buf = n > 0 ? await readExactly(handle, n * recordBytes, dataStart + first * recordBytes) : Buffer.alloc(0);
    const data = layout.integer ? new Int32Array(n * dim) : new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      let at = i * recordBytes;
      if (layout.kind === 'vecs') {
        const d = buf.readInt32LE(at);
        if (d !== dim) throw corrupt(file, `vector ${first + i} has dimension ${d}, expected ${dim}`);
        at += 4;
      }
      const row = i * dim;
      if (format === 'fvecs' || format === 'fbin') {
        // Fast path: copy the float32 payload as is (little-endian hosts; Node supports no other here).
        data.set(new Float32Array(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + dim * 4)), row);
      } else {
        for (let j = 0; j < dim; j++) data[row + j] = layout.read(buf, at + j * layout.bytesPerValue);
      }
    }
    return { data, n, dim, format };
  } finally {
    await handle.close();
  }
}
