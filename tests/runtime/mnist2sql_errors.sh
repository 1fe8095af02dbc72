#!/bin/bash
# mnist2sql_errors.sh — bad input gives one clear error naming the file and
# the problem, exit status 1, and no output file (nor temp file) left; an
# existing output file is untouched.  Covers: wrong magic, images/labels
# swapped, count mismatch, truncated gzip, truncated plain file, corrupt gzip
# CRC, trailing data, non-28x28 images, missing files, unusable --out.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/mnist2sql_lib.sh"

gen_idx "$T/good" 12 7 gz

# expect_fail NAME PATTERN [mnist2sql args...]: run on $T/case, check all.
expect_fail() {
    name=$1 pattern=$2; shift 2
    out="$T/out-$name"
    mkdir -p "$out"
    echo "old content" >"$out/mnist_train.sql"
    set +e
    "$M2S" --from "$T/case" --out "$out" "$@" 2>"$T/err"
    rc=$?
    set -e
    [ $rc = 1 ] || fail "$name: exit status $rc, want 1 ($(cat "$T/err"))"
    [ "$(wc -l <"$T/err")" = 1 ] || fail "$name: want one error line, got: $(cat "$T/err")"
    grep -qE "$pattern" "$T/err" || fail "$name: error '$(cat "$T/err")' does not match '$pattern'"
    [ "$(ls -A "$out")" = mnist_train.sql ] || fail "$name: left files: $(ls -A "$out")"
    [ "$(cat "$out/mnist_train.sql")" = "old content" ] || fail "$name: existing output overwritten"
    log "$name: $(cat "$T/err")"
}
fresh() { rm -rf "$T/case"; cp -r "$T/good" "$T/case"; }
py() { python3 -c "$@"; }

fresh
py 'import gzip,sys; p=sys.argv[1]; d=bytearray(gzip.open(p).read()); d[3]=4; gzip.open(p,"wb").write(d)' \
    "$T/case/t10k-images-idx3-ubyte.gz"
expect_fail magic "t10k-images-idx3-ubyte.gz: bad magic number 0x00000804, expected 0x00000803"

fresh
mv "$T/case/train-images-idx3-ubyte.gz" "$T/x"; mv "$T/case/train-labels-idx1-ubyte.gz" "$T/case/train-images-idx3-ubyte.gz"
mv "$T/x" "$T/case/train-labels-idx1-ubyte.gz"
expect_fail swapped "train-images-idx3-ubyte.gz: bad magic .*swapped"

fresh
cp "$T/good/t10k-labels-idx1-ubyte.gz" "$T/case/train-labels-idx1-ubyte.gz"
expect_fail count "train-images-idx3-ubyte.gz has 12 images but .*train-labels-idx1-ubyte.gz has 7 labels"

fresh
f="$T/case/train-images-idx3-ubyte.gz"; truncate -s $(( $(stat -c %s "$f") / 2 )) "$f"
expect_fail truncgz "train-images-idx3-ubyte.gz: corrupt or truncated gzip data: unexpected end of file"

fresh
gzip -d "$T/case/t10k-images-idx3-ubyte.gz"; truncate -s 2000 "$T/case/t10k-images-idx3-ubyte"
expect_fail truncplain "t10k-images-idx3-ubyte: truncated: header declares 7 images \(5488 bytes\) but the data ends after 1984 bytes"

fresh
py 'import sys; p=sys.argv[1]; d=bytearray(open(p,"rb").read()); d[-8]^=0xff; open(p,"wb").write(d)' \
    "$T/case/train-labels-idx1-ubyte.gz"
expect_fail crc "train-labels-idx1-ubyte.gz: corrupt or truncated gzip data: incorrect data check"

fresh
py 'import gzip,sys; p=sys.argv[1]; d=gzip.open(p).read()+b"\0\0"; gzip.open(p,"wb").write(d)' \
    "$T/case/train-labels-idx1-ubyte.gz"
expect_fail trailing "train-labels-idx1-ubyte.gz: unexpected data after the 12 items"

fresh
py 'import gzip,struct,sys; gzip.open(sys.argv[1],"wb").write(struct.pack(">IIII",0x803,7,32,32)+bytes(7*1024))' \
    "$T/case/t10k-images-idx3-ubyte.gz"
expect_fail dims "t10k-images-idx3-ubyte.gz: images are 32x32, but mnist2sql handles MNIST-format 28x28 images only"

fresh
rm "$T/case/t10k-labels-idx1-ubyte.gz"
expect_fail missing "t10k-labels-idx1-ubyte.gz: not found"

fresh
: >"$T/case/train-labels-idx1-ubyte.gz"
expect_fail empty "train-labels-idx1-ubyte.gz: truncated: empty file"

# --out is a file: nothing written anywhere
fresh
: >"$T/notadir"
set +e
"$M2S" --from "$T/case" --out "$T/notadir" 2>"$T/err"; rc=$?
set -e
[ $rc = 1 ] && grep -q "notadir" "$T/err" || fail "--out file: rc=$rc $(cat "$T/err")"
[ ! -s "$T/notadir" ] || fail "--out file was written"

# one bad set means no file at all, even for the good set
fresh
truncate -s 100 "$T/case/t10k-images-idx3-ubyte.gz"
rm -rf "$T/o2"
set +e; "$M2S" --from "$T/case" --out "$T/o2" 2>/dev/null; rc=$?; set -e
[ $rc = 1 ] && [ -z "$(ls -A "$T/o2" 2>/dev/null)" ] || fail "partial output: $(ls -A "$T/o2")"
log "ok"
