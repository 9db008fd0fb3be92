// Reader for the IDX format of MNIST and Fashion-MNIST (gzipped or not): a big-endian header — two zero bytes,
// a type code, the number of dimensions, then each dimension as a uint32 — followed by the values.
// Only unsigned bytes (type 0x08) are read: the images and labels of those datasets are all that type.
import * as fs from 'node:fs';
import { gunzipSync } from 'node:zlib';

import { expectString } from './args';

export interface IdxArray {
  /** e.g. [60000, 28, 28] for images, [60000] for labels. */
  dims: number[];
  data: Uint8Array;
}

const UBYTE = 0x08;

function corrupt(file: string, why: string): Error {
  const e = new Error(`readIdx: ${file}: ${why}`);
  (e as NodeJS.ErrnoException).code = 'ERR_QUIVER_CORRUPT';
  return e;
}

/** Reads an IDX file of unsigned bytes; a .gz (detected by its magic bytes) is inflated first. */
export async function readIdx(file: string): Promise<IdxArray> {
  expectString(file, 'path');
  let bytes: Buffer = await fs.promises.readFile(file);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
  if (bytes.length < 4 || bytes[0] !== 0 || bytes[1] !== 0) throw corrupt(file, 'not an IDX file (bad magic number)');
  if (bytes[2] !== UBYTE) throw corrupt(file, `value type 0x${bytes[2].toString(16)} is not supported; only unsigned bytes (0x08) are`);
  const rank = bytes[3];
  const headerBytes = 4 + 4 * rank;
  if (rank === 0 || bytes.length < headerBytes) throw corrupt(file, `header of ${rank} dimensions does not fit in ${bytes.length} bytes`);
  const dims: number[] = [];
  for (let i = 0; i < rank; i++) dims.push(bytes.readUInt32BE(4 + 4 * i));
  const count = dims.reduce((a, b) => a * b, 1);
  if (bytes.length !== headerBytes + count) {
    throw corrupt(file, `dimensions [${dims.join(', ')}] need ${count} values but the file holds ${bytes.length - headerBytes}`);
  }
  return { dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerBytes, count) };
}
