/*
 * tests/internal/test_redis_driver.c — drives the built redis plugin
 * (loaded by the core's loader) through the shared test host (testhost.c).
 *
 *   test_redis_driver SCENARIO REDIS_URL [args]
 *
 * The plugin is found at $TRIB_REDIS_SO, or
 * $TRIB_BUILDDIR/plugins/redis/.libs/redis.so.  tests/runtime/redis_plugin.sh
 * starts the redis-server and runs each scenario.  Exit 0 = pass.
 */
#include "redis_test_driver.h"

#include <stdarg.h>
#include <string.h>

const trib_plugin *P;
const char *URL;

static void load_plugin(void)
{
    const char *so = getenv("TRIB_REDIS_SO");
    P = th_load(so ? so : th_plugin_path("redis"));
    CHECK(P->abi_major == TRIB_ABI_MAJOR, "abi %u", P->abi_major);
    CHECK(strcmp(P->name, "redis") == 0, "name %s", P->name);
    CHECK(P->roles == (TRIB_ROLE_SINK | TRIB_ROLE_CONSUMER), "roles %u", P->roles);
    CHECK(P->sink && P->consumer && P->consumer->produce, "ops missing");
    /* the handle stays open for the life of the process, as in the core */
}

static int vcreate(drv *d, char *err, size_t errlen, const char *url, va_list ap)
{
    th_section *s = th_section_new();
    th_set(s, "url", url);
    const char *n;
    while ((n = va_arg(ap, const char *)) != NULL)
        th_set(s, n, va_arg(ap, const char *));
    d->ctx = th_ctx_new("sink");
    int ret = th_create(d->ctx, P, s, 1, err, errlen);
    th_section_free(s);
    d->inst = th_inst(d->ctx);
    return ret;
}

int drv_try_create(drv *d, char *err, size_t errlen, const char *url, ...)
{
    va_list ap;
    va_start(ap, url);
    int ret = vcreate(d, err, errlen, url, ap);
    va_end(ap);
    return ret;
}

void drv_create(drv *d, const char *url, ...)
{
    char err[512] = "";
    va_list ap;
    va_start(ap, url);
    int ret = vcreate(d, err, sizeof err, url, ap);
    va_end(ap);
    CHECK(ret == TRIB_OK, "create: %s", err);
}

void drv_destroy(drv *d)
{
    th_ctx_free(d->ctx);
    d->ctx = NULL;
    d->inst = NULL;
}

trib_record *rec_make(const char *topic, const void *key, size_t klen, const void *val, size_t vlen,
                      char op, uint64_t lsn, uint64_t seq)
{
    trib_record *r = th_record(topic, key, klen, val, vlen);
    r->op = op;
    r->src.lsn = lsn;
    r->seq = seq;
    return r;
}

int acked_once(drv *d, uint64_t seq, int status)
{
    return th_ack_times(d->ctx, seq) == 1 && th_ack_status(d->ctx, seq) == status;
}

size_t key_of(int i, char *buf)
{
    int n = sprintf(buf, "k%c%d\n\xff", 0, i);
    return (size_t)n;
}

void value_of(int i, char *buf)
{
    for (int j = 0; j < VALUE_LEN; j++)
        buf[j] = (char)((i * 31 + j * 7) % 256);
}

redisContext *verify_conn(void)
{
    const char *p = getenv("REDIS_PORT");
    CHECK(p, "REDIS_PORT not set");
    redisContext *c = redisConnect("127.0.0.1", atoi(p));
    CHECK(c && !c->err, "verify connect: %s", c ? c->errstr : "oom");
    return c;
}

redisReply *vcmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    CHECK(r, "verify command '%s': %s", fmt, c->errstr);
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s SCENARIO REDIS_URL [args]\n", argv[0]);
        return 2;
    }
    load_plugin();
    URL = argv[2];
    const char *s = argv[1];
    if (strcmp(s, "sink-basic") == 0)
        return scen_sink_basic();
    if (strcmp(s, "sink-maxlen") == 0)
        return scen_sink_maxlen();
    if (strcmp(s, "sink-error") == 0)
        return scen_sink_error(argc - 3, argv + 3);
    if (strcmp(s, "sink-quiet") == 0)
        return scen_sink_quiet(argc - 3, argv + 3);
    if (strcmp(s, "sink-foreign") == 0)
        return scen_sink_foreign();
    if (strcmp(s, "sink-busy") == 0)
        return scen_sink_busy();
    if (strcmp(s, "sink-lag") == 0)
        return scen_sink_lag();
    if (strcmp(s, "sink-live") == 0)
        return scen_sink_live(argc - 3, argv + 3);
    if (strcmp(s, "sink-stop") == 0)
        return scen_sink_stop();
    if (strcmp(s, "consume-group") == 0)
        return scen_consume_group();
    if (strcmp(s, "consume-bounded") == 0)
        return scen_consume_bounded();
    if (strcmp(s, "consume-xread") == 0)
        return scen_consume_xread();
    if (strcmp(s, "consume-restart") == 0)
        return scen_consume_restart(argc - 3, argv + 3);
    if (strcmp(s, "produce") == 0)
        return scen_produce();
    if (strcmp(s, "auth") == 0)
        return scen_auth(argc - 3, argv + 3);
    fprintf(stderr, "unknown scenario %s\n", s);
    return 2;
}
