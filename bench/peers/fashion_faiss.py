# faiss 1.7.3 on Fashion-MNIST with the protocol of bench/accuracy.js (--train-count 10000 --query-count 200): train
# on the first 10 000 base images, encode all 60 000, exact search of the first 200 test queries over the
# reconstructions, against the shipped ground truth. A stand-alone script because the accuracy script's faiss pass
# writes nothing until every codec is done, and faiss's RQ at d = 784 takes tens of minutes on two cores.
#   /usr/bin/python3 bench/peers/fashion_faiss.py [out.json]
# Prints one JSON row per codec (the accuracy script's row format) and writes them all to out.json.
import gzip, json, os, time, sys
import numpy as np, faiss
def idx(p):
    raw = gzip.open(p).read(); n = int.from_bytes(raw[4:8],'big'); d = int.from_bytes(raw[8:12],'big')*int.from_bytes(raw[12:16],'big')
    return np.frombuffer(raw[16:16+n*d], dtype=np.uint8).reshape(n, d).astype(np.float32)
xb = idx('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')
xq = idx('/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz')[:200]
data = os.environ.get('QUIVER_DATA_DIR', os.path.join(os.path.dirname(__file__), '..', '..', '..', 'shared', 'data'))
g = np.fromfile(os.path.join(data, 'fashion-mnist', 'fashion-mnist_test_vs_train_groundtruth.ivecs'), dtype=np.int32)
gt = g.reshape(-1, g[0]+1)[:200, 1:]
faiss.omp_set_num_threads(2)
rows = []
for name, factory, beam in [('PQ8x8','PQ8x8',None), ('RQ8x8,beam=1','RQ8x8',1), ('RQ8x8','RQ8x8',5)]:
    index = faiss.index_factory(784, factory)
    if beam: index.rq.max_beam_size = beam
    t = time.perf_counter(); index.train(xb[:10000]); tr = time.perf_counter() - t
    t = time.perf_counter(); codes = index.sa_encode(xb); en = time.perf_counter() - t
    dec = index.sa_decode(codes)
    mse = float(((xb.astype(np.float64) - dec) ** 2).sum(1).mean())
    fl = faiss.IndexFlatL2(784); fl.add(dec); I = fl.search(xq, 100)[1]
    r = lambda k: float(np.mean([gt[i,0] in I[i,:k] for i in range(len(xq))]))
    ten = float(np.mean([len(set(I[i,:10]) & set(gt[i,:10])) / 10 for i in range(len(xq))]))
    row = dict(system='faiss %s' % faiss.__version__, name=name, spec=factory + (' (beam %d)' % beam if beam else ''), codeBytes=int(codes.shape[1]),
               trainSeconds=tr, encodeSeconds=en, mse=mse, r1=r(1), r10=r(10), r100=r(100), tenAt10=ten)
    rows.append(row); print(json.dumps(row), flush=True)
if len(sys.argv) > 1:
    json.dump(rows, open(sys.argv[1], 'w'), indent=1)
