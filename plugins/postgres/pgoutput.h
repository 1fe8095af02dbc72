/*
 * pgoutput.h — pure decoder for PostgreSQL's streaming replication framing
 * (XLogData 'w', Primary keepalive 'k', Standby status update 'r') and for
 * the pgoutput logical replication messages (protocol version 1; 2..4 when
 * streaming and two-phase are not requested, which is how we use it).
 *
 * Everything here works on byte buffers and never touches a connection, so
 * it can be unit-tested on captured bytes and fuzzed.  Every read is bounds
 * checked: malformed input yields -1 and a message naming the offset.
 *
 * Ownership: decoded strings and tuple values point INTO the input buffer
 * (zero copy) and are valid while that buffer lives.  Arrays (columns,
 * tuple values, truncated relation ids) are malloc'ed by the decoder and
 * released by pgo_msg_free().
 */
#ifndef TRIB_PG_PGOUTPUT_H
#define TRIB_PG_PGOUTPUT_H

#include <stddef.h>
#include <stdint.h>

/* Seconds between 1970-01-01 and 2000-01-01 (the Postgres epoch). */
#define PGO_EPOCH_OFFSET_S INT64_C(946684800)

/** One streaming-replication CopyData frame from the server. */
typedef struct pgo_frame {
    char type;              /* 'w' XLogData or 'k' keepalive */
    uint64_t wal_start;     /* 'w': LSN of the data */
    uint64_t wal_end;       /* current end of WAL on the server */
    int64_t send_time;      /* microseconds since 2000-01-01 */
    int reply_requested;    /* 'k': the server wants a status update now */
    const uint8_t *data;    /* 'w': the pgoutput message */
    size_t len;
} pgo_frame;

/** A tuple column value.  kind: 'n' null, 'u' unchanged TOAST, 't' text, 'b' binary. */
typedef struct pgo_value {
    char kind;
    const char *data;       /* not NUL-terminated; NULL for 'n'/'u' */
    uint32_t len;
} pgo_value;

typedef struct pgo_tuple {
    uint16_t ncols;
    pgo_value *cols;
} pgo_tuple;

typedef struct pgo_relcol {
    uint8_t flags;          /* bit 0: part of the replica identity key */
    const char *name;
    uint32_t type_oid;
    int32_t type_mod;
} pgo_relcol;

/** One decoded pgoutput message; which fields are meaningful depends on type. */
typedef struct pgo_msg {
    char type;              /* 'B','C','O','R','Y','I','U','D','T','M' */
    /* B: final_lsn, ts, xid.  C: lsn (commit), end_lsn, ts, flags.  O: lsn, name. */
    uint64_t lsn;
    uint64_t end_lsn;
    int64_t ts;             /* microseconds since 2000-01-01 */
    uint32_t xid;
    uint8_t flags;          /* C flags; M flags; T options */
    /* R, Y, I, U, D: relation (or type) oid */
    uint32_t oid;
    const char *nspname;    /* R, Y */
    const char *name;       /* R relname, Y typname, O origin, M prefix */
    char replident;         /* R: 'd','n','f','i' */
    uint16_t ncols;         /* R */
    pgo_relcol *cols;       /* R */
    char old_kind;          /* U, D: 'K', 'O' or 0 when absent */
    pgo_tuple old_tuple;    /* U, D (when old_kind != 0) */
    int has_new;
    pgo_tuple new_tuple;    /* I, U */
    uint32_t nrels;         /* T */
    uint32_t *relids;       /* T */
    const uint8_t *content; /* M */
    uint32_t content_len;   /* M */
} pgo_msg;

/** Parse one server CopyData frame ('w' or 'k').  0 or -1 (err filled). */
int pgo_parse_frame(const uint8_t *buf, size_t len, pgo_frame *out, char *err, size_t errlen);

/**
 * Decode one pgoutput message.  On success returns 0 and fills *out (free it
 * with pgo_msg_free).  On malformed input returns -1, fills err with the
 * message type and byte offset, and leaves nothing to free.
 */
int pgo_decode(const uint8_t *buf, size_t len, pgo_msg *out, char *err, size_t errlen);
void pgo_msg_free(pgo_msg *m);

/** Size of a Standby Status Update message. */
#define PGO_STATUS_LEN 34
/** Build a Standby Status Update ('r') into out[PGO_STATUS_LEN]. */
void pgo_build_status(uint8_t *out, uint64_t write_lsn, uint64_t flush_lsn, uint64_t apply_lsn,
                      int64_t now_pg_us, int reply_requested);

/** Microseconds since 2000-01-01 to milliseconds since 1970-01-01. */
int64_t pgo_pgtime_to_unix_ms(int64_t pg_us);
/** Current time as microseconds since 2000-01-01. */
int64_t pgo_now_pg_us(void);

/** Format an LSN as "X/X" into buf (at least 20 bytes); returns buf. */
const char *pgo_lsn_str(uint64_t lsn, char *buf, size_t buflen);
/** Parse "X/X".  0 on success, -1 on a malformed string. */
int pgo_lsn_parse(const char *s, uint64_t *out);

#endif /* TRIB_PG_PGOUTPUT_H */
