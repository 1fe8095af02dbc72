/*
 * pipeline.h — one running pipeline: a source thread feeding a bounded
 * queue, and a pipeline thread that applies the transform chain, converts
 * and hands batches to the sink.  Acknowledgements flow back through the
 * ack window (ackq.h) and become source->commit(position) calls.
 */
#ifndef TRIB_PIPELINE_H
#define TRIB_PIPELINE_H

#include <stdint.h>
#include "convert.h"
#include "host.h"

typedef struct pipeline_cfg {
    size_t queue_size;
    size_t batch_size;
    int shutdown_timeout_ms;
    int thread_nice;            /* added to the nice value of our three threads */
    int tolerance_all;          /* errors.tolerance: all */
    char *deadletter_topic;     /* errors.deadletter_topic (may be NULL) */
    converter conv;
} pipeline_cfg;

/* Delivery latency histogram bounds (ms): emit → sink acknowledgement. */
#define LAT_BUCKETS 12
extern const double lat_bounds_ms[LAT_BUCKETS];

typedef struct pipeline_stats {
    uint64_t read, snapshot, delivered, dropped, deadlettered, committed_pos, pending;
    uint64_t queue_depth, queue_size;
    uint64_t lat_counts[LAT_BUCKETS + 1]; /* last: +Inf */
    double lat_sum_ms;
} pipeline_stats;

typedef struct pipeline pipeline;

pipeline *pipeline_new(const pipeline_cfg *cfg, trib_ctx *source, trib_ctx **transforms,
                       size_t ntransforms, trib_ctx *sink);
/** Start the source and pipeline threads. */
int pipeline_start(pipeline *pl);
/** Ask everything to stop: the source returns, in-flight records are flushed. */
void pipeline_request_stop(pipeline *pl);
/** 1 once both threads have finished (the source returned, the queue drained, the sink
    flushed and the final position confirmed). */
int pipeline_finished(pipeline *pl);
/** A descriptor that becomes readable when pipeline_finished() turns 1 (poll it, then
    wake_drain() it); -1 if it could not be created (poll pipeline_finished() instead). */
int pipeline_wake_fd(pipeline *pl);
/** Join the threads; 0 on a clean stop, 1 after a fatal error. */
int pipeline_join(pipeline *pl);
/** 1 when the source's run() returned TRIB_OK by itself (no stop request): a one-off run. */
int pipeline_source_finished(pipeline *pl);
void pipeline_free(pipeline *pl);
void pipeline_get_stats(pipeline *pl, pipeline_stats *st);
const char *pipeline_fatal_message(pipeline *pl);
/** Records into transform i, dropped by it, and failed in it. */
void pipeline_transform_stats(pipeline *pl, size_t i, uint64_t *in, uint64_t *dropped,
                              uint64_t *failed);

/* Host-side entry points (see host.c). */
int pipeline_emit(pipeline *pl, trib_record *rec, int is_marker, uint64_t pos, int timeout_ms);
void pipeline_ack(pipeline *pl, trib_record *rec, int status, const char *errmsg);
int pipeline_stopping(pipeline *pl);
uint64_t pipeline_pending(pipeline *pl);

#endif
