#!/usr/bin/python3
"""faiss side of test/faiss-interop.test.ts, run with Debian's python3-faiss (faiss 1.7.3).

The request comes as JSON on stdin; the answer goes as JSON to stdout. Vectors arrive as .fbin files (int32 n,
int32 d, n × d float32). Result ids and distances are written as raw little-endian int64 / float32 files
(<out>.ids, <out>.dist) so that the caller compares them with quiver's own results.

  {"op": "version"}
  {"op": "search", "index": path, "queries": fbin, "k": k, "nprobe": n, "out": prefix}
      read a faiss file (quiver wrote it) and search it
  {"op": "build", "kind": "pq"|"opq"|"rq"|"ivfpq"|"ivfrq", "metric": "l2"|"ip", "M": m, "nbits": b,
   "nlist": n, "norm": "float"|"qint8"|"decompress", "ids_offset": o (optional: IndexIDMap with ids o + 3i),
   "base": fbin, "train_count": t, "queries": fbin, "k": k, "nprobe": n, "index": path, "out": prefix}
      train and fill a faiss index (fixed seed), write it to `index`, and search it
"""
import json
import sys

import numpy as np

import faiss


def read_fbin(path):
    with open(path, 'rb') as f:
        n, d = (int(v) for v in np.fromfile(f, dtype=np.int32, count=2))
        x = np.fromfile(f, dtype=np.float32, count=n * d).reshape(n, d)
    return np.ascontiguousarray(x)


def search(index, queries, k, nprobe, out):
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        ivf.nprobe = nprobe
    distances, ids = index.search(queries, k)
    ids.astype('<i8').tofile(out + '.ids')
    distances.astype('<f4').tofile(out + '.dist')


def build(req):
    base = read_fbin(req['base'])
    d = base.shape[1]
    train = base[: req['train_count']]
    metric = faiss.METRIC_L2 if req['metric'] == 'l2' else faiss.METRIC_INNER_PRODUCT
    kind, m, nbits = req['kind'], req['M'], req['nbits']
    st = {
        'float': faiss.AdditiveQuantizer.ST_norm_float,
        'qint8': faiss.AdditiveQuantizer.ST_norm_qint8,
        'decompress': faiss.AdditiveQuantizer.ST_decompress,
    }[req.get('norm', 'float')]
    # Few k-means iterations and greedy RQ encoding: this checks the file format, not training quality, and
    # Debian's faiss (no SIMD) is slow on a loaded 2-core CI machine.
    niter = req.get('niter', 8)
    if kind == 'pq':
        index = faiss.IndexPQ(d, m, nbits, metric)
        index.pq.cp.niter = niter
    elif kind == 'opq':
        opq = faiss.OPQMatrix(d, m)
        opq.niter = 4
        opq.niter_pq = 4
        inner = faiss.IndexPQ(d, m, nbits, metric)
        inner.pq.cp.niter = niter
        index = faiss.IndexPreTransform(opq, inner)
    elif kind == 'rq':
        index = faiss.IndexResidualQuantizer(d, m, nbits, metric, st)
        index.rq.max_beam_size = 1
        index.rq.cp.niter = niter
    elif kind == 'ivfpq':
        index = faiss.IndexIVFPQ(faiss.IndexFlatL2(d), d, req['nlist'], m, nbits)
        index.cp.niter = niter
        index.pq.cp.niter = niter
    elif kind == 'ivfrq':
        index = faiss.IndexIVFResidualQuantizer(faiss.IndexFlatL2(d), d, req['nlist'], m, nbits, metric, st)
        index.cp.niter = niter
        index.rq.max_beam_size = 1
        index.rq.cp.niter = niter
    else:
        raise ValueError('unknown kind ' + kind)
    if 'ids_offset' in req:
        index = faiss.IndexIDMap(index)
    index.train(train)
    if 'ids_offset' in req:
        ids = req['ids_offset'] + 3 * np.arange(base.shape[0], dtype=np.int64)
        index.add_with_ids(base, ids)
    else:
        index.add(base)
    faiss.write_index(index, req['index'])
    search(index, read_fbin(req['queries']), req['k'], req.get('nprobe', 1), req['out'])
    return {'ntotal': int(index.ntotal)}


def main():
    req = json.load(sys.stdin)
    # One thread: OpenMP threads spin while waiting, which stalls a loaded 2-core machine.
    faiss.omp_set_num_threads(1)
    if req['op'] == 'version':
        out = {'version': faiss.__version__}
    elif req['op'] == 'search':
        index = faiss.read_index(req['index'])
        search(index, read_fbin(req['queries']), req['k'], req.get('nprobe', 1), req['out'])
        out = {'ntotal': int(index.ntotal), 'type': type(index).__name__}
    elif req['op'] == 'build':
        out = build(req)
    else:
        raise ValueError('unknown op ' + req['op'])
    json.dump(out, sys.stdout)


if __name__ == '__main__':
    main()
