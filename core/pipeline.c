/*
 * pipeline.c — threads, the bounded queue and the delivery bookkeeping.
 *
 * Ordering: records are sequenced when the source emits them; the pipeline
 * thread preserves that order through transforms and into sink batches.
 * Safety: a position is confirmed to the source only when the ack window
 * has passed it, i.e. every record emitted before it was acknowledged by the
 * sink (or dropped by a transform).  A record that failed or was abandoned
 * at shutdown is never passed, so it is replayed after a restart.
 */
#include "pipeline.h"
#include "ackq.h"
#include "log.h"
#include "record.h"
#include "util.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct pipeline {
    pipeline_cfg cfg;
    trib_ctx *source;
    trib_ctx **transforms;
    size_t ntransforms;
    trib_ctx *sink;
    ackq *acks;

    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    trib_record **q;
    size_t qhead, qlen;
    int source_done;
    atomic_int source_finished; /* its run() returned TRIB_OK with no stop asked */
    atomic_int stopping;
    atomic_int fatal;
    char fatal_msg[1024];
    pthread_t src_thread, pipe_thread, send_thread;

    /* batches handed from the pipeline thread to the sender thread, so that
       transforming batch N+1 overlaps with delivering batch N */
    pthread_mutex_t hlock;
    pthread_cond_t hcv;
    trib_record **hand[2];
    size_t hand_n[2], hhead, hlen;
    int hand_closed;
    atomic_int threads_done;   /* the pipeline thread has flushed and returned */
    int wake[2];               /* poked when threads_done is set (pipeline_wake_fd) */

    uint64_t last_committed;
    /* per transform instance: records in, dropped, failed (metrics) */
    atomic_uint_fast64_t *t_in, *t_dropped, *t_failed;
    atomic_uint_fast64_t lat_counts[LAT_BUCKETS + 1];
    atomic_uint_fast64_t lat_sum_ms;
    atomic_uint_fast64_t n_read, n_snapshot, n_delivered, n_dropped, n_dead, committed;
    atomic_uint_fast64_t n_abandoned; /* acked TRIB_STOP: will be replayed */
    atomic_int_fast64_t at_sink;      /* given to send() and not acked yet */
    int (*drain)(void *inst, int timeout_ms); /* the sink's, or NULL (ABI 1.2) */
    unsigned long transform_errors;
};

static void set_fatal(pipeline *pl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_fatal(pipeline *pl, const char *fmt, ...)
{
    pthread_mutex_lock(&pl->lock);
    if (!atomic_load(&pl->fatal)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pl->fatal_msg, sizeof pl->fatal_msg, fmt, ap);
        va_end(ap);
        atomic_store(&pl->fatal, 1);
    }
    atomic_store(&pl->stopping, 1);
    pthread_cond_broadcast(&pl->not_full);
    pthread_cond_broadcast(&pl->not_empty);
    pthread_mutex_unlock(&pl->lock);
}

pipeline *pipeline_new(const pipeline_cfg *cfg, trib_ctx *source, trib_ctx **transforms,
                       size_t ntransforms, trib_ctx *sink)
{
    pipeline *pl = xcalloc(1, sizeof *pl);
    pl->cfg = *cfg;
    if (pl->cfg.queue_size < 1)
        pl->cfg.queue_size = 1;
    if (pl->cfg.batch_size < 1)
        pl->cfg.batch_size = 1;
    pl->source = source;
    pl->transforms = transforms;
    pl->ntransforms = ntransforms;
    pl->sink = sink;
    if (sink->p->abi_minor >= 2 && sink->p->sink)
        pl->drain = sink->p->sink->drain;
    pl->acks = ackq_new();
    pl->t_in = xcalloc(ntransforms + 1, sizeof *pl->t_in);
    pl->t_dropped = xcalloc(ntransforms + 1, sizeof *pl->t_dropped);
    pl->t_failed = xcalloc(ntransforms + 1, sizeof *pl->t_failed);
    pthread_mutex_init(&pl->lock, NULL);
    pthread_cond_init(&pl->not_empty, NULL);
    pthread_cond_init(&pl->not_full, NULL);
    pthread_mutex_init(&pl->hlock, NULL);
    pthread_cond_init(&pl->hcv, NULL);
    pl->q = xcalloc(pl->cfg.queue_size, sizeof *pl->q);
    if (wake_open(pl->wake) != 0)
        log_warn("cannot create the pipeline's wake-up pipe: %s", strerror(errno));
    source->pl = pl;
    sink->pl = pl;
    for (size_t i = 0; i < ntransforms; i++)
        transforms[i]->pl = pl;
    return pl;
}

void pipeline_free(pipeline *pl)
{
    if (!pl)
        return;
    /* a sink's destroy() may still ack leftovers: they must not reach us */
    pl->source->pl = NULL;
    pl->sink->pl = NULL;
    for (size_t i = 0; i < pl->ntransforms; i++)
        pl->transforms[i]->pl = NULL;
    for (size_t i = 0; i < pl->qlen; i++)
        rec_free(pl->q[(pl->qhead + i) % pl->cfg.queue_size]);
    free(pl->q);
    free(pl->t_in);
    free(pl->t_dropped);
    free(pl->t_failed);
    ackq_free(pl->acks);
    pthread_mutex_destroy(&pl->lock);
    pthread_cond_destroy(&pl->not_empty);
    pthread_cond_destroy(&pl->not_full);
    pthread_mutex_destroy(&pl->hlock);
    pthread_cond_destroy(&pl->hcv);
    wake_close(pl->wake);
    free(pl);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int pipeline_emit(pipeline *pl, trib_record *rec, int is_marker, uint64_t pos, int timeout_ms)
{
    if (is_marker) {
        if (atomic_load(&pl->stopping) && atomic_load(&pl->fatal))
            return TRIB_STOP;
        ackq_push(pl->acks, 1, pos);
        return TRIB_OK;
    }
    struct timespec dl;
    int have_dl = 0; /* the clock is read only when the queue is full */
    pthread_mutex_lock(&pl->lock);
    while (pl->qlen == pl->cfg.queue_size && !atomic_load(&pl->stopping) && !g_stop) {
        if (!have_dl && timeout_ms > 0) {
            deadline_after(&dl, timeout_ms);
            have_dl = 1;
        }
        if (timeout_ms <= 0 || pthread_cond_timedwait(&pl->not_full, &pl->lock, &dl) == ETIMEDOUT) {
            pthread_mutex_unlock(&pl->lock);
            return TRIB_RETRY;
        }
    }
    if (atomic_load(&pl->stopping) || g_stop) {
        pthread_mutex_unlock(&pl->lock);
        rec_free(rec);
        return TRIB_STOP;
    }
    rec->seq = ackq_push(pl->acks, 0, 0);
    pl->q[(pl->qhead + pl->qlen) % pl->cfg.queue_size] = rec;
    pl->qlen++;
    atomic_fetch_add(&pl->n_read, 1);
    if (rec->src.snapshot)
        atomic_fetch_add(&pl->n_snapshot, 1);
    pthread_cond_signal(&pl->not_empty);
    pthread_mutex_unlock(&pl->lock);
    return TRIB_OK;
}

const double lat_bounds_ms[LAT_BUCKETS] = {1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000};

static void observe_latency(pipeline *pl, int64_t ms)
{
    if (ms < 0)
        return;
    int b = 0;
    while (b < LAT_BUCKETS && (double)ms > lat_bounds_ms[b])
        b++;
    atomic_fetch_add(&pl->lat_counts[b], 1);
    atomic_fetch_add(&pl->lat_sum_ms, (uint64_t)ms);
}

void pipeline_ack(pipeline *pl, trib_record *rec, int status, const char *errmsg)
{
    atomic_fetch_sub(&pl->at_sink, 1);
    if (status == TRIB_OK) {
        observe_latency(pl, ackq_done(pl->acks, rec->seq));
        atomic_fetch_add(&pl->n_delivered, 1);
    } else if (status == TRIB_ERR) {
        char lsn[32];
        lsn_format(rec->src.lsn, lsn);
        set_fatal(pl, "%s: delivery of a record to '%s' (table %s.%s, LSN %s) failed: %s",
                  pl->sink->name, rec->topic ? rec->topic : "?",
                  rec->src.schema ? rec->src.schema : "?", rec->src.table ? rec->src.table : "?",
                  lsn, errmsg ? errmsg : "unknown error");
    }
    else /* TRIB_STOP: abandoned at shutdown; never marked done, so replayed later */
        atomic_fetch_add(&pl->n_abandoned, 1);
    rec_free(rec);
}

int pipeline_stopping(pipeline *pl)
{
    return atomic_load(&pl->stopping) || g_stop;
}

uint64_t pipeline_pending(pipeline *pl)
{
    return ackq_pending(pl->acks);
}

void pipeline_request_stop(pipeline *pl)
{
    pthread_mutex_lock(&pl->lock);
    atomic_store(&pl->stopping, 1);
    pthread_cond_broadcast(&pl->not_full);
    pthread_cond_broadcast(&pl->not_empty);
    pthread_mutex_unlock(&pl->lock);
}

/*
 * Name the calling thread (top -H, perf, /proc) and lower its CPU priority
 * by thread_nice.  Our three threads fill the pipe; the broker client's
 * threads (librdkafka's broker threads, started by the sink from the main
 * thread) drain it and keep the process's priority.  On a machine with
 * fewer free cores than runnable threads the drain is the critical path:
 * without this it got about three quarters of a core while capture ran
 * ahead, and the snapshot bench took ~13% longer into Kafka (docs/
 * benchmarks.md).  The stage that frees memory and confirms positions goes
 * first; thread_nice: 0 runs everything at one priority.
 */
static void thread_setup(pipeline *pl, const char *name)
{
    pthread_setname_np(pthread_self(), name);
    if (pl->cfg.thread_nice <= 0)
        return;
    id_t tid = (id_t)gettid(); /* Linux: nice is per thread */
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, tid);
    if (cur == -1 && errno)
        return;
    int want = cur + pl->cfg.thread_nice > 19 ? 19 : cur + pl->cfg.thread_nice;
    if (setpriority(PRIO_PROCESS, tid, want) != 0)
        log_debug("%s: cannot lower the thread's priority to nice %d: %s", name, want,
                  strerror(errno));
}

static void commit_check(pipeline *pl)
{
    uint64_t pos = ackq_committable(pl->acks);
    if (pos > pl->last_committed) {
        pl->last_committed = pos;
        atomic_store(&pl->committed, pos);
        if (pl->source->p->source->commit)
            pl->source->p->source->commit(pl->source->inst, pos);
    }
}

static void *source_main(void *arg)
{
    pipeline *pl = arg;
    thread_setup(pl, "trib:source");
    int rc = pl->source->p->source->run(pl->source->inst);
    if (rc == TRIB_ERR)
        set_fatal(pl, "%s stopped with an error (see above)", pl->source->name);
    else if (!atomic_load(&pl->stopping) && !g_stop)
        atomic_store(&pl->source_finished, 1);
    pthread_mutex_lock(&pl->lock);
    pl->source_done = 1;
    pthread_cond_broadcast(&pl->not_empty);
    pthread_mutex_unlock(&pl->lock);
    return NULL;
}

/* Handle a record a transform failed on: fatal, dead-letter, or drop. */
static trib_record *transform_failed(pipeline *pl, trib_ctx *t, trib_record *rec)
{
    char lsn[32];
    lsn_format(rec->src.lsn, lsn);
    if (!pl->cfg.tolerance_all) {
        set_fatal(pl, "%s failed on a record of %s.%s at LSN %s (errors.tolerance: none)",
                  t->name, rec->src.schema ? rec->src.schema : "?",
                  rec->src.table ? rec->src.table : "?", lsn);
        return rec; /* freed by the caller without acking */
    }
    if (++pl->transform_errors <= 10 || pl->transform_errors % 1000 == 0)
        log_warn("%s failed on a record of %s.%s at LSN %s: %s (%lu so far)", t->name,
                 rec->src.schema ? rec->src.schema : "?", rec->src.table ? rec->src.table : "?",
                 lsn, pl->cfg.deadletter_topic ? "sent to the dead-letter topic" : "dropped",
                 pl->transform_errors);
    if (!pl->cfg.deadletter_topic) {
        rec_free(rec); /* counted and acknowledged as dropped by the caller */
        return NULL;
    }
    bytes_set(&rec->key, NULL, 0);
    bytes_set(&rec->value, NULL, 0);
    str_set(&rec->topic, pl->cfg.deadletter_topic);
    rec_header_add(rec, "error.transform", t->name, strlen(t->name));
    atomic_fetch_add(&pl->n_dead, 1);
    return rec;
}

/* Run the transform chain and the converter.  NULL: dropped (already acked). */
static trib_record *process(pipeline *pl, trib_record *rec, int *discard)
{
    uint64_t seq = rec->seq;
    *discard = 0;
    for (size_t i = 0; i < pl->ntransforms && rec; i++) {
        trib_ctx *t = pl->transforms[i];
        atomic_fetch_add(&pl->t_in[i], 1);
        if (t->p->transform->apply(t->inst, &rec) != TRIB_OK) {
            atomic_fetch_add(&pl->t_failed[i], 1);
            rec = transform_failed(pl, t, rec);
            if (rec && atomic_load(&pl->fatal)) {
                *discard = 1;
                return rec;
            }
            break;
        }
        if (rec)
            rec->seq = seq; /* a replacement record keeps its place */
        else
            atomic_fetch_add(&pl->t_dropped[i], 1);
    }
    if (!rec) {
        ackq_done(pl->acks, seq);
        atomic_fetch_add(&pl->n_dropped, 1);
        return NULL;
    }
    char err[256];
    if (convert_record(&pl->cfg.conv, rec, err, sizeof err) != TRIB_OK) {
        char lsn[32];
        lsn_format(rec->src.lsn, lsn);
        set_fatal(pl, "cannot convert a record of %s.%s at LSN %s: %s",
                  rec->src.schema ? rec->src.schema : "?", rec->src.table ? rec->src.table : "?",
                  lsn, err);
        *discard = 1;
    }
    return rec;
}

/* Hand a batch to the sender thread (blocks while two are waiting). */
static void handoff_push(pipeline *pl, trib_record **recs, size_t n)
{
    pthread_mutex_lock(&pl->hlock);
    while (pl->hlen == 2)
        pthread_cond_wait(&pl->hcv, &pl->hlock);
    size_t slot = (pl->hhead + pl->hlen) % 2;
    pl->hand[slot] = recs;
    pl->hand_n[slot] = n;
    pl->hlen++;
    pthread_cond_broadcast(&pl->hcv);
    pthread_mutex_unlock(&pl->hlock);
}

static void handoff_close(pipeline *pl)
{
    pthread_mutex_lock(&pl->hlock);
    pl->hand_closed = 1;
    pthread_cond_broadcast(&pl->hcv);
    pthread_mutex_unlock(&pl->hlock);
}

/* How long one drain() call may wait before the sender looks for a new batch. */
#define DRAIN_SLICE_MS 2

static void *send_main(void *arg)
{
    pipeline *pl = arg;
    thread_setup(pl, "trib:send");
    for (;;) {
        pthread_mutex_lock(&pl->hlock);
        while (pl->hlen == 0 && !pl->hand_closed) {
            if (pl->drain && atomic_load(&pl->at_sink) > 0 && !atomic_load(&pl->fatal)) {
                /* nothing to send: finish what the sink still owes */
                pthread_mutex_unlock(&pl->hlock);
                int rc = pl->drain(pl->sink->inst, DRAIN_SLICE_MS);
                pthread_mutex_lock(&pl->hlock);
                if (rc == TRIB_OK && pl->hlen == 0 && !pl->hand_closed &&
                    atomic_load(&pl->at_sink) > 0) {
                    /* "none left" while acks are still due: do not spin */
                    struct timespec dl;
                    deadline_after(&dl, DRAIN_SLICE_MS);
                    pthread_cond_timedwait(&pl->hcv, &pl->hlock, &dl);
                }
                continue;
            }
            pthread_cond_wait(&pl->hcv, &pl->hlock);
        }
        if (pl->hlen == 0) {
            pthread_mutex_unlock(&pl->hlock);
            return NULL;
        }
        trib_record **recs = pl->hand[pl->hhead];
        size_t n = pl->hand_n[pl->hhead];
        pl->hhead = (pl->hhead + 1) % 2;
        pl->hlen--;
        pthread_cond_broadcast(&pl->hcv);
        pthread_mutex_unlock(&pl->hlock);
        if (atomic_load(&pl->fatal)) { /* never delivered, never confirmed */
            for (size_t i = 0; i < n; i++)
                rec_free(recs[i]);
        } else {
            atomic_fetch_add(&pl->at_sink, (int_fast64_t)n);
            if (pl->sink->p->sink->send(pl->sink->inst, recs, n) != TRIB_OK &&
                !atomic_load(&pl->fatal))
                set_fatal(pl, "%s cannot deliver (see above)", pl->sink->name);
        }
        free(recs);
    }
}

static void *pipe_main(void *arg)
{
    pipeline *pl = arg;
    thread_setup(pl, "trib:pipe");
    size_t cap = pl->cfg.batch_size;
    trib_record **in = xcalloc(cap, sizeof *in);
    trib_record **out = xcalloc(cap, sizeof *out);
    for (;;) {
        size_t n = 0;
        int done;
        pthread_mutex_lock(&pl->lock);
        if (pl->qlen == 0 && !pl->source_done) {
            struct timespec dl;
            deadline_after(&dl, 200);
            pthread_cond_timedwait(&pl->not_empty, &pl->lock, &dl);
        }
        while (n < cap && pl->qlen) {
            in[n++] = pl->q[pl->qhead];
            pl->qhead = (pl->qhead + 1) % pl->cfg.queue_size;
            pl->qlen--;
        }
        if (n)
            pthread_cond_broadcast(&pl->not_full);
        done = pl->source_done && pl->qlen == 0;
        pthread_mutex_unlock(&pl->lock);

        size_t m = 0;
        for (size_t i = 0; i < n; i++) {
            if (atomic_load(&pl->fatal)) { /* never delivered, never confirmed */
                rec_free(in[i]);
                continue;
            }
            int discard;
            trib_record *r = process(pl, in[i], &discard);
            if (r && discard)
                rec_free(r);
            else if (r)
                out[m++] = r;
        }
        if (m) {
            handoff_push(pl, out, m);
            out = xcalloc(cap, sizeof *out);
        }
        commit_check(pl);
        if (done && n == 0)
            break;
    }
    free(in);
    free(out);
    handoff_close(pl);
    pthread_join(pl->send_thread, NULL);
    /* flush what is in flight, then confirm what was acknowledged */
    if (pl->sink->p->sink->flush) {
        int64_t until = now_mono_ms() + pl->cfg.shutdown_timeout_ms;
        while (ackq_pending(pl->acks) > atomic_load(&pl->n_abandoned) &&
               !atomic_load(&pl->fatal)) {
            /* A source that finished by itself (a one-off snapshot) is waited
             * for until everything is acknowledged; shutdown_timeout_ms counts
             * from a stop request. */
            if (atomic_load(&pl->source_finished) && !atomic_load(&pl->stopping) && !g_stop)
                until = now_mono_ms() + pl->cfg.shutdown_timeout_ms;
            int left = (int)(until - now_mono_ms());
            if (left <= 0) {
                log_warn("%s: %llu records still unacknowledged after shutdown_timeout_ms; "
                         "they will be replayed on restart",
                         pl->sink->name, (unsigned long long)ackq_pending(pl->acks));
                break;
            }
            pl->sink->p->sink->flush(pl->sink->inst, left < 500 ? left : 500);
            commit_check(pl);
        }
    }
    commit_check(pl);
    atomic_store(&pl->threads_done, 1);
    wake_poke(pl->wake[1]); /* after the store: a waiter that sees the byte sees the flag */
    return NULL;
}

int pipeline_start(pipeline *pl)
{
    if (pthread_create(&pl->send_thread, NULL, send_main, pl))
        return TRIB_ERR;
    if (pthread_create(&pl->pipe_thread, NULL, pipe_main, pl)) {
        handoff_close(pl);
        pthread_join(pl->send_thread, NULL);
        return TRIB_ERR;
    }
    if (pthread_create(&pl->src_thread, NULL, source_main, pl)) {
        set_fatal(pl, "cannot start the source thread");
        pthread_mutex_lock(&pl->lock);
        pl->source_done = 1;
        pthread_cond_broadcast(&pl->not_empty);
        pthread_mutex_unlock(&pl->lock);
        pthread_join(pl->pipe_thread, NULL);
        return TRIB_ERR;
    }
    return TRIB_OK;
}

int pipeline_finished(pipeline *pl)
{
    /* the pipeline thread returns only after the source thread is done, the
       queue is empty and the sink was flushed: joining is then immediate */
    return atomic_load(&pl->threads_done);
}

int pipeline_wake_fd(pipeline *pl)
{
    return pl->wake[0];
}

int pipeline_source_finished(pipeline *pl)
{
    return atomic_load(&pl->source_finished);
}

int pipeline_join(pipeline *pl)
{
    pthread_join(pl->src_thread, NULL);
    pthread_join(pl->pipe_thread, NULL);
    return atomic_load(&pl->fatal) ? 1 : 0;
}

void pipeline_get_stats(pipeline *pl, pipeline_stats *st)
{
    st->read = atomic_load(&pl->n_read);
    st->snapshot = atomic_load(&pl->n_snapshot);
    st->delivered = atomic_load(&pl->n_delivered);
    st->dropped = atomic_load(&pl->n_dropped);
    st->deadlettered = atomic_load(&pl->n_dead);
    st->committed_pos = atomic_load(&pl->committed);
    st->pending = ackq_pending(pl->acks);
    pthread_mutex_lock(&pl->lock);
    st->queue_depth = pl->qlen;
    pthread_mutex_unlock(&pl->lock);
    st->queue_size = pl->cfg.queue_size;
    for (int i = 0; i <= LAT_BUCKETS; i++)
        st->lat_counts[i] = atomic_load(&pl->lat_counts[i]);
    st->lat_sum_ms = (double)atomic_load(&pl->lat_sum_ms);
}

void pipeline_transform_stats(pipeline *pl, size_t i, uint64_t *in, uint64_t *dropped,
                              uint64_t *failed)
{
    *in = *dropped = *failed = 0;
    if (i >= pl->ntransforms)
        return;
    *in = atomic_load(&pl->t_in[i]);
    *dropped = atomic_load(&pl->t_dropped[i]);
    *failed = atomic_load(&pl->t_failed[i]);
}

const char *pipeline_fatal_message(pipeline *pl)
{
    return atomic_load(&pl->fatal) ? pl->fatal_msg : NULL;
}
