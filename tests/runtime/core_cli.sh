#!/usr/bin/env bash
# core_cli.sh — the CLI and config/loader errors a user meets first:
# --help/--version, `plugins`, `check` with typos, wrong types, missing
# required options, unknown/missing/foreign/wrong-ABI plugins, the config's
# shape (missing or misplaced sections, converter values), metrics.listen.
. "$TRIB_SRCDIR/tests/lib.sh"

expect_fail() { # expect_fail "substring" CMD...
    local want=$1; shift
    if "$@" >"$T/out" 2>&1; then fail "expected failure: $*"; fi
    grep -qF -- "$want" "$T/out" || { cat "$T/out"; fail "missing '$want' in output of: $*"; }
}

"$TRIB" --version | grep -q "plugin ABI 1\." || fail "--version"
"$TRIB" --help | grep -q "run CONFIG" || fail "--help"
expect_fail "unknown command 'frobnicate'" "$TRIB" frobnicate
"$TRIB" plugins >"$T/plugins" 2>/dev/null
grep -q "^mnist .*transform" "$T/plugins" || fail "plugins lists mnist"
grep -q "^file .*sink" "$T/plugins" || fail "plugins lists file"
"$TRIB" plugins mnist | grep -q "pixels_field" || fail "plugins mnist shows options"

cat >"$T/ok.yaml" <<'Y'
pipeline:
  source:
    plugin: gen
    count: 5
  transforms:
    - plugin: mnist
  sink:
    plugin: file
    path: /dev/null
Y
"$TRIB" check "$T/ok.yaml" | grep -q "OK" || fail "check of a valid config"

sed 's/    path: \/dev\/null/    path: \/dev\/null\n    pathh: x/' "$T/ok.yaml" >"$T/typo.yaml"
expect_fail "typo.yaml:10:5: unknown key 'pathh' in sink (file)" "$TRIB" check "$T/typo.yaml"

sed 's/count: 5/count: five/' "$T/ok.yaml" >"$T/type.yaml"
expect_fail "type.yaml:4:12: option 'count' in source (gen) expects an integer, got 'five'" \
    "$TRIB" check "$T/type.yaml"

sed '/path: \/dev\/null/d' "$T/ok.yaml" >"$T/req.yaml"
expect_fail "missing required option 'path' in sink (file)" "$TRIB" check "$T/req.yaml"

sed 's/plugin: mnist/plugin: nosuch/' "$T/ok.yaml" >"$T/unk.yaml"
expect_fail "plugin 'nosuch' not found" "$TRIB" check "$T/unk.yaml"

sed 's/plugin: file/plugin: badabi/' "$T/ok.yaml" >"$T/abi.yaml"
expect_fail "plugin 'badabi' was built for plugin ABI 99.0 but this tributary provides ABI 1." \
    "$TRIB" check "$T/abi.yaml"
expect_fail "badabi.so" "$TRIB" check "$T/abi.yaml"

sed 's/plugin: file/plugin: nosym/' "$T/ok.yaml" >"$T/nosym.yaml"
expect_fail "not a Tributary plugin (no 'tributary_plugin' symbol" "$TRIB" check "$T/nosym.yaml"

echo "not an elf" >"$T/junk.so"
sed "s|plugin: file|plugin: $T/junk.so|" "$T/ok.yaml" >"$T/junk.yaml"
expect_fail "junk.so: cannot load plugin" "$TRIB" check "$T/junk.yaml"

# The shape of the config itself: each mistake named with file, line and column.
cfg_err() { # cfg_err NAME "expected message" [COMMAND] < YAML
    cat >"$T/$1.yaml"
    expect_fail "$2" "$TRIB" "${3:-check}" "$T/$1.yaml"
}
cfg_err nosink "nosink.yaml:2:3: missing 'sink' in pipeline" <<'Y'
pipeline:
  source: {plugin: gen}
Y
cfg_err nosource "nosource.yaml:2:3: missing 'source' in pipeline" <<'Y'
pipeline:
  sink: {plugin: file, path: /dev/null}
Y
cfg_err noplugin "noplugin.yaml:3:5: missing 'plugin' in source" <<'Y'
pipeline:
  source:
    count: 5
  sink: {plugin: file, path: /dev/null}
Y
cfg_err notmap "notmap.yaml:2:11: 'source' must be a mapping" <<'Y'
pipeline:
  source: gen
  sink: {plugin: file, path: /dev/null}
Y
cfg_err notlist "notlist.yaml:3:15: 'transforms' must be a list" <<'Y'
pipeline:
  source: {plugin: gen}
  transforms: {plugin: mnist}
  sink: {plugin: file, path: /dev/null}
Y
cfg_err pltypo "pltypo.yaml:3:3: unknown key 'transform' in pipeline" <<'Y'
pipeline:
  source: {plugin: gen}
  transform: []
  sink: {plugin: file, path: /dev/null}
Y
cfg_err nopipe "nopipe.yaml: missing 'pipeline' section" run <<'Y'
log_level: info
Y
cfg_err queue "queue.yaml: queue_size, batch_size must be positive" <<'Y'
queue_size: 0
pipeline:
  source: {plugin: gen}
  sink: {plugin: file, path: /dev/null}
Y
cfg_err conv "conv.yaml:3:52: option 'converter' in sink must be one of json|raw" <<'Y'
pipeline:
  source: {plugin: gen}
  sink: {plugin: file, path: /dev/null, converter: avro}
Y
cfg_err bin "bin.yaml:3:58: option 'binary_handling' in sink must be one of base64|hex" <<'Y'
pipeline:
  source: {plugin: gen}
  sink: {plugin: file, path: /dev/null, binary_handling: b85}
Y

# The broker plugins' own option errors point at the option (built plugins only).
sink_err() { # sink_err PLUGIN "SINK LINES" "expected message"
    "$TRIB" plugins "$1" >/dev/null 2>&1 || return 0
    printf 'pipeline:\n  source: {plugin: gen}\n  sink:\n    plugin: %s\n%s\n' "$1" "$2" >"$T/sink.yaml"
    expect_fail "$3" "$TRIB" check "$T/sink.yaml"
}
sink_err kafka $'    bootstrap_servers: 127.0.0.1:9\n    kafka:\n      linger.ms: 5\n      batch.size: lots' \
    'sink.yaml:8:19: sink (kafka): option kafka.batch.size: Invalid value'
sink_err mqtt '    url: http://x' "sink.yaml:5:10: sink (mqtt): option 'url': 'http://x' is not tcp://host:port"
sink_err mqtt $'    url: tcp://127.0.0.1:1\n    max_inflight: 0' \
    "sink.yaml:6:19: sink (mqtt): option 'max_inflight': 0 is not within 1..65535"
sink_err redis '    url: http://x' "sink.yaml:5:10: sink (redis): option 'url': invalid redis url: must start with redis://"

printf 'metrics:\n  listen: 127.0.0.1:91x\n' | cat "$T/ok.yaml" - >"$T/listen.yaml"
expect_fail "metrics.listen '127.0.0.1:91x' must be HOST:PORT" "$TRIB" run "$T/listen.yaml"

sed 's/plugin: mnist/plugin: file/' "$T/ok.yaml" >"$T/role.yaml"
expect_fail "cannot be used as a transform: it provides sink" "$TRIB" check "$T/role.yaml"

{ cat "$T/ok.yaml"; echo "thread_nice: 25"; } >"$T/nice.yaml"
expect_fail "nice.yaml: thread_nice must be between 0 and 19 (it is 25)" "$TRIB" check "$T/nice.yaml"

printf 'pipeline:\n  source: [\n' >"$T/syntax.yaml"
expect_fail "syntax.yaml:" "$TRIB" check "$T/syntax.yaml"
expect_fail "cannot open config" "$TRIB" check "$T/nonexistent.yaml"

sed 's|path: /dev/null|path: "${TRIB_UNSET_VAR_X}"|' "$T/ok.yaml" >"$T/env.yaml"
unset TRIB_UNSET_VAR_X
expect_fail "env.yaml:9:11: environment variable TRIB_UNSET_VAR_X is not set" "$TRIB" check "$T/env.yaml"
TRIB_UNSET_VAR_X=/dev/null "$TRIB" check "$T/env.yaml" >/dev/null || fail "env var substituted"

printf 'pipeline:\n  source:\n    plugin: gen\n  sink:\n    plugin: file\n    path: x\nbogus: 1\n' >"$T/top.yaml"
expect_fail "top.yaml:7:1: unknown key 'bogus' in the top level" "$TRIB" check "$T/top.yaml"
echo "core_cli: all checks passed"
