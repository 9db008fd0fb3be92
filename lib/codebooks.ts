// Plain export of a trained index's centroids and codebooks, for engines that take external codebooks (for
// example a distributed IVF-PQ build elsewhere, such as Lance's, fed with quiver-trained centroids).
//
// A folder holds one .npy file per array plus manifest.json:
//   <name>.npy     NumPy format 1.0: the 6 bytes "\x93NUMPY", version 1 0, u16 little-endian header length H,
//                  H bytes of ASCII header ({'descr': '<f4', 'fortran_order': False, 'shape': (…), }, padded
//                  with spaces and ending in "\n" so that the data starts at a multiple of 64), then the data:
//                  float32 little-endian, row-major (C order), product(shape) values. Readers without NumPy take
//                  manifest.arrays[i].dataOffset and read product(shape) float32 values from there.
//   manifest.json  { format: 'quiver-codebooks', version: 1, spec, dim, metric, codec, residual,
//                    norm?: { storage, lo, hi }, arrays: [{ name, file, dtype: 'float32', byteOrder: 'little',
//                    shape, dataOffset, bytes, description }] }
// Arrays (those present depend on the spec):
//   ivf_centroids [nlist, dim]       IVF coarse centroids; with residual: true the codebooks quantise x − c_l
//   trq_transforms [nlist, dim, dim] TRQ rotations R_l, applied to the residual before the fine codec
//   opq_rotation [dim, dim]          OPQ rotation R: PQ encodes y = R·x
//   pq_centroids [M, ksub, dim/M]    PQ codebooks (sub-space m = dimensions m·dsub … (m+1)·dsub − 1); reshaped
//                                    to [M·ksub, dsub] it is the layout IVF-PQ engines commonly take
//   pq_centroids_<m> [ksub, dsub_m]  instead of pq_centroids when M does not divide dim (uneven sub-spaces: the
//                                    first dim mod M sub-spaces get one dimension more)
//   rq_codebooks [L, K, dim]         RQ stage codebooks: x̂ = Σ_l rq_codebooks[l, code_l]
// Files are written to a temporary name and renamed; manifest.json is written last, so a folder with a manifest
// is complete.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const CODEBOOKS_FORMAT_VERSION = 1;

export interface PlainArrayNative {
  name: string;
  shape: number[];
  data: Float32Array;
  description: string;
}

export interface PlainExportNative {
  codec: string;
  residual: boolean;
  norm?: string;
  normLo?: number;
  normHi?: number;
  arrays: PlainArrayNative[];
}

export interface CodebooksManifest {
  format: 'quiver-codebooks';
  version: number;
  spec: string;
  dim: number;
  metric: string;
  codec: string;
  residual: boolean;
  norm?: { storage: string; lo: number; hi: number };
  arrays: {
    name: string;
    file: string;
    dtype: 'float32';
    byteOrder: 'little';
    shape: number[];
    dataOffset: number;
    bytes: number;
    description: string;
  }[];
}

/** The bytes of a float32 .npy file (format 1.0) holding `data` with `shape`. */
export function npyBytes(data: Float32Array, shape: readonly number[]): { bytes: Buffer; dataOffset: number } {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${dims}), }`;
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(10);
  prefix.write('\x93NUMPY', 0, 'latin1');
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const body = Buffer.alloc(data.length * 4);
  for (let i = 0; i < data.length; i++) body.writeFloatLE(data[i], i * 4);
  const dataOffset = 10 + header.length;
  return { bytes: Buffer.concat([prefix, Buffer.from(header, 'latin1'), body]), dataOffset };
}

interface PlannedFile {
  file: string;
  bytes: Uint8Array | string;
}

function plan(plain: PlainExportNative, info: { spec: string; dim: number; metric: string }) {
  const manifest: CodebooksManifest = {
    format: 'quiver-codebooks',
    version: CODEBOOKS_FORMAT_VERSION,
    spec: info.spec,
    dim: info.dim,
    metric: info.metric,
    codec: plain.codec,
    residual: plain.residual,
    ...(plain.norm !== undefined ? { norm: { storage: plain.norm, lo: plain.normLo ?? 0, hi: plain.normHi ?? 0 } } : {}),
    arrays: [],
  };
  const files: PlannedFile[] = [];
  for (const a of plain.arrays) {
    const file = `${a.name}.npy`;
    const { bytes, dataOffset } = npyBytes(a.data, a.shape);
    files.push({ file, bytes });
    manifest.arrays.push({
      name: a.name,
      file,
      dtype: 'float32',
      byteOrder: 'little',
      shape: a.shape,
      dataOffset,
      bytes: a.data.length * 4,
      description: a.description,
    });
  }
  // Last, so that a folder with a manifest is complete.
  files.push({ file: 'manifest.json', bytes: JSON.stringify(manifest, null, 2) + '\n' });
  return { manifest, files };
}

function tmpName(file: string): string {
  return `${file}.tmp-${process.pid}-${Date.now()}`;
}

/** Writes the arrays and manifest.json into `dir` (created if needed); returns the manifest. */
export function writeCodebooks(
  dir: string,
  plain: PlainExportNative,
  info: { spec: string; dim: number; metric: string },
): CodebooksManifest {
  const { manifest, files } = plan(plain, info);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of files) {
    const target = path.join(dir, f.file);
    const tmp = tmpName(target);
    fs.writeFileSync(tmp, f.bytes);
    fs.renameSync(tmp, target);
  }
  return manifest;
}

export async function writeCodebooksAsync(
  dir: string,
  plain: PlainExportNative,
  info: { spec: string; dim: number; metric: string },
): Promise<CodebooksManifest> {
  const { manifest, files } = plan(plain, info);
  await fs.promises.mkdir(dir, { recursive: true });
  for (const f of files) {
    const target = path.join(dir, f.file);
    const tmp = tmpName(target);
    await fs.promises.writeFile(tmp, f.bytes);
    await fs.promises.rename(tmp, target);
  }
  return manifest;
}
