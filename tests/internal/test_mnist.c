/*
 * test_mnist.c — the mnist transform through the host table: key = label
 * text, value = CSV pixels or raw bytes, written in place with bytes_alloc
 * (ABI 1.1) and, for an engine of ABI 1.0 (host->abi_minor == 0), through
 * bytes_set: both give the same bytes.  Rows it cannot use are dropped or
 * fail as documented.
 */
#include "fakenet.h" /* CHECK */
#include "testhost.h"

static const trib_plugin *P;

static trib_record *mnist_row(const char *label_col, const char *label, const unsigned char *px,
                              size_t n)
{
    trib_record *r = th_host.record_new();
    r->op = 'c';
    r->has_after = 1;
    th_host.str_set(&r->topic, "tf.public.mnist_train");
    th_host.field_add(&r->after, "id", TRIB_OID_INT4, -1, TRIB_VAL_TEXT, "1", 1, 1);
    th_host.field_add(&r->after, label_col, TRIB_OID_INT2, -1,
                      label ? TRIB_VAL_TEXT : TRIB_VAL_NULL, label, label ? strlen(label) : 0, 0);
    th_host.field_add(&r->after, "pixels", TRIB_OID_BYTEA, -1, TRIB_VAL_BINARY, px, n, 0);
    return r;
}

static void expect_csv(const trib_record *r, const unsigned char *px, size_t n)
{
    char want[4 * 784 + 1] = "";
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(want + o, sizeof want - o, i ? ",%u" : "%u", px[i]);
    CHECK(r->value.set && r->value.len == o && memcmp(r->value.data, want, o) == 0);
    CHECK(r->value.data[r->value.len] == '\0');
}

static trib_ctx *mnist_new(const char *format)
{
    trib_ctx *c = th_ctx_new("transforms[0]");
    th_section *s = th_section_new();
    th_set(s, "pixels_field", "pixels");
    if (format)
        th_set(s, "format", format);
    char err[256];
    CHECK(th_create(c, P, s, 0, err, sizeof err) == TRIB_OK);
    th_section_free(s);
    return c;
}

static void run_abi(uint32_t minor)
{
    th_host.abi_minor = minor;
    unsigned char px[784];
    for (size_t i = 0; i < sizeof px; i++) /* every width of number, and runs of zeros */
        px[i] = (unsigned char)(i % 7 == 0 ? 0 : (i * 37) % 256);
    px[783] = 255;
    trib_ctx *c = mnist_new(NULL);
    trib_record *r = mnist_row("labels", "7", px, sizeof px);
    CHECK(P->transform->apply(th_inst(c), &r) == TRIB_OK && r);
    CHECK(r->key.set && r->key.len == 1 && strcmp(r->key.data, "7") == 0);
    expect_csv(r, px, sizeof px);
    /* a record whose value was set before: replaced, not appended to */
    trib_record *again = mnist_row("label", "3", px, 5);
    th_host.bytes_set(&again->value, "old", 3);
    CHECK(P->transform->apply(th_inst(c), &again) == TRIB_OK && again);
    CHECK(strcmp(again->key.data, "3") == 0);
    expect_csv(again, px, 5);
    th_host.record_free(again);
    /* every byte value, at even and at odd positions (pairs are formatted
       together), every remainder of the count by four, a two-digit label */
    unsigned char all[516];
    for (size_t i = 0; i < sizeof all; i++)
        all[i] = (unsigned char)(i < 256 ? i : (511 - i) & 255);
    for (size_t n = 513; n <= 516; n++) { /* four pixels at a time, then the rest */
        trib_record *every = mnist_row("labels", "12", all, n);
        CHECK(P->transform->apply(th_inst(c), &every) == TRIB_OK && every);
        CHECK(strcmp(every->key.data, "12") == 0 && every->key.len == 2);
        expect_csv(every, all, n);
        th_host.record_free(every);
    }
    /* runs of zeros of every length from 1 to 20, aligned and not: eight
       zeros at an 8-aligned offset take a shortcut, seven do not; every
       remainder of the count by eight */
    unsigned char runs[300];
    size_t at = 0;
    for (size_t len = 1; at < sizeof runs; len = len % 20 + 1) {
        for (size_t k = 0; k < len && at < sizeof runs; k++)
            runs[at++] = 0;
        if (at < sizeof runs)
            runs[at++] = (unsigned char)(len * 13 + 1);
    }
    for (size_t n = 280; n <= 300; n++) {
        trib_record *z = mnist_row("labels", "0", runs, n);
        CHECK(P->transform->apply(th_inst(c), &z) == TRIB_OK && z);
        expect_csv(z, runs, n);
        th_host.record_free(z);
    }
    unsigned char zeros[784] = {0};
    trib_record *blank = mnist_row("labels", "0", zeros, sizeof zeros);
    CHECK(P->transform->apply(th_inst(c), &blank) == TRIB_OK && blank);
    expect_csv(blank, zeros, sizeof zeros);
    th_host.record_free(blank);
    /* no pixels at all: an empty value */
    trib_record *none = mnist_row("labels", "1", px, 0);
    CHECK(P->transform->apply(th_inst(c), &none) == TRIB_OK && none);
    CHECK(none->value.set && none->value.len == 0 && none->value.data[0] == '\0');
    th_host.record_free(none);
    /* NULL label: dropped */
    trib_record *nolabel = mnist_row("labels", NULL, px, 4);
    CHECK(P->transform->apply(th_inst(c), &nolabel) == TRIB_OK && nolabel == NULL);
    th_host.record_free(r);
    th_ctx_free(c);

    c = mnist_new("raw");
    r = mnist_row("labels", "9", px, sizeof px);
    CHECK(P->transform->apply(th_inst(c), &r) == TRIB_OK && r);
    CHECK(r->value.len == sizeof px && memcmp(r->value.data, px, sizeof px) == 0);
    th_host.record_free(r);
    th_ctx_free(c);
}

int main(void)
{
    P = th_load(th_plugin_path("mnist"));
    CHECK(P && P->transform && th_host.abi_minor >= 1 && th_host.bytes_alloc);
    run_abi(th_host.abi_minor); /* in place (bytes_alloc) */
    run_abi(0);                 /* as with an engine of ABI 1.0: through bytes_set */
    if (failures)
        fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
