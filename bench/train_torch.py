#!/usr/bin/python3
"""bench/train_torch.py -- the reference network in PyTorch, for bench/train_bench.sh.

Same network and settings as the trainer plugin: 784 -> Dense(hidden, ReLU) -> Dense(10)
logits, softmax cross-entropy, Adam(lr 1e-3, betas .9/.999, eps 1e-7), Glorot-uniform
weights, zero biases, batch 32 reshuffled every epoch.  Reads the IDX(.gz) files
directly.  Prints one line per epoch and a final machine-readable line:
    RESULT sec_per_epoch=<mean s> best_epoch=<min s> accuracy=<acc>
Usage: train_torch.py DATADIR [epochs] [hidden] [threads] [seed]
"""
import gzip, os, sys, time
import numpy as np
import torch

def read_idx(path):
    op = gzip.open if path.endswith(".gz") else open
    with op(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)

def find(d, stem):
    for suffix in (".gz", ""):
        p = os.path.join(d, stem + suffix)
        if os.path.exists(p):
            return p
    sys.exit("train_torch.py: %s not found in %s" % (stem, d))

def main():
    d = sys.argv[1]
    epochs = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    hidden = int(sys.argv[3]) if len(sys.argv) > 3 else 128
    threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    xtr = torch.from_numpy(read_idx(find(d, "train-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0)
    ytr = torch.from_numpy(read_idx(find(d, "train-labels-idx1-ubyte")).astype(np.int64))
    xte = torch.from_numpy(read_idx(find(d, "t10k-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0)
    yte = torch.from_numpy(read_idx(find(d, "t10k-labels-idx1-ubyte")).astype(np.int64))
    model = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    for m in model:
        if isinstance(m, torch.nn.Linear):
            torch.nn.init.xavier_uniform_(m.weight)
            torch.nn.init.zeros_(m.bias)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    lossf = torch.nn.CrossEntropyLoss()
    n, bs, times = xtr.shape[0], 32, []
    for ep in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        tot, correct = 0.0, 0
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad()
            out = model(xb)
            loss = lossf(out, yb)
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
            correct += (out.argmax(1) == yb).sum().item()
        times.append(time.perf_counter() - t0)
        print("torch epoch %d: %.2fs loss %.4f accuracy %.4f" % (ep + 1, times[-1], tot / n, correct / n), flush=True)
    with torch.no_grad():
        acc = (model(xte).argmax(1) == yte).float().mean().item()
    print("torch test accuracy %.4f" % acc)
    print("RESULT sec_per_epoch=%.4f best_epoch=%.4f accuracy=%.4f" % (sum(times) / len(times), min(times), acc))

if __name__ == "__main__":
    main()
