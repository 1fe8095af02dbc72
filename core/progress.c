/*
 * progress.c — terminal status line for `tributary run`.  The source reports
 * per-table snapshot metrics ("snapshot_rows:<table>", "snapshot_estimate:
 * <table>"); everything else comes from the pipeline's counters.
 */
#include "progress.h"
#include "util.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

void progress_init(progress *p)
{
    memset(p, 0, sizeof *p);
    p->t0_ms = p->last_ms = now_mono_ms();
}

/* The table being snapshotted: the last snapshot_rows:* metric below its estimate. */
static int snapshot_line(char *out, size_t len, trib_ctx *src, double rate)
{
    int found = 0;
    pthread_mutex_lock(&src->mlock);
    for (int i = 0; i < src->nmetrics; i++) {
        if (strncmp(src->mnames[i], "snapshot_rows:", 14) != 0)
            continue;
        const char *table = src->mnames[i] + 14;
        double rows = src->mvals[i], est = 0;
        for (int k = 0; k < src->nmetrics; k++)
            if (strncmp(src->mnames[k], "snapshot_estimate:", 18) == 0 &&
                strcmp(src->mnames[k] + 18, table) == 0)
                est = src->mvals[k];
        if (est > 0 && rows < est) {
            double eta = rate > 0 ? (est - rows) / rate : 0;
            snprintf(out, len, "snapshot %s: %.0f of ~%.0f rows (%.0f%%), %.0f rows/s, ETA %.0fs",
                     table, rows, est, 100.0 * rows / est, rate, eta);
            found = 1;
        } else if (!found) {
            snprintf(out, len, "snapshot %s: %.0f rows, %.0f rows/s", table, rows, rate);
        }
    }
    pthread_mutex_unlock(&src->mlock);
    return found;
}

void progress_draw(progress *p, pipeline *pl, trib_ctx *source)
{
    int64_t now = now_mono_ms();
    if (now - p->last_ms < 250)
        return;
    pipeline_stats st;
    pipeline_get_stats(pl, &st);
    double inst = (double)(st.read - p->last_read) * 1000.0 / (double)(now - p->last_ms);
    p->rate = p->rate ? 0.7 * p->rate + 0.3 * inst : inst;
    p->last_read = st.read;
    p->last_ms = now;
    char line[256];
    if (!snapshot_line(line, sizeof line, source, p->rate)) {
        char lsn[32];
        lsn_format(st.committed_pos, lsn);
        snprintf(line, sizeof line,
                 "live: %llu captured, %llu delivered, %llu dropped, %llu in flight, %.0f rec/s, "
                 "confirmed %s",
                 (unsigned long long)st.read, (unsigned long long)st.delivered,
                 (unsigned long long)st.dropped, (unsigned long long)st.pending, p->rate, lsn);
    }
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
    p->drawn = 1;
}

void progress_clear(progress *p)
{
    if (p->drawn) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
        p->drawn = 0;
    }
}
