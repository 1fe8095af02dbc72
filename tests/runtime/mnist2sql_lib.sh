# tests/runtime/mnist2sql_lib.sh — helpers shared by the mnist2sql tests.
# Source after tests/lib.sh.  Makes small IDX files and npm-style digit JSON
# with python3 (deterministic content), and reads SQL output back.

M2S=$(command -v mnist2sql || echo "$TRIB_BUILDDIR/tools/mnist2sql/mnist2sql")
[ -x "$M2S" ] || fail "mnist2sql not built ($M2S)"
if [ -n "${M2S_WRAPPER:-}" ]; then
    M2S=$(_wrap "$M2S_WRAPPER" "$M2S" mnist2sql)
fi

# gen_idx DIR NTRAIN NTEST [gz|plain] — the four MNIST files, seeded content.
gen_idx() {
    python3 - "$@" <<'PY'
import gzip, os, random, struct, sys
d, ntrain, ntest = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else "gz"
os.makedirs(d, exist_ok=True)
rnd = random.Random(42)
def put(name, header, body):
    data = header + body
    if mode == "gz":
        with gzip.open(os.path.join(d, name + ".gz"), "wb") as f: f.write(data)
    else:
        with open(os.path.join(d, name), "wb") as f: f.write(data)
for prefix, n in (("train", ntrain), ("t10k", ntest)):
    px = bytes(rnd.randrange(256) if rnd.random() < 0.3 else 0 for _ in range(n * 784))
    lab = bytes(rnd.randrange(10) for _ in range(n))
    put(prefix + "-images-idx3-ubyte", struct.pack(">IIII", 0x803, n, 28, 28), px)
    put(prefix + "-labels-idx1-ubyte", struct.pack(">II", 0x801, n), lab)
PY
}

# idx_rows IMAGES LABELS — print "hex|label" per row, in file order.
idx_rows() {
    python3 - "$1" "$2" <<'PY'
import gzip, sys
def rd(p):
    with open(p, "rb") as f: b = f.read()
    return gzip.decompress(b) if b[:2] == b"\x1f\x8b" else b
img, lab = rd(sys.argv[1])[16:], rd(sys.argv[2])[8:]
out = sys.stdout
for i in range(len(lab)):
    out.write("%s|%d\n" % (img[i*784:(i+1)*784].hex(), lab[i]))
PY
}

# sql_rows FILE — decode an insert- or copy-format file (plain shape) to
# "hex|label" lines, checking the exact line syntax as it goes.
sql_rows() {
    python3 - "$1" <<'PY'
import re, sys
ins = re.compile(r"^INSERT INTO [\w.]+ \(pixels, labels\) VALUES \(E'\\\\x([0-9a-f]{1568})', (\d+)\);$")
cp = re.compile(r"^\\\\x([0-9a-f]{1568})\t(\d+)$")
copying = False
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.rstrip("\n")
    if copying:
        if line == "\\.": copying = False; continue
        m = cp.match(line)
    elif line.startswith("CREATE TABLE"): continue
    elif line.startswith("COPY "): copying = True; continue
    else: m = ins.match(line)
    if not m: sys.exit("%s:%d: unexpected line: %.80s" % (sys.argv[1], n, line))
    print("%s|%s" % (m.group(1), m.group(2)))
PY
}
