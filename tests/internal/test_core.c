/*
 * test_core.c — unit tests of the core: config loading and errors, typed
 * options, environment substitution, the json converter, the ack window,
 * interned strings in records and the small encoders.
 */
#include "ackq.h"
#include "cfg.h"
#include "convert.h"
#include "options.h"
#include "record.h"
#include "util.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const trib_option table[] = {
    {"url", TRIB_OPT_STRING, NULL, 1, NULL, "where", 1},
    {"maxlen", TRIB_OPT_INT, "0", 0, NULL, "trim", 0},
    {"ratio", TRIB_OPT_DOUBLE, "0.5", 0, NULL, "r", 0},
    {"on", TRIB_OPT_BOOL, "false", 0, NULL, "b", 0},
    {"mode", TRIB_OPT_ENUM, "a", 0, "a|b|c", "m", 0},
    {"tables", TRIB_OPT_LIST, "x, y", 0, NULL, "l", 0},
    {"props", TRIB_OPT_MAP, NULL, 0, NULL, "m", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};
static const char *const reserved[] = {"plugin", NULL};

/* Build options from a YAML snippet holding one mapping `sink:`. */
static trib_opts *build(const char *yaml, char *err, size_t errlen)
{
    config *c = config_parse("t.yaml", yaml, strlen(yaml), err, errlen);
    if (!c)
        return NULL;
    trib_opts *o = opts_build(table, cnode_get(c->root, "sink"), reserved, "sink (redis)", err,
                              errlen);
    config_free(c);
    return o;
}

static void test_options(void)
{
    char err[512] = "";
    trib_opts *o = build("sink:\n  plugin: redis\n  url: redis://x\n  maxlen: 10\n"
                         "  tables: [a, b, c]\n  props: {k1: v1, k2: 2}\n  on: yes\n",
                         err, sizeof err);
    ok(o != NULL, "valid section builds (%s)", err);
    if (o) {
        is_str(opts_str(o, "url"), "redis://x", "string option");
        ok(opts_int(o, "maxlen") == 10, "int option");
        ok(opts_double(o, "ratio") == 0.5, "double default");
        ok(opts_bool(o, "on") == 1, "bool option");
        is_str(opts_str(o, "mode"), "a", "enum default");
        const char *const *items;
        ok(opts_list(o, "tables", &items) == 3 && !strcmp(items[2], "c"), "list option");
        const char *const *k, *const *v;
        ok(opts_map(o, "props", &k, &v) == 2 && !strcmp(k[1], "k2") && !strcmp(v[1], "2"),
           "map option");
        ok(opts_given(o, "url") && !opts_given(o, "mode"), "given vs default");
        opts_free(o);
    }
    o = build("sink:\n  url: u\n", err, sizeof err);
    const char *const *items;
    ok(o && opts_list(o, "tables", &items) == 2 && !strcmp(items[1], "y"), "list default split");
    opts_free(o);

    o = build("sink:\n  plugin: redis\n  url: u\n  maxlenn: 3\n", err, sizeof err);
    ok(!o, "unknown key rejected");
    is_str(err, "t.yaml:4:3: unknown key 'maxlenn' in sink (redis)", "unknown key message");
    o = build("sink:\n  url: u\n  maxlen: lots\n", err, sizeof err);
    ok(!o, "wrong type rejected");
    is_str(err, "t.yaml:3:11: option 'maxlen' in sink (redis) expects an integer, got 'lots'",
           "wrong type message");
    o = build("sink:\n  plugin: redis\n", err, sizeof err);
    ok(!o, "missing required rejected");
    has_str(err, "missing required option 'url' in sink (redis)", "missing required message");
    o = build("sink:\n  url: u\n  mode: d\n", err, sizeof err);
    has_str(err, "must be one of a|b|c, not 'd'", "bad enum message");
    o = build("sink:\n  url: [1, 2]\n", err, sizeof err);
    has_str(err, "t.yaml:2:8: option 'url' in sink (redis) expects a string, got a list",
            "list where scalar expected");
    o = build("sink:\n  url: u\n  on: maybe\n", err, sizeof err);
    has_str(err, "expects true or false", "bad bool");
}

static void test_yaml_errors(void)
{
    char err[512] = "";
    config *c = config_parse("bad.yaml", "a: [1, 2\nb: 3\n", 13, err, sizeof err);
    ok(!c, "syntax error rejected");
    has_str(err, "bad.yaml:", "syntax error names the file");
    c = config_parse("d.yaml", "a: 1\na: 2\n", 10, err, sizeof err);
    ok(!c, "duplicate key rejected");
    is_str(err, "d.yaml:2:1: duplicate key 'a'", "duplicate key message");
    c = config_parse("e.yaml", "", 0, err, sizeof err);
    ok(!c, "empty config rejected");
    c = config_parse("l.yaml", "- a\n- b\n", 8, err, sizeof err);
    has_str(err, "must be a mapping", "non-mapping root rejected");
    c = config_load("/nonexistent/x.yaml", err, sizeof err);
    has_str(err, "/nonexistent/x.yaml: cannot open config", "missing file named");
}

static void test_env(void)
{
    char err[256] = "";
    setenv("TRIB_T_A", "alpha", 1);
    unsetenv("TRIB_T_UNSET");
    char *s = config_subst_env("x=${TRIB_T_A} y=${TRIB_T_UNSET:-dflt} $${NOT}", err, sizeof err);
    is_str(s, "x=alpha y=dflt ${NOT}", "env substitution with default and escape");
    free(s);
    s = config_subst_env("${TRIB_T_UNSET}", err, sizeof err);
    ok(!s, "unset variable without default is an error");
    has_str(err, "TRIB_T_UNSET is not set", "unset variable named");
    s = config_subst_env("${bad-name}", err, sizeof err);
    ok(!s, "bad reference rejected");
    const char *y = "sink:\n  url: \"${TRIB_T_UNSET}\"\n";
    config *c = config_parse("v.yaml", y, strlen(y), err, sizeof err);
    ok(!c, "unset variable in config rejected");
    has_str(err, "v.yaml:2:8:", "unset variable error has file:line:col");
}

static void test_convert(void)
{
    trib_record *r = rec_new();
    r->op = 'u';
    str_set(&r->topic, "tf.public.t");
    str_set(&r->src.name, "tf");
    str_set(&r->src.db, "postgres");
    str_set(&r->src.schema, "public");
    str_set(&r->src.table, "t");
    r->src.lsn = 0x16B374D848ull;
    r->src.txid = 42;
    r->src.ts_ms = 1700000000000;
    r->has_after = 1;
    row_field_add(&r->after, "id", TRIB_OID_INT4, -1, TRIB_VAL_TEXT, "7", 1, 1);
    row_field_add(&r->after, "ok", TRIB_OID_BOOL, -1, TRIB_VAL_TEXT, "t", 1, 0);
    row_field_add(&r->after, "px", TRIB_OID_BYTEA, -1, TRIB_VAL_BINARY, "\x00\xff\x10", 3, 0);
    row_field_add(&r->after, "n", TRIB_OID_NUMERIC, -1, TRIB_VAL_TEXT, "3.14", 4, 0);
    row_field_add(&r->after, "s", TRIB_OID_TEXT, -1, TRIB_VAL_TEXT, "a\"b\xff", 4, 0);
    row_field_add(&r->after, "z", TRIB_OID_TEXT, -1, TRIB_VAL_NULL, NULL, 0, 0);
    row_field_add(&r->after, "big", TRIB_OID_TEXT, -1, TRIB_VAL_UNCHANGED, NULL, 0, 0);
    row_field_add(&r->after, "f", TRIB_OID_FLOAT8, -1, TRIB_VAL_TEXT, "NaN", 3, 0);
    converter c = {CONV_JSON, BIN_BASE64};
    char err[128];
    ok(convert_record(&c, r, err, sizeof err) == TRIB_OK, "convert ok");
    is_str(r->key.data, "{\"id\":7}", "key is the key columns");
    has_str(r->value.data,
            "{\"before\":null,\"after\":{\"id\":7,\"ok\":true,\"px\":\"AP8Q\",\"n\":\"3.14\","
            "\"s\":\"a\\\"b\\u00ff\",\"z\":null,\"big\":\"__debezium_unavailable_value\","
            "\"f\":\"NaN\"},\"source\":{",
            "envelope after row");
    has_str(r->value.data,
            "\"name\":\"tf\",\"ts_ms\":1700000000000,\"snapshot\":\"false\",\"db\":\"postgres\","
            "\"schema\":\"public\",\"table\":\"t\",\"txId\":42,\"lsn\":97500059720},\"op\":\"u\"",
            "envelope source block");
    rec_free(r);

    r = rec_new();
    r->op = 'c';
    str_set(&r->topic, "x");
    r->has_after = 1;
    row_field_add(&r->after, "px", TRIB_OID_BYTEA, -1, TRIB_VAL_BINARY, "\x00\xff", 2, 0);
    c.binary = BIN_HEX;
    convert_record(&c, r, err, sizeof err);
    ok(!r->key.set, "no key columns: no key");
    has_str(r->value.data, "\"px\":\"00ff\"", "hex binary handling");
    rec_free(r);

    r = rec_new();
    ok(convert_record(&c, r, err, sizeof err) == TRIB_ERR, "record without topic is an error");
    rec_free(r);
}

static void test_ackq(void)
{
    ackq *q = ackq_new();
    uint64_t a = ackq_push(q, 0, 0), b = ackq_push(q, 0, 0);
    ackq_push(q, 1, 100);
    uint64_t c = ackq_push(q, 0, 0);
    ackq_push(q, 1, 200);
    ok(ackq_pending(q) == 3, "three records pending");
    ackq_done(q, b);
    ok(ackq_committable(q) == 0, "out-of-order ack does not pass the first record");
    ackq_done(q, a);
    ok(ackq_committable(q) == 100, "first transaction committable");
    ok(ackq_committable(q) != 200, "second not yet");
    ackq_done(q, c);
    ok(ackq_committable(q) == 200, "second transaction committable");
    ackq_done(q, c);
    ok(ackq_pending(q) == 0, "duplicate ack ignored");
    /* grow past the initial ring */
    uint64_t first = 0;
    for (int i = 0; i < 5000; i++) {
        uint64_t s = ackq_push(q, 0, 0);
        if (!first)
            first = s;
    }
    ackq_push(q, 1, 300);
    for (uint64_t s = first + 1; s < first + 5000; s++)
        ackq_done(q, s);
    ok(ackq_committable(q) == 200, "a stuck record blocks the window after growth");
    ackq_done(q, first);
    ok(ackq_committable(q) == 300 && ackq_pending(q) == 0, "window passes once it is acked");
    ackq_free(q);
}

static void test_encoders(void)
{
    strbuf b;
    sb_init(&b);
    sb_base64(&b, (const unsigned char *)"foobar", 6);
    sb_putc(&b, ' ');
    sb_base64(&b, (const unsigned char *)"fo", 2);
    is_str(b.data, "Zm9vYmFy Zm8=", "base64");
    sb_free(&b);
    char *r = redact_secrets("host=h password=s3cret user=u");
    is_str(r, "host=h password=**** user=u", "conninfo password redacted");
    free(r);
    r = redact_secrets("redis://:pw@127.0.0.1:6379/0");
    is_str(r, "redis://:****@127.0.0.1:6379/0", "URL password redacted");
    free(r);
    char l[32];
    lsn_format(0x16B374D848ull, l);
    is_str(l, "16/B374D848", "LSN format");
    /* trib_lsn_format (plugin.h, used by the sinks' headers): every width of each half */
    static const struct {
        uint64_t lsn;
        const char *text;
    } lsns[] = {{0, "0/0"},
                {0x100000000ull, "1/0"},
                {0xA00000010ull, "A/10"},
                {0x0000000100ABCDEFull, "1/ABCDEF"},
                {0x12345678F0000000ull, "12345678/F0000000"},
                {UINT64_MAX, "FFFFFFFF/FFFFFFFF"}};
    for (size_t i = 0; i < sizeof lsns / sizeof lsns[0]; i++) {
        char t[TRIB_LSN_BUFSZ];
        size_t n = trib_lsn_format(lsns[i].lsn, t);
        ok(n == strlen(lsns[i].text), "trib_lsn_format length");
        is_str(t, lsns[i].text, "trib_lsn_format");
    }
    uint64_t v;
    ok(lsn_parse("16/B374D848", &v) == 0 && v == 0x16B374D848ull, "LSN parse");
}

/* The permissions of the mapping holding p, from /proc/self/maps ("" if none). */
static const char *map_perms(const void *p)
{
    static char perms[8];
    perms[0] = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char pm[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, pm) == 3 && (uintptr_t)p >= lo &&
            (uintptr_t)p < hi) {
            snprintf(perms, sizeof perms, "%s", pm);
            break;
        }
    }
    if (f)
        fclose(f);
    return perms;
}

/* trib_host.intern (ABI 1.3): shared, read-only names that records point at. */
static void test_intern(void)
{
    char buf[64];
    snprintf(buf, sizeof buf, "tf.public.%s", "mnist_train");
    const char *a = rec_intern("tf.public.mnist_train");
    const char *b = rec_intern(buf);
    ok(a && a == b && strcmp(a, buf) == 0, "the same string interns to the same pointer");
    ok(rec_interned(a) && !rec_interned(buf), "interned pointers are recognised");
    ok(rec_intern(a) == a, "interning an interned pointer returns it");
    ok(strncmp(map_perms(a), "r-", 2) == 0, "interned strings are read-only");
    const char *e = rec_intern("");
    ok(e && *e == 0 && e != a, "the empty string interns");
    /* enough distinct strings to grow the hash set several times */
    const char *first[600];
    int same = 1;
    for (int i = 0; i < 600; i++) {
        snprintf(buf, sizeof buf, "column_%d", i);
        first[i] = rec_intern(buf);
    }
    for (int i = 0; i < 600; i++) {
        snprintf(buf, sizeof buf, "column_%d", i);
        same &= first[i] && rec_intern(buf) == first[i] && strcmp(first[i], buf) == 0;
    }
    ok(same, "600 names: each interns to one pointer, kept across growth");
    ok(rec_intern("tf.public.mnist_train") == a, "earlier names survive growth");

    /* records share interned strings and copy the others; freeing leaves the shared ones */
    trib_record *r = rec_new();
    str_set(&r->topic, a);
    str_set(&r->src.table, first[1]);
    str_set(&r->src.schema, "public");
    row_field_add(&r->after, first[7], TRIB_OID_INT4, -1, TRIB_VAL_TEXT, "1", 1, 1);
    row_field_add(&r->after, "pixels", TRIB_OID_BYTEA, -1, TRIB_VAL_BINARY, "\0\1", 2, 0);
    ok(r->topic == a && r->src.table == first[1], "str_set stores an interned pointer");
    ok(r->src.schema && !rec_interned(r->src.schema), "str_set copies other strings");
    ok(r->after.fields[0].name == first[7] && !rec_interned(r->after.fields[1].name),
       "field_add shares an interned name and copies another");
    trib_record *d = rec_dup(r);
    ok(d->topic == a && d->after.fields[0].name == first[7] && d->src.schema != r->src.schema,
       "record_dup shares interned strings, copies the rest");
    str_set(&d->topic, "elsewhere"); /* replacing an interned string does not free it */
    is_str(d->topic, "elsewhere", "str_set over an interned string");
    str_set(&r->src.schema, first[2]);
    ok(r->src.schema == first[2], "str_set of an interned string over a copy");
    rec_free(r);
    rec_free(d);
    is_str(a, "tf.public.mnist_train", "interned strings outlive the records");
    is_str(first[7], "column_7", "an interned field name outlives its records");
}

int main(void)
{
    test_options();
    test_yaml_errors();
    test_env();
    test_convert();
    test_ackq();
    test_encoders();
    test_intern();
    return done_testing();
}
