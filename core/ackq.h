/*
 * ackq.h — the acknowledgement window.  Every record and every position
 * marker a source emits gets the next sequence number.  Records are marked
 * done when the sink acknowledges them (or a transform drops them); the
 * window's low edge advances over done entries, and the highest position
 * marker it passes is what may be confirmed to the source.  A failed record
 * never becomes done, so nothing past it is ever confirmed.
 */
#ifndef TRIB_ACKQ_H
#define TRIB_ACKQ_H

#include <stdint.h>

typedef struct ackq ackq;

ackq *ackq_new(void);
void ackq_free(ackq *q);
/** Append a record (pos == 0, not done) or a position marker (done at once). */
uint64_t ackq_push(ackq *q, int is_marker, uint64_t pos);
/** Mark a record delivered; returns ms since it was pushed (-1 if unknown). */
int64_t ackq_done(ackq *q, uint64_t seq);
/** Highest marker position below which everything is done (0: none yet). */
uint64_t ackq_committable(ackq *q);
/** Records pushed but not yet done. */
uint64_t ackq_pending(ackq *q);

#endif
