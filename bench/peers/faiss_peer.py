#!/usr/bin/python3
"""faiss as a peer of quiver's benchmarks, run with Debian's python3-faiss (faiss 1.7.3).

Debian builds faiss without SIMD, so its timings say nothing about what faiss can do: the suite labels it an
accuracy reference. The request comes as JSON on stdin, the answer goes as JSON to stdout; result ids are
written as raw little-endian int64 files so that the caller scores them with its own recall code.

  faiss_peer.py version     print the faiss version
  faiss_peer.py suite       build one index, then per search setting: timings and result ids
  faiss_peer.py accuracy    per codec: train and encode time, MSE of the reconstructions, and the ids of an
                            exact search over the reconstructions (the distances ADC computes)

Vectors arrive as .fbin / .u8bin files: int32 n, int32 d, then n × d float32 / uint8 values.
"""
import json
import os
import sys
import time

import numpy as np

import faiss


def read_bin(path, count=None):
    dtype = np.uint8 if path.endswith('.u8bin') else np.float32
    with open(path, 'rb') as f:
        n, d = (int(v) for v in np.fromfile(f, dtype=np.int32, count=2))
        if count is not None:
            n = min(n, int(count))
        x = np.fromfile(f, dtype=dtype, count=n * d).reshape(n, d)
    return np.ascontiguousarray(x, dtype=np.float32)


def resident_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


def calls_per_second(fn, min_seconds, rounds):
    """Same protocol as the Node side: one untimed warm-up call, then `rounds` rounds of at least min_seconds
    each; the best round's rate counts (the one other processes disturbed least)."""
    fn(0)
    calls = 0
    best = 0.0
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        while True:
            calls += 1
            done += 1
            fn(calls)
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
        best = max(best, done / elapsed)
    return best


def prepare(metric, *arrays):
    """faiss has no cosine metric: cosine is inner product over unit vectors."""
    if metric == 'cosine':
        for a in arrays:
            faiss.normalize_L2(a)
    return faiss.METRIC_L2 if metric == 'l2' else faiss.METRIC_INNER_PRODUCT


def set_search_params(index, params):
    space = faiss.ParameterSpace()
    names = {'nprobe': 'nprobe', 'ef': 'efSearch'}
    for key, value in params.items():
        if key == 'refine':
            # faiss 1.7.3's ParameterSpace does not know IndexRefine's k_factor: set the field itself.
            refine = faiss.downcast_index(index)
            if not hasattr(refine, 'k_factor'):
                raise ValueError('refine needs a refining index (",RFlat")')
            refine.k_factor = float(value)
        else:
            space.set_index_parameter(index, names[key], value)


def write_ids(path, ids):
    np.ascontiguousarray(ids, dtype='<i8').tofile(path)


def serialized_size(index):
    return len(faiss.serialize_index(index))


def run_suite(req):
    xb = read_bin(req['base'])
    xq = read_bin(req['queries'])
    metric = prepare(req['metric'], xb, xq)
    train_count = req.get('trainCount') or len(xb)
    all_threads = faiss.omp_get_max_threads()
    k, recall_k, min_seconds, rounds = req['k'], req['recallK'], req['minSeconds'], req.get('rounds', 1)

    rss_before = resident_bytes()
    index = faiss.index_factory(xb.shape[1], req['factory'], metric)
    start = time.perf_counter()
    index.train(xb[:train_count])
    train_seconds = time.perf_counter() - start
    empty_size = serialized_size(index)
    start = time.perf_counter()
    index.add(xb)
    add_seconds = time.perf_counter() - start
    rss_delta = resident_bytes() - rss_before
    # Bytes the added vectors cost, whatever the index type: codes, stored ids, graph links.
    bytes_per_vector = (serialized_size(index) - empty_size) / len(xb)

    results = []
    for i, params in enumerate(req['sweep']):
        set_search_params(index, params)
        qps = {}
        for name, threads in (('1', 1), ('All', all_threads)):
            faiss.omp_set_num_threads(threads)
            qps['batch' + name] = calls_per_second(lambda _: index.search(xq, k), min_seconds, rounds) * len(xq)
            qps['single' + name] = calls_per_second(
                lambda c: index.search(xq[c % len(xq):c % len(xq) + 1], k), min_seconds, rounds)
        faiss.omp_set_num_threads(all_threads)
        ids_file = os.path.join(req['outDir'], 'ids-%d.i64' % i)
        recall_ids_file = os.path.join(req['outDir'], 'recall-ids-%d.i64' % i)
        write_ids(ids_file, index.search(xq, k)[1])
        write_ids(recall_ids_file, index.search(xq, recall_k)[1])
        results.append({'params': params, 'qps': qps, 'idsFile': ids_file, 'recallIdsFile': recall_ids_file})

    return {
        'version': faiss.__version__,
        'factory': req['factory'],
        'indexType': type(faiss.downcast_index(index)).__name__,
        'threads': all_threads,
        'trainSeconds': train_seconds,
        'addSeconds': add_seconds,
        'rssDeltaBytes': rss_delta,
        'bytesPerVector': bytes_per_vector,
        'results': results,
    }


def beam_targets(index):
    """The residual quantizers inside an index, whose encoding beam width can be set."""
    index = faiss.downcast_index(index)
    if isinstance(index, faiss.IndexPreTransform):
        index = faiss.downcast_index(index.index)
    if hasattr(index, 'rq'):
        return [index.rq]
    if hasattr(index, 'prq'):
        return [faiss.downcast_AdditiveQuantizer(index.prq.subquantizer(i)) for i in range(index.prq.nsplits)]
    return []


def run_accuracy(req):
    xb = read_bin(req['base'])
    xq = read_bin(req['queries'])
    train_count = req.get('trainCount') or len(xb)
    d = xb.shape[1]
    out = []
    for i, codec in enumerate(req['codecs']):
        entry = {'name': codec['name'], 'factory': codec['factory'], 'beam': codec.get('beam')}
        try:
            index = faiss.index_factory(d, codec['factory'])
            targets = beam_targets(index)
            if codec.get('beam'):
                if not targets:
                    raise ValueError('beam= applies to residual quantizers only')
                for rq in targets:
                    rq.max_beam_size = codec['beam']
            if targets:
                entry['beam'] = int(targets[0].max_beam_size)
            start = time.perf_counter()
            index.train(xb[:train_count])
            entry['trainSeconds'] = time.perf_counter() - start
            start = time.perf_counter()
            codes = index.sa_encode(xb)
            entry['encodeSeconds'] = time.perf_counter() - start
            entry['codeBytes'] = int(codes.shape[1])
            decoded = index.sa_decode(codes)
            entry['mse'] = float(((xb.astype(np.float64) - decoded) ** 2).sum(axis=1).mean())
            flat = faiss.IndexFlatL2(d)
            flat.add(decoded)
            ids_file = os.path.join(req['outDir'], 'accuracy-ids-%d.i64' % i)
            write_ids(ids_file, flat.search(xq, req['k'])[1])
            entry['idsFile'] = ids_file
        except Exception as error:  # an unsupported factory string is a result to report, not a crash
            entry['error'] = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        out.append(entry)
        print(json.dumps({'progress': codec['name']}), file=sys.stderr, flush=True)
    return {'version': faiss.__version__, 'threads': faiss.omp_get_max_threads(), 'codecs': out}


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ''
    if command == 'version':
        print(json.dumps({'version': faiss.__version__}))
        return
    if command not in ('suite', 'accuracy'):
        print('usage: faiss_peer.py version|suite|accuracy < request.json', file=sys.stderr)
        sys.exit(2)
    request = json.load(sys.stdin)
    answer = run_suite(request) if command == 'suite' else run_accuracy(request)
    print(json.dumps(answer))


if __name__ == '__main__':
    main()
