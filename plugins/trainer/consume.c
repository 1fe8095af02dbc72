/*
 * consume.c — reading topics through the broker the core built from the
 * config's `sink:` section: opening consumers, waiting for records while
 * watching for a stop request, and loading a whole topic into memory.
 */
#include "trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Poll in short slices so that a stop request is seen quickly. */
#define POLL_SLICE_MS 200

int trainer_sub_open(trainer *t, trainer_sub *s, const trib_broker *b, const char *topic,
                     const char *group, int from_beginning, int bounded, int commit)
{
    char err[512] = "";
    trib_consume_opts o = {group, from_beginning, bounded, commit};
    s->broker = b;
    s->topic = topic;
    s->c = b->ops->open(b->inst, topic, &o, err, sizeof err);
    if (!s->c) {
        TLOG(t, TRIB_LOG_ERROR, "cannot consume topic %s (group %s): %s", topic,
             group ? group : "default", err[0] ? err : "unknown error");
        return -1;
    }
    return 0;
}

void trainer_sub_close(trainer_sub *s)
{
    if (s->c)
        s->broker->ops->close(s->c);
    s->c = NULL;
}

static double now_ms(void)
{
    return nn_now() * 1000.0;
}

int trainer_next(trainer *t, trainer_sub *s, int64_t idle_ms, trib_record **out)
{
    double start = now_ms();
    *out = NULL;
    while (!t->host->stopping(t->ctx)) {
        int slice = POLL_SLICE_MS;
        if (idle_ms >= 0) {
            double left = (double)idle_ms - (now_ms() - start);
            if (left <= 0)
                return 0;
            slice = left < slice ? (int)left + 1 : slice;
        }
        int rc = s->broker->ops->poll(s->c, slice, out);
        if (rc == 1 && *out)
            return 1;
        if (rc == TRIB_EOF || rc == TRIB_STOP)
            return 0;
        if (rc == TRIB_ERR) {
            TLOG(t, TRIB_LOG_ERROR, "reading topic %s failed", s->topic);
            return TRIB_ERR;
        }
        if (rc == TRIB_RETRY) { /* broker away: do not spin */
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    return 0;
}

int trainer_read_all(trainer *t, trainer_sub *s, int64_t first_idle_ms, int64_t idle_ms,
                     int commit, nn_data *d)
{
    uint8_t px[TRAINER_PIXELS];
    trib_record *rec = NULL, *last = NULL;
    int rc, label;
    while ((rc = trainer_next(t, s, last ? idle_ms : first_idle_ms, &rec)) == 1) {
        if (trainer_decode(t, rec, 1, px, &label) == 0 && nn_data_push(d, px, label) != 0) {
            TLOG(t, TRIB_LOG_ERROR, "out of memory after %zu records of %s", d->n, s->topic);
            t->host->record_free(rec);
            rc = TRIB_ERR;
            break;
        }
        if (last)
            t->host->record_free(last);
        last = rec;
    }
    if (last && commit && rc == 0 && s->broker->ops->commit)
        s->broker->ops->commit(s->c, last);
    if (last)
        t->host->record_free(last);
    return rc == 0 ? 0 : -1;
}
