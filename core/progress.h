/*
 * progress.h — the live status line `tributary run` draws when stderr is a
 * terminal: snapshot progress per table (rows, rows/s, ETA from the table's
 * estimated row count), then one line of live counters.
 */
#ifndef TRIB_PROGRESS_H
#define TRIB_PROGRESS_H

#include "pipeline.h"

typedef struct progress {
    int64_t t0_ms, last_ms;
    uint64_t last_read;
    double rate;
    int drawn;
} progress;

void progress_init(progress *p);
/** Redraw the line (at most every 250 ms). */
void progress_draw(progress *p, pipeline *pl, trib_ctx *source);
/** Erase the line before other output. */
void progress_clear(progress *p);

#endif
