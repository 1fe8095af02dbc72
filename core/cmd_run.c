/*
 * cmd_run.c — `tributary run CONFIG` and `tributary check CONFIG`.
 *
 * run: start sink, transforms, source; drive the pipeline until the source
 * ends, a fatal error, or SIGINT/SIGTERM; then flush, confirm and exit
 * (0 on a requested stop, 1 on a fatal error).
 */
#include "cli.h"
#include "log.h"
#include "metrics.h"
#include "progress.h"
#include "util.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void print_status(pipeline *pl, const char *what)
{
    pipeline_stats st;
    pipeline_get_stats(pl, &st);
    char lsn[32];
    lsn_format(st.committed_pos, lsn);
    log_info("%s: %llu records captured (%llu from the snapshot), %llu delivered, %llu dropped "
             "by transforms, %llu dead-lettered, %llu in flight, confirmed position %s",
             what, (unsigned long long)st.read, (unsigned long long)st.snapshot,
             (unsigned long long)st.delivered, (unsigned long long)st.dropped,
             (unsigned long long)st.deadlettered, (unsigned long long)st.pending, lsn);
}

/*
 * Sleep until the pipeline finishes, a signal arrives, or the next tick of
 * the progress line / status log (at most 100 ms).  Both events poke a pipe
 * (pipeline_wake_fd, signal_wake_fd), so the exit is not delayed by a tick
 * and a poke made before we got here is not lost.
 */
static void wait_event(pipeline *pl)
{
    struct pollfd fds[2] = {{pipeline_wake_fd(pl), POLLIN, 0}, {signal_wake_fd(), POLLIN, 0}};
    /* without a wake-up pipe, fall back to polling the state often */
    int timeout = fds[0].fd < 0 || fds[1].fd < 0 ? 10 : 100;
    if (poll(fds, 2, timeout) > 0) {
        wake_drain(fds[0].fd);
        wake_drain(fds[1].fd);
    }
}

static int start_all(app *a, char *err, size_t errlen)
{
    if (instance_start(a->sink, err, errlen))
        return -1;
    for (size_t i = 0; i < a->ntransforms; i++)
        if (instance_start(a->transforms[i], err, errlen))
            return -1;
    return instance_start(a->source, err, errlen);
}

int cmd_run(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tributary run CONFIG\n");
        return 2;
    }
    char err[2048];
    app a;
    install_signal_handlers();
    if (app_load(&a, argv[1], APP_PIPELINE, err, sizeof err)) {
        log_error("%s", err);
        app_free(&a);
        return 1;
    }
    pipeline *pl = pipeline_new(&a.pcfg, a.source, a.transforms, a.ntransforms, a.sink);
    if (start_all(&a, err, sizeof err)) {
        log_error("%s", err);
        pipeline_free(pl);
        app_free(&a);
        return 1;
    }
    log_info("running %s: %s -> %zu transform(s) -> %s", argv[1], a.source->name, a.ntransforms,
             a.sink->name);
    size_t nctx = 0;
    trib_ctx **ctxs = xcalloc(a.ntransforms + 2, sizeof *ctxs);
    ctxs[nctx++] = a.source;
    for (size_t i = 0; i < a.ntransforms; i++)
        ctxs[nctx++] = a.transforms[i];
    ctxs[nctx++] = a.sink;
    metrics_server *ms = NULL;
    if (a.metrics_listen) {
        ms = metrics_start(a.metrics_listen, pl, ctxs, nctx, err, sizeof err);
        if (!ms) {
            log_error("%s: %s", argv[1], err);
            free(ctxs);
            pipeline_free(pl);
            app_free(&a);
            return 1;
        }
        log_info("metrics on http://%s/metrics", a.metrics_listen);
    }
    if (pipeline_start(pl) != TRIB_OK) {
        log_error("cannot start pipeline threads");
        pipeline_free(pl);
        app_free(&a);
        return 1;
    }
    int64_t next_status = now_mono_ms() + a.status_interval_ms;
    int stop_asked = 0;
    int tty = isatty(STDERR_FILENO) && !getenv("TRIBUTARY_NO_PROGRESS");
    progress prog;
    progress_init(&prog);
    log_set_clear_line(tty);
    while (!pipeline_finished(pl)) {
        wait_event(pl);
        if (pipeline_finished(pl))
            break;
        if (tty)
            progress_draw(&prog, pl, a.source); /* replaces the periodic status logs */
        if (g_stop && !stop_asked) {
            stop_asked = 1;
            log_info("stopping: flushing in-flight records (up to %d ms)",
                     a.pcfg.shutdown_timeout_ms);
            pipeline_request_stop(pl);
        }
        if (!tty && a.status_interval_ms > 0 && now_mono_ms() >= next_status) {
            print_status(pl, "status");
            next_status = now_mono_ms() + a.status_interval_ms;
        }
    }
    progress_clear(&prog);
    int rc = pipeline_join(pl);
    metrics_stop(ms);
    free(ctxs);
    if (a.source->p->source->close)
        a.source->p->source->close(a.source->inst);
    print_status(pl, "stopped");
    if (rc)
        log_error("%s", pipeline_fatal_message(pl));
    pipeline_stats st;
    pipeline_get_stats(pl, &st);
    if (!rc && pipeline_source_finished(pl) && st.pending > 0) {
        /* a one-off run (snapshot: initial_only) interrupted before the sink confirmed it all */
        log_error("%s: the source finished but %llu record(s) were not acknowledged by %s: "
                  "the run is incomplete", argv[1], (unsigned long long)st.pending, a.sink->name);
        rc = 1;
    }
    pipeline_free(pl);
    app_free(&a);
    return rc;
}

int cmd_check(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tributary check CONFIG\n");
        return 2;
    }
    char err[2048];
    app a;
    /* the pipeline always; the trainer and its broker when configured */
    config *peek = config_load(argv[1], err, sizeof err);
    if (!peek) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    unsigned what = 0;
    if (cnode_get(peek->root, "pipeline"))
        what |= APP_PIPELINE;
    if (cnode_get(peek->root, "trainer"))
        what |= APP_TRAINER | APP_BROKER;
    config_free(peek);
    if (!what) {
        fprintf(stderr, "%s: nothing to check: no 'pipeline' or 'trainer' section\n", argv[1]);
        return 1;
    }
    int rc = app_load(&a, argv[1], what, err, sizeof err);
    if (rc)
        fprintf(stderr, "%s\n", err);
    else
        printf("%s: OK\n", argv[1]);
    app_free(&a);
    return rc ? 1 : 0;
}
