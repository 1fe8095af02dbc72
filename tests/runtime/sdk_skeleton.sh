#!/usr/bin/env bash
# sdk_skeleton.sh — a plugin author's path: install Tributary into a temp
# prefix, build examples/plugin-skeleton against the installed header only
# (pkg-config tributary), load it through a config and check its effect.
. "$TRIB_SRCDIR/tests/lib.sh"

make -s -C "$TRIB_BUILDDIR" install DESTDIR="$T/dest" >"$T/install.log" 2>&1 \
    || { cat "$T/install.log"; fail "make install"; }
pc=$(find "$T/dest" -name tributary.pc | head -n1)
[ -n "$pc" ] || fail "tributary.pc not installed"
hdr=$(find "$T/dest" -path '*/include/tributary/plugin.h' | head -n1)
[ -n "$hdr" ] || fail "plugin.h not installed"
ls "$(dirname "$pc")/../tributary/"mnist.so >/dev/null || fail "plugins not installed under pkglibdir"
export PKG_CONFIG_PATH=$(dirname "$pc") PKG_CONFIG_SYSROOT_DIR=$T/dest
pkg-config --cflags tributary | grep -q -- "-I$T/dest" || fail "pkg-config cflags"

mkdir "$T/sk"
cp "$TRIB_SRCDIR/examples/plugin-skeleton/tag.c" "$TRIB_SRCDIR/examples/plugin-skeleton/Makefile" "$T/sk/"
# build with nothing of the source tree on the include path
env -u CPATH -u C_INCLUDE_PATH make -s -C "$T/sk" CC="${CC:-cc}" >"$T/sk.log" 2>&1 \
    || { cat "$T/sk.log"; fail "skeleton build"; }
[ -f "$T/sk/tag.so" ] || fail "tag.so not built"
"$TRIB" plugins "$T/sk/tag.so" | grep -q "drop_value" || fail "plugins shows the skeleton's options"

cat >"$T/c.yaml" <<Y
state_dir: $T/state
pipeline:
  source:
    plugin: gen
    count: 30
  transforms:
    - plugin: $T/sk/tag.so
      header: team
      value: ml
      field: labels
      drop_value: "9"
    - plugin: mnist
  sink:
    plugin: file
    path: $T/out.jsonl
Y
"$TRIB" run "$T/c.yaml" 2>"$T/run.log" || { cat "$T/run.log"; fail "run with the skeleton"; }
python3 - "$T/out.jsonl" <<'PY' || fail "skeleton effect"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 27, len(rows)               # rows with label 9 dropped
assert all(r["headers"] == {"team": "ml"} for r in rows)
assert all(r["key"] != "9" for r in rows)
PY
sed 's/      value: ml/      value: ml\n      colour: red/' "$T/c.yaml" >"$T/bad.yaml"
if "$TRIB" check "$T/bad.yaml" >"$T/bad.log" 2>&1; then fail "unknown skeleton option accepted"; fi
grep -q "unknown key 'colour' in transforms\[0\] (tag)" "$T/bad.log" || { cat "$T/bad.log"; fail "skeleton option error"; }
echo "sdk_skeleton: all checks passed"
