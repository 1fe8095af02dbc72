/*
 * metrics.c — renders engine and plugin counters in Prometheus' text format
 * and serves them on /metrics.  Engine metrics come from the pipeline's
 * stats; each plugin instance's own counters and gauges (host->metric_add /
 * metric_set) appear as tributary_plugin_<name>{instance="…"}.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include "metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#ifdef HAVE_MHD
#include <microhttpd.h>
#endif

struct metrics_server {
    pipeline *pl;
    trib_ctx *const *ctxs;
    size_t nctx;
#ifdef HAVE_MHD
    struct MHD_Daemon *d;
#endif
};

static void family(strbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_label(strbuf *b, const char *v)
{
    sb_putc(b, '"');
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            sb_putc(b, '\\');
        if (*v == '\n') {
            sb_puts(b, "\\n");
            continue;
        }
        sb_putc(b, *v);
    }
    sb_putc(b, '"');
}

/* A plugin metric "name" or "name:key" → tributary_plugin_name{instance,key}. */
static void plugin_metrics(strbuf *b, trib_ctx *const *ctxs, size_t nctx)
{
    for (size_t i = 0; i < nctx; i++) {
        trib_ctx *c = ctxs[i];
        pthread_mutex_lock(&c->mlock);
        for (int k = 0; k < c->nmetrics; k++) {
            const char *colon = strchr(c->mnames[k], ':');
            sb_puts(b, "tributary_plugin_");
            for (const char *p = c->mnames[k]; *p && p != colon; p++) {
                char ch = *p;
                int ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                         (ch >= '0' && ch <= '9') || ch == '_';
                sb_putc(b, ok ? ch : '_');
            }
            sb_puts(b, "{instance=");
            put_label(b, c->name);
            if (colon) {
                sb_puts(b, ",key=");
                put_label(b, colon + 1);
            }
            sb_printf(b, "} %.17g\n", c->mvals[k]);
        }
        pthread_mutex_unlock(&c->mlock);
    }
}

/* Replication lag from the source's "server_wal_end" / "last_commit_ts_ms". */
static void lag_metrics(strbuf *b, const pipeline_stats *st, trib_ctx *src)
{
    double wal_end = ctx_metric(src, "server_wal_end");
    double commit_ts = ctx_metric(src, "last_commit_ts_ms");
    if (wal_end <= 0)
        return;
    double bytes = wal_end > (double)st->committed_pos ? wal_end - (double)st->committed_pos : 0;
    double ms = bytes > 0 && commit_ts > 0 ? (double)now_wall_ms() - commit_ts : 0;
    family(b, "tributary_replication_lag_bytes", "gauge",
           "Server WAL end minus the confirmed position.");
    sb_printf(b, "tributary_replication_lag_bytes %.0f\n", bytes);
    family(b, "tributary_replication_lag_seconds", "gauge",
           "Age of the last captured commit while WAL is unconfirmed (0 when caught up).");
    sb_printf(b, "tributary_replication_lag_seconds %.3f\n", ms < 0 ? 0 : ms / 1000.0);
}

void metrics_render(strbuf *b, pipeline *pl, trib_ctx *const *ctxs, size_t nctx)
{
    pipeline_stats st;
    pipeline_get_stats(pl, &st);
    family(b, "tributary_records_total", "counter", "Records by pipeline stage.");
    sb_printf(b, "tributary_records_total{stage=\"read\"} %llu\n", (unsigned long long)st.read);
    sb_printf(b, "tributary_records_total{stage=\"snapshot\"} %llu\n",
              (unsigned long long)st.snapshot);
    sb_printf(b, "tributary_records_total{stage=\"delivered\"} %llu\n",
              (unsigned long long)st.delivered);
    sb_printf(b, "tributary_records_total{stage=\"dropped\"} %llu\n",
              (unsigned long long)st.dropped);
    sb_printf(b, "tributary_records_total{stage=\"deadlettered\"} %llu\n",
              (unsigned long long)st.deadlettered);
    family(b, "tributary_queue_depth", "gauge", "Records waiting between source and sink.");
    sb_printf(b, "tributary_queue_depth %llu\n", (unsigned long long)st.queue_depth);
    family(b, "tributary_queue_capacity", "gauge", "Size of the bounded queue.");
    sb_printf(b, "tributary_queue_capacity %llu\n", (unsigned long long)st.queue_size);
    family(b, "tributary_inflight_records", "gauge",
           "Records emitted but not yet acknowledged by the sink.");
    sb_printf(b, "tributary_inflight_records %llu\n", (unsigned long long)st.pending);
    family(b, "tributary_confirmed_position", "gauge",
           "Highest source position confirmed (Postgres: LSN as a number).");
    sb_printf(b, "tributary_confirmed_position %llu\n", (unsigned long long)st.committed_pos);
    family(b, "tributary_delivery_latency_seconds", "histogram",
           "Time from a record's capture to the sink's acknowledgement.");
    uint64_t cum = 0;
    for (int i = 0; i < LAT_BUCKETS; i++) {
        cum += st.lat_counts[i];
        sb_printf(b, "tributary_delivery_latency_seconds_bucket{le=\"%g\"} %llu\n",
                  lat_bounds_ms[i] / 1000.0, (unsigned long long)cum);
    }
    cum += st.lat_counts[LAT_BUCKETS];
    sb_printf(b, "tributary_delivery_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
              (unsigned long long)cum);
    sb_printf(b, "tributary_delivery_latency_seconds_sum %g\n", st.lat_sum_ms / 1000.0);
    sb_printf(b, "tributary_delivery_latency_seconds_count %llu\n", (unsigned long long)cum);
    /* per plugin instance: ctxs = source, transforms..., sink */
    family(b, "tributary_instance_records_total", "counter",
           "Records per plugin instance: emitted by the source, into / dropped by / failed "
           "in each transform, delivered by the sink.");
    if (nctx >= 2) {
        sb_puts(b, "tributary_instance_records_total{instance=");
        put_label(b, ctxs[0]->name);
        sb_printf(b, ",result=\"emitted\"} %llu\n", (unsigned long long)st.read);
        for (size_t i = 1; i + 1 < nctx; i++) {
            uint64_t in, dropped, failed;
            pipeline_transform_stats(pl, i - 1, &in, &dropped, &failed);
            const char *res[3] = {"in", "dropped", "failed"};
            uint64_t v[3] = {in, dropped, failed};
            for (int k = 0; k < 3; k++) {
                sb_puts(b, "tributary_instance_records_total{instance=");
                put_label(b, ctxs[i]->name);
                sb_printf(b, ",result=\"%s\"} %llu\n", res[k], (unsigned long long)v[k]);
            }
        }
        sb_puts(b, "tributary_instance_records_total{instance=");
        put_label(b, ctxs[nctx - 1]->name);
        sb_printf(b, ",result=\"delivered\"} %llu\n", (unsigned long long)st.delivered);
    }
    if (nctx)
        lag_metrics(b, &st, ctxs[0]);
    plugin_metrics(b, ctxs, nctx);
}

#ifdef HAVE_MHD
static enum MHD_Result handle(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version, (void)upload, (void)upload_size, (void)con_cls;
    metrics_server *m = cls;
    strbuf b;
    sb_init(&b);
    unsigned code = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0) {
        code = MHD_HTTP_METHOD_NOT_ALLOWED;
        sb_puts(&b, "GET only\n");
    } else if (strcmp(url, "/metrics") == 0) {
        metrics_render(&b, m->pl, m->ctxs, m->nctx);
    } else if (strcmp(url, "/") == 0 || strcmp(url, "/health") == 0) {
        sb_puts(&b, "ok\n");
    } else {
        code = MHD_HTTP_NOT_FOUND;
        sb_puts(&b, "not found: try /metrics\n");
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(b.len, b.data ? b.data : (char *)"", MHD_RESPMEM_MUST_COPY);
    sb_free(&b);
    MHD_add_response_header(r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}
#endif

metrics_server *metrics_start(const char *listen, pipeline *pl, trib_ctx *const *ctxs,
                              size_t nctx, char *err, size_t errlen)
{
#ifndef HAVE_MHD
    (void)listen, (void)pl, (void)ctxs, (void)nctx;
    set_err(err, errlen, "metrics: this build has no HTTP server (install libmicrohttpd-dev and "
                         "re-run configure)");
    return NULL;
#else
    const char *colon = strrchr(listen, ':');
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    char host[64];
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    size_t hl = colon ? (size_t)(colon - listen) : 0;
    if (!colon || end == colon + 1 || *end || hl >= sizeof host || port <= 0 || port > 65535) {
        set_err(err, errlen, "metrics.listen '%s' must be HOST:PORT (e.g. 127.0.0.1:9187)", listen);
        return NULL;
    }
    memcpy(host, listen, hl);
    host[hl] = '\0';
    if (inet_pton(AF_INET, hl ? host : "0.0.0.0", &sa.sin_addr) != 1) {
        set_err(err, errlen, "metrics.listen '%s': '%s' is not an IPv4 address", listen, host);
        return NULL;
    }
    sa.sin_port = htons((uint16_t)port);
    metrics_server *m = xcalloc(1, sizeof *m);
    m->pl = pl;
    m->ctxs = ctxs;
    m->nctx = nctx;
    m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)port, NULL, NULL, handle, m,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!m->d) {
        set_err(err, errlen, "metrics.listen '%s': cannot listen (port in use?)", listen);
        free(m);
        return NULL;
    }
    return m;
#endif
}

void metrics_stop(metrics_server *m)
{
    if (!m)
        return;
#ifdef HAVE_MHD
    MHD_stop_daemon(m->d);
#endif
    free(m);
}
