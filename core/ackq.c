/*
 * ackq.c — a growable ring of entries indexed by sequence number minus the
 * window's low edge.  All operations take the window's mutex: acks arrive
 * from broker I/O threads.
 */
#include "ackq.h"
#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t pos;      /* marker position, 0 for records */
    int64_t t_ms;      /* when the record was pushed (monotonic) */
    unsigned char done;
} entry;

struct ackq {
    pthread_mutex_t lock;
    entry *ring;
    size_t cap;        /* power of two */
    uint64_t low;      /* seq of the oldest entry not yet passed */
    uint64_t next;     /* next seq to hand out */
    uint64_t pending;
    uint64_t committable;
};

ackq *ackq_new(void)
{
    ackq *q = xcalloc(1, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    q->cap = 1024;
    q->ring = xcalloc(q->cap, sizeof *q->ring);
    q->low = q->next = 1;
    return q;
}

void ackq_free(ackq *q)
{
    if (!q)
        return;
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q);
}

static entry *at(ackq *q, uint64_t seq)
{
    return &q->ring[seq & (q->cap - 1)];
}

static void grow(ackq *q)
{
    size_t ncap = q->cap * 2;
    entry *n = xcalloc(ncap, sizeof *n);
    for (uint64_t s = q->low; s < q->next; s++)
        n[s & (ncap - 1)] = *at(q, s);
    free(q->ring);
    q->ring = n;
    q->cap = ncap;
}

static void advance(ackq *q)
{
    while (q->low < q->next && at(q, q->low)->done) {
        entry *e = at(q, q->low);
        if (e->pos > q->committable)
            q->committable = e->pos;
        q->low++;
    }
}

uint64_t ackq_push(ackq *q, int is_marker, uint64_t pos)
{
    pthread_mutex_lock(&q->lock);
    if (q->next - q->low + 1 >= q->cap)
        grow(q);
    uint64_t seq = q->next++;
    entry *e = at(q, seq);
    e->pos = is_marker ? pos : 0;
    e->done = is_marker ? 1 : 0;
    e->t_ms = is_marker ? 0 : now_mono_ms();
    if (!is_marker)
        q->pending++;
    advance(q);
    pthread_mutex_unlock(&q->lock);
    return seq;
}

int64_t ackq_done(ackq *q, uint64_t seq)
{
    int64_t lat = -1;
    pthread_mutex_lock(&q->lock);
    if (seq >= q->low && seq < q->next && !at(q, seq)->done) {
        at(q, seq)->done = 1;
        lat = now_mono_ms() - at(q, seq)->t_ms;
        q->pending--;
        advance(q);
    }
    pthread_mutex_unlock(&q->lock);
    return lat;
}

uint64_t ackq_committable(ackq *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t c = q->committable;
    pthread_mutex_unlock(&q->lock);
    return c;
}

uint64_t ackq_pending(ackq *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t p = q->pending;
    pthread_mutex_unlock(&q->lock);
    return p;
}
