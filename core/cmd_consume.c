/*
 * cmd_consume.c — `tributary consume CONFIG TOPIC`: read a topic back through
 * the consumer role of the config's sink plugin (the same broker and
 * connection the pipeline delivers to), one line per message.  For checking
 * what a pipeline delivered, whatever the broker.
 *
 *   --from-beginning   start at the earliest retained message
 *   --bounded          stop at the end of what the topic held when opened
 *   --group G          read in consumer group G and commit what was printed
 *   --idle-ms N        stop after N ms without a message (default: never)
 *   --max N            stop after N messages
 *   --format json|hex  json (default): {"topic","id","key","value","headers"},
 *                      a byte that is not UTF-8 as \u00XX;
 *                      hex: key-hex TAB value-hex (byte-exact, for scripts)
 */
#include "cli.h"
#include "log.h"
#include "record.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
    fprintf(stderr, "usage: tributary consume CONFIG TOPIC [--from-beginning] [--bounded] "
                    "[--group G] [--idle-ms N] [--max N] [--format json|hex]\n");
}

/* A count or duration given on the command line: a whole number >= 0. */
static int parse_count(const char *opt, const char *s, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < 0) {
        fprintf(stderr, "tributary consume: %s '%s': expected a whole number >= 0\n", opt, s);
        return -1;
    }
    *out = v;
    return 0;
}

static void print_json(const trib_record *r)
{
    strbuf b;
    sb_init(&b);
    sb_puts(&b, "{\"topic\":");
    sb_json_str(&b, r->topic ? r->topic : "", r->topic ? strlen(r->topic) : 0);
    sb_puts(&b, ",\"id\":");
    sb_json_str(&b, r->msg_id ? r->msg_id : "", r->msg_id ? strlen(r->msg_id) : 0);
    sb_puts(&b, ",\"key\":");
    if (r->key.set)
        sb_json_str(&b, r->key.data, r->key.len);
    else
        sb_puts(&b, "null");
    sb_puts(&b, ",\"value\":");
    if (r->value.set)
        sb_json_str(&b, r->value.data, r->value.len);
    else
        sb_puts(&b, "null");
    sb_puts(&b, ",\"headers\":{");
    for (size_t i = 0; i < r->nheaders; i++) {
        if (i)
            sb_putc(&b, ',');
        sb_json_str(&b, r->headers[i].name, strlen(r->headers[i].name));
        sb_putc(&b, ':');
        sb_json_str(&b, r->headers[i].value, r->headers[i].len);
    }
    sb_puts(&b, "}}\n");
    fwrite(b.data, 1, b.len, stdout);
    sb_free(&b);
}

static void print_hex(const trib_record *r)
{
    strbuf b;
    sb_init(&b);
    if (r->key.set)
        sb_hex(&b, (const unsigned char *)r->key.data, r->key.len);
    else
        sb_putc(&b, '-');
    sb_putc(&b, '\t');
    if (r->value.set)
        sb_hex(&b, (const unsigned char *)r->value.data, r->value.len);
    else
        sb_putc(&b, '-');
    sb_putc(&b, '\n');
    fwrite(b.data, 1, b.len, stdout);
    sb_free(&b);
}

int cmd_consume(int argc, char **argv)
{
    const char *cfg = NULL, *topic = NULL, *group = NULL, *format = "json";
    trib_consume_opts o = {0};
    long idle_ms = -1, max = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--from-beginning"))
            o.from_beginning = 1;
        else if (!strcmp(a, "--bounded"))
            o.bounded = 1;
        else if (!strcmp(a, "--group") && i + 1 < argc)
            group = argv[++i];
        else if ((!strcmp(a, "--idle-ms") || !strcmp(a, "--max")) && i + 1 < argc) {
            if (parse_count(a, argv[i + 1], !strcmp(a, "--max") ? &max : &idle_ms))
                return 2;
            i++;
        }
        else if (!strcmp(a, "--format") && i + 1 < argc) {
            format = argv[++i];
            if (strcmp(format, "json") && strcmp(format, "hex")) {
                fprintf(stderr, "tributary consume: --format '%s': expected json or hex\n", format);
                return 2;
            }
        }
        else if (a[0] != '-' && !cfg)
            cfg = a;
        else if (a[0] != '-' && !topic)
            topic = a;
        else {
            usage();
            return 2;
        }
    }
    if (!cfg || !topic) {
        usage();
        return 2;
    }
    o.group_id = group;
    o.commit = group != NULL;
    char err[2048];
    app a;
    install_signal_handlers();
    if (app_load(&a, cfg, APP_BROKER, err, sizeof err) ||
        instance_start(a.broker, err, sizeof err)) {
        log_error("%s", err);
        app_free(&a);
        return 1;
    }
    const trib_consumer_ops *ops = a.broker->p->consumer;
    void *c = ops->open(a.broker->inst, topic, &o, err, sizeof err);
    if (!c) {
        log_error("%s: cannot consume '%s': %s", a.broker->name, topic, err);
        app_free(&a);
        return 1;
    }
    int rc = 0;
    long n = 0;
    int64_t last = now_mono_ms();
    while (!g_stop && (max < 0 || n < max)) {
        trib_record *r = NULL;
        int got = ops->poll(c, 200, &r);
        if (got == TRIB_EOF)
            break;
        if (got < 0) {
            log_error("%s: reading '%s' failed", a.broker->name, topic);
            rc = 1;
            break;
        }
        if (got == 0) {
            if (idle_ms >= 0 && now_mono_ms() - last >= idle_ms)
                break;
            continue;
        }
        last = now_mono_ms();
        if (!strcmp(format, "hex"))
            print_hex(r);
        else
            print_json(r);
        if (o.commit && ops->commit)
            ops->commit(c, r);
        rec_free(r);
        n++;
    }
    fflush(stdout);
    ops->close(c);
    app_free(&a);
    return rc;
}
