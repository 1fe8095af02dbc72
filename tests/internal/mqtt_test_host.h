/*
 * mqtt_test_host.h — a minimal trib_host for driving one plugin without the core.
 *
 * Test code only: loads a plugin .so with dlopen, offers options from
 * "key=value" strings, allocates records, and records every ack so that a
 * test can check "exactly once per record" and count statuses.
 */
#ifndef TRIB_MQTT_TEST_HOST_H
#define TRIB_MQTT_TEST_HOST_H

#include <pthread.h>
#include <tributary/plugin.h>

typedef struct th_host {
    trib_host host;                 /* handed to the plugin (first member) */
    const trib_plugin *plugin;
    void *dl;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long acks_ok, acks_err, acks_stop, acks_dup, resends;
    int stop;                       /* what host->stopping returns */
    int verbose;
    char last_err[512];
} th_host;

/** Load `so_path`; exits the process with a message on failure. */
void th_init(th_host *th, const char *so_path);
/** Create an instance from NULL-terminated "key=value" strings. */
void *th_create(th_host *th, const char *const *kv);
void th_destroy(th_host *th, void *inst);
/** Wait until `n` acks in total arrived or timeout; returns the total. */
unsigned long th_wait_acks(th_host *th, unsigned long n, int timeout_ms);
/** Records for tests: topic, key (may be NULL), value. */
trib_record *th_record(th_host *th, const char *topic, const void *key, size_t klen,
                       const void *val, size_t vlen);
void th_set_stop(th_host *th, int stop);
const char *th_plugin_path(const char *name);

#endif
