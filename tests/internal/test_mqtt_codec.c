/*
 * test_mqtt_codec.c — unit tests of plugins/mqtt/mqtt_codec.c (no broker needed).
 *
 * UTF-8 screening, base64 and topic-level escaping round trips, LSN text
 * form, and a record -> user properties -> record round trip with text and
 * binary keys and headers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/mqtt/mqtt_int.h"
#include "fakenet.h"
#include "testhost.h"

static void test_utf8(void)
{
    CHECK(mqtt_utf8_clean("abc", 3));
    CHECK(mqtt_utf8_clean("", 0));
    CHECK(mqtt_utf8_clean("\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    CHECK(!mqtt_utf8_clean("a\0b", 3));
    CHECK(!mqtt_utf8_clean("a\nb", 3));
    CHECK(!mqtt_utf8_clean("\xff", 1));
    CHECK(!mqtt_utf8_clean("\xc0\x80", 2));         /* overlong NUL */
    CHECK(!mqtt_utf8_clean("\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!mqtt_utf8_clean("\xe2\x82", 2));         /* truncated */
    CHECK(!mqtt_utf8_clean("\xc2\x85", 2));         /* C1 control */
}

static void test_b64(void)
{
    const char *cases[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *want[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char *e = mqtt_b64_encode(cases[i], strlen(cases[i]));
        CHECK(e && strcmp(e, want[i]) == 0);
        size_t n;
        char *d = mqtt_b64_decode(e, strlen(e), &n);
        CHECK(d && n == strlen(cases[i]) && memcmp(d, cases[i], n) == 0);
        free(e);
        free(d);
    }
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    char *e = mqtt_b64_encode(all, 256);
    size_t n;
    char *d = mqtt_b64_decode(e, strlen(e), &n);
    CHECK(d && n == 256 && memcmp(d, all, 256) == 0);
    free(e);
    free(d);
    CHECK(mqtt_b64_decode("abc", 3, &n) == NULL);
    CHECK(mqtt_b64_decode("ab=c", 4, &n) == NULL);
    CHECK(mqtt_b64_decode("a*bc", 4, &n) == NULL);
}

static void test_level(void)
{
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    char *e = mqtt_level_escape(all, 256);
    CHECK(e && !strpbrk(e, "/+#") && mqtt_utf8_clean(e, strlen(e)));
    size_t n;
    char *d = mqtt_level_unescape(e, strlen(e), &n);
    CHECK(d && n == 256 && memcmp(d, all, 256) == 0);
    free(e);
    free(d);
    e = mqtt_level_escape("id-42", 5);
    CHECK(e && strcmp(e, "id-42") == 0);
    free(e);
    CHECK(mqtt_level_unescape("%4", 2, &n) == NULL);
    CHECK(mqtt_level_unescape("%zz", 3, &n) == NULL);
}

static void test_topic_lsn(void)
{
    CHECK(mqtt_topic_publishable("tf.public.mnist_train"));
    CHECK(mqtt_topic_publishable("a/b/c"));
    CHECK(!mqtt_topic_publishable(""));
    CHECK(!mqtt_topic_publishable(NULL));
    CHECK(!mqtt_topic_publishable("a/+"));
    CHECK(!mqtt_topic_publishable("a/#"));
    char buf[40];
    trib_lsn_format(0x16B374D848ULL, buf);
    CHECK(strcmp(buf, "16/B374D848") == 0);
    CHECK(mqtt_lsn_parse(buf) == 0x16B374D848ULL);
    CHECK(mqtt_lsn_parse("junk") == 0);
    CHECK(mqtt_lsn_parse("1/2x") == 0);
}

static void test_props(void)
{
    const trib_host *h = &th_host; /* the core's record functions */
    const char bkey[] = {0, (char)0xff, 'k', 0};
    trib_record *r = th_record("t", bkey, 4, "v", 1);
    r->op = 'u';
    r->src.lsn = 0x100000002ULL;
    h->header_add(r, "text", "plain", 5);
    h->header_add(r, "bin", "\x01\x00\x02", 3);

    MQTTProperties p = MQTTProperties_initializer;
    CHECK(mqtt_props_from_record(&p, r, 1) == TRIB_OK);
    /* key + key-encoding, op, lsn, text, bin + bin-encoding */
    CHECK(p.count == 7);

    trib_record *back = h->record_new();
    char err[200] = "";
    CHECK(mqtt_props_to_record(h, back, &p, err, sizeof err) == TRIB_OK);
    CHECK(back->key.set && back->key.len == 4 && memcmp(back->key.data, bkey, 4) == 0);
    CHECK(back->op == 'u');
    CHECK(back->src.lsn == 0x100000002ULL);
    int found_text = 0, found_bin = 0;
    for (size_t i = 0; i < back->nheaders; i++) {
        trib_header *x = &back->headers[i];
        CHECK(strstr(x->name, "-encoding") == NULL && strcmp(x->name, "key") != 0);
        if (!strcmp(x->name, "text")) found_text = x->len == 5 && !memcmp(x->value, "plain", 5);
        if (!strcmp(x->name, "bin")) found_bin = x->len == 3 && !memcmp(x->value, "\x01\x00\x02", 3);
    }
    CHECK(found_text && found_bin);
    mqtt_props_free(&p);
    h->record_free(back);

    /* without the key (key_in_topic), and a malformed base64 value */
    MQTTProperties q = MQTTProperties_initializer;
    CHECK(mqtt_props_from_record(&q, r, 0) == TRIB_OK && q.count == 5);
    mqtt_props_free(&q);
    MQTTProperties bad = MQTTProperties_initializer;
    mqtt_props_add(&bad, "key", "%%%", 3);
    mqtt_props_add(&bad, "key-encoding", "base64", 6);
    back = h->record_new();
    CHECK(mqtt_props_to_record(h, back, &bad, err, sizeof err) == TRIB_ERR && strstr(err, "key"));
    mqtt_props_free(&bad);
    h->record_free(back);
    h->record_free(r);
}

int main(void)
{
    test_utf8();
    test_b64();
    test_level();
    test_topic_lsn();
    /* paho's heap tracker is set up by its first client; property memory
       allocated before that is never released (a paho quirk, not a plugin
       leak: the plugin always has a client).  So hold one during the tests. */
    MQTTAsync c = NULL;
    MQTTAsync_create(&c, "tcp://127.0.0.1:1", "codec-test", MQTTCLIENT_PERSISTENCE_NONE, NULL);
    test_props();
    if (c) MQTTAsync_destroy(&c);
    if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
    else printf("test_mqtt_codec: all checks passed\n");
    return failures ? 1 : 0;
}
