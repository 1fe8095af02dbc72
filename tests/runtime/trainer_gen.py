#!/usr/bin/python3
"""tests/runtime/trainer_gen.py -- Redis protocol (for `redis-cli --pipe`) that XADDs
Fashion-MNIST images to a stream the way the `mnist` transform writes them:
key = label as text, value = pixels as CSV.

Usage: trainer_gen.py DIR SET FIRST COUNT STREAM
  DIR: directory of the IDX .gz files; SET: train or t10k; images FIRST..FIRST+COUNT-1
"""
import gzip, sys

def resp(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)

d, s, first, count, stream = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
img = gzip.open("%s/%s-images-idx3-ubyte.gz" % (d, s)).read()[16:]
lab = gzip.open("%s/%s-labels-idx1-ubyte.gz" % (d, s)).read()[8:]
w = sys.stdout.buffer
for i in range(first, first + count):
    px = img[i * 784:(i + 1) * 784]
    w.write(resp("XADD", stream, "*", "key", str(lab[i]), "value", ",".join(map(str, px))))
