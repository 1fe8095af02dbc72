#!/usr/bin/python3
"""tests/runtime/trainer_model.py -- an independent reader of the trainer's model file
(docs/model-format.md), used by trainer_e2e.sh to check the documented format and that
predictions published by `tributary predict` are those of the saved model.

Usage: trainer_model.py MODEL ROWS PREDICTIONS
  ROWS:        lines "<label> <pixels hex>" (psql output)
  PREDICTIONS: lines "<source id>\t<key>\t<json value>" of the prediction stream
Every prediction must be one of the ROWS' images classified by MODEL: the image is
found through its source entry (SOURCES file given as a 4th argument: "<id>\t<value>").
"""
import json, struct, sys, zlib
import numpy as np

def load(path):
    b = open(path, "rb").read()
    assert b[:8] == b"TRIBMODL", "bad magic"
    ver, arch, n_in, hid, out, _res = struct.unpack("<6I", b[8:32])
    assert (ver, arch) == (1, 1), (ver, arch)
    n = n_in * hid + hid + hid * out + out
    assert len(b) == 32 + 4 * n + 4, "size %d" % len(b)
    assert struct.unpack("<I", b[-4:])[0] == zlib.crc32(b[:-4]) & 0xffffffff, "crc"
    p = np.frombuffer(b[32:-4], dtype="<f4")
    w1 = p[:n_in * hid].reshape(n_in, hid); o = n_in * hid
    b1 = p[o:o + hid]; o += hid
    w2 = p[o:o + hid * out].reshape(hid, out); o += hid * out
    return w1, b1, w2, p[o:o + out]

def probs(m, px):
    w1, b1, w2, b2 = m
    x = np.frombuffer(px, dtype=np.uint8).astype(np.float32) / np.float32(255.0)
    h = np.maximum(x @ w1 + b1, 0)
    z = h @ w2 + b2
    e = np.exp(z - z.max())
    return e / e.sum()

def main():
    m = load(sys.argv[1])
    sources = {}
    for line in open(sys.argv[3]):
        sid, val = line.rstrip("\n").split("\t")
        sources[sid] = bytes(int(v) for v in bytes.fromhex(val).split(b","))
    n = agree = 0
    for line in open(sys.argv[2]):
        sid, key, val = line.rstrip("\n").split("\t")
        v = json.loads(bytes.fromhex(val))
        src = v["source"]
        assert src in sources, "prediction for unknown source %s" % src
        p = probs(m, sources[src])
        assert len(v["probabilities"]) == 10
        assert int(np.argmax(p)) == v["prediction"], (src, p, v)
        assert np.allclose(p, v["probabilities"], atol=2e-5), (src, p, v["probabilities"])
        assert v.get("label") == int(bytes.fromhex(key)), (v, key)
        n += 1
        agree += v["prediction"] == v["label"]
    print("model file check: %d predictions reproduced from the saved model (accuracy %.3f)"
          % (n, agree / max(n, 1)))

if __name__ == "__main__":  # trainer_mqtt.sh imports load() and probs()
    main()
