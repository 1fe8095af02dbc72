/*
 * metrics.h — Prometheus text-format metrics of a running pipeline, served
 * over HTTP (libmicrohttpd) when the config has `metrics: {listen: ADDR:PORT}`.
 */
#ifndef TRIB_METRICS_H
#define TRIB_METRICS_H

#include "pipeline.h"
#include "util.h"

typedef struct metrics_server metrics_server;

/** Render all metrics into b; ctxs[0] must be the source instance. */
void metrics_render(strbuf *b, pipeline *pl, trib_ctx *const *ctxs, size_t nctx);
/** Serve /metrics on `listen` ("host:port").  NULL with err on failure. */
metrics_server *metrics_start(const char *listen, pipeline *pl, trib_ctx *const *ctxs,
                              size_t nctx, char *err, size_t errlen);
void metrics_stop(metrics_server *m);

#endif
