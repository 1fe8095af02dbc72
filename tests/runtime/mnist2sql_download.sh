#!/bin/bash
# mnist2sql_download.sh — --download against a local HTTP server (python3
# http.server on a free loopback port) serving generated IDX files: success,
# then a 404, a truncated gzip, a wrong magic number, a refused connection
# and a checksum mismatch, each a clear error naming the URL with exit 1 and
# no file left behind; mirror fallback; files already present are kept;
# credentials in a mirror URL are never printed.
. "$TRIB_SRCDIR/tests/lib.sh"
. "$TRIB_SRCDIR/tests/runtime/mnist2sql_lib.sh"

W=$T/www
gen_idx "$W/good" 30 10 gz
mkdir -p "$W/missing" "$W/trunc" "$W/magic"
cp "$W"/good/* "$W/trunc/"; cp "$W"/good/* "$W/magic/"
f="$W/trunc/train-images-idx3-ubyte.gz"; truncate -s $(( $(stat -c %s "$f") - 100 )) "$f"
python3 -c 'import gzip,sys; p=sys.argv[1]; d=bytearray(gzip.open(p).read()); d[2]=9; gzip.open(p,"wb").write(d)' \
    "$W/magic/t10k-labels-idx1-ubyte.gz"

PORT=$(free_port)
python3 -m http.server --bind 127.0.0.1 --directory "$W" "$PORT" >"$T/http.log" 2>&1 &
_pids="$_pids $!"
wait_for 10 python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$PORT/good/')" \
    || fail "http server did not start"
URL=http://127.0.0.1:$PORT

# success: the four files land in --from, identical, and the SQL is written
"$M2S" --download --mirror "$URL/good/" --from "$T/dl" --out "$T/out" 2>"$T/log" \
    || fail "download: $(cat "$T/log")"
for n in train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz; do
    cmp -s "$W/good/$n" "$T/dl/$n" || fail "$n differs after download"
done
[ "$(ls -A "$T/dl" | wc -l)" = 4 ] || fail "extra files in download dir: $(ls -A "$T/dl")"
idx_rows "$W/good/train-images-idx3-ubyte.gz" "$W/good/train-labels-idx1-ubyte.gz" >"$T/want"
sql_rows "$T/out/mnist_train.sql" | cmp -s "$T/want" - || fail "rows differ after download"
grep -q "downloaded $T/dl/t10k-labels-idx1-ubyte.gz" "$T/log" || fail "no download message"

# again: files present and valid are kept, nothing fetched (404 mirror unused)
"$M2S" --mirror "$URL/missing/" --from "$T/dl" --out "$T/out" 2>"$T/log" || fail "rerun: $(cat "$T/log")"
grep -q "already present" "$T/log" || fail "no 'already present'"

# dl_fail NAME PATTERN ARGS...: exit 1, last line matches, no temp file and
# no output; files that downloaded and verified before the failure may stay
dl_fail() {
    name=$1 pattern=$2; shift 2
    rm -rf "$T/d-$name" "$T/o-$name"
    set +e
    "$M2S" --download --from "$T/d-$name" --out "$T/o-$name" "$@" 2>"$T/err"
    rc=$?
    set -e
    [ $rc = 1 ] || fail "$name: exit $rc, want 1: $(cat "$T/err")"
    tail -1 "$T/err" | grep -qE "$pattern" || fail "$name: '$(tail -1 "$T/err")' does not match '$pattern'"
    [ -z "$(ls -A "$T/d-$name" | grep -v '^\(train\|t10k\)-\(images\|labels\)-idx[13]-ubyte\.gz$')" ] \
        || fail "$name: left in download dir: $(ls -A "$T/d-$name")"
    [ ! -e "$T/o-$name" ] || fail "$name: output dir created"
    log "$name: $(tail -1 "$T/err")"
}
dl_fail 404 "^mnist2sql: $URL/missing/train-images-idx3-ubyte.gz: HTTP 404\$" --mirror "$URL/missing/"
dl_fail truncated "$URL/trunc/train-images-idx3-ubyte.gz: corrupt or truncated gzip data" --mirror "$URL/trunc"
dl_fail magic "$URL/magic/t10k-labels-idx1-ubyte.gz: bad magic number 0x00000901, expected 0x00000801" \
    --mirror "$URL/magic/"
[ "$(ls "$T/d-magic" | tr '\n' ' ')" = "t10k-images-idx3-ubyte.gz train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz " ] \
    || fail "magic: download dir holds $(ls -A "$T/d-magic")"
CLOSED=$(free_port)
dl_fail refused "http://127.0.0.1:$CLOSED/train-images-idx3-ubyte.gz: .*(onnect|refused)" \
    --mirror "http://127.0.0.1:$CLOSED/"
dl_fail checksum "$URL/good/train-images-idx3-ubyte.gz: size [0-9]+ bytes, but the MNIST file train-images-idx3-ubyte.gz is 9912422 bytes" \
    --mirror "$URL/good/" --checksums mnist
dl_fail all-mirrors "train-images-idx3-ubyte.gz: all 2 mirrors failed; last: $URL/trunc/train-images-idx3-ubyte.gz: corrupt" \
    --mirror "$URL/missing/" --mirror "$URL/trunc/"
grep -q "$URL/missing/train-images-idx3-ubyte.gz: HTTP 404; trying the next mirror" "$T/err" \
    || fail "first mirror's failure not reported: $(cat "$T/err")"

# credentials in a mirror URL never appear in messages
dl_fail secret "http://\*\*\*@127.0.0.1:$PORT/missing/train-images-idx3-ubyte.gz: HTTP 404" \
    --mirror "http://user:s3cr3t@127.0.0.1:$PORT/missing/"
! grep -q s3cr3t "$T/err" || fail "password printed"

# fallback: the first mirror 404s, the second works
"$M2S" --mirror "$URL/missing/" --mirror "$URL/good/" --from "$T/fb" --out "$T/fbo" 2>"$T/log" \
    || fail "fallback: $(cat "$T/log")"
grep -q "HTTP 404; trying the next mirror" "$T/log" || fail "fallback not reported"
sql_rows "$T/fbo/mnist_train.sql" | cmp -s "$T/want" - || fail "rows differ after fallback"
log "ok"
