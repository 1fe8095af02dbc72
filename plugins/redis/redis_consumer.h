/*
 * plugins/redis/redis_consumer.h — the consumer's state, shared by
 * redis_consumer.c (open/commit/close, entry -> record) and redis_poll.c
 * (fetching entries).
 */
#ifndef TRIB_REDIS_CONSUMER_H
#define TRIB_REDIS_CONSUMER_H

#include "redis.h"

#define RC_ID_LEN 48

typedef enum rc_mode { RC_RANGE = 0, RC_XREAD = 1, RC_GROUP = 2 } rc_mode;

typedef struct redis_consumer {
    redis_inst *ri;
    redis_conn conn;       /**< this consumer's own connection */
    const char *topic_arg; /**< only during open() */
    char *topic;
    char *group;    /**< RC_GROUP only */
    char *consumer; /**< consumer name inside the group */
    rc_mode mode;
    int from_beginning;
    int noack;                     /**< group mode without commit(): XREADGROUP NOACK */
    int read_pending;              /**< group: still re-reading our own pending entries */
    char pending_id[RC_ID_LEN];    /**< group: cursor in our pending entries */
    char last_id[RC_ID_LEN];       /**< xread/range: last ID returned */
    char end_id[RC_ID_LEN];        /**< range: last ID that existed at open() */
    char delivered_max[RC_ID_LEN]; /**< group: highest ID returned by poll ("" none) */
    int started;                   /**< range: first page fetched */
    int eof;                       /**< range: nothing more to read */

    redisReply *batch;   /**< reply holding buffered entries */
    redisReply *entries; /**< the entries array inside batch */
    size_t next;         /**< next entry to return */

    char **unacked; /**< group: IDs delivered, not yet XACKed (ascending) */
    size_t nunacked, capunacked;
} redis_consumer;

redisReply *rc_command(redis_consumer *cs, int argc, const char **argv, const char *what);
int rc_create_group(redis_consumer *cs, char *err, size_t errlen);
trib_record *rc_entry_record(redis_consumer *cs, const redisReply *entry);
int rc_track(redis_consumer *cs, const char *id);

#endif /* TRIB_REDIS_CONSUMER_H */
