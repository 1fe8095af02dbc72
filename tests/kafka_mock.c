/*
 * tests/kafka_mock.c — a Kafka cluster for tests: librdkafka's mock cluster
 * (rdkafka_mock.h) on 127.0.0.1, controllable over stdin.
 *
 *   kafka_mock [--brokers N] [--topic NAME:PARTITIONS[:RF]]...
 *
 * Prints the bootstrap address ("127.0.0.1:PORT,...") as the first line of
 * stdout, then serves until SIGTERM/SIGINT or `quit`.  Commands on stdin,
 * one per line, each answered with a line "ok" or "error: ...":
 *   down ID | up ID          broker ID (1..N) stops / resumes serving
 *   rtt ID MS                add MS of latency to broker ID
 *   create NAME:PARTS[:RF]   create a topic
 *   produce-error ERR [CNT]  fail the next CNT Produce requests with Kafka
 *                            error code ERR (e.g. 10 = MESSAGE_TOO_LARGE)
 *   quit
 * The mock keeps about 5 MB per partition (older message sets are dropped):
 * create topics with enough partitions, or compress, for big data sets.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/* Kafka protocol ApiKey of Produce requests (RD_KAFKAP_Produce is internal). */
#define KAFKA_API_PRODUCE 0

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    (void)sig;
    got_signal = 1;
}

/*
 * librdkafka 2.0's mock thread sometimes misses the wake-up for an operation
 * another thread queued (topic create, broker down/up, ...) and only serves
 * it at its next poll timeout, a second later; measured here: 80 topics
 * created one after another took 0.005 s in five runs of six and 17 s in
 * the sixth.  While such a call runs, a helper thread connects to every
 * broker's listener every 10 ms: each accepted connection wakes the mock
 * thread, which then also serves the queued operation.
 */
#define WAKER_MAX_BROKERS 16
static struct {
    int ports[WAKER_MAX_BROKERS];
    int nports;
    atomic_int stop;
    pthread_t thread;
    int running;
} waker;

static void *waker_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&waker.stop)) {
        for (int i = 0; i < waker.nports; i++) {
            int s = socket(AF_INET, SOCK_STREAM, 0);
            if (s < 0)
                continue;
            struct sockaddr_in sa = {.sin_family = AF_INET};
            sa.sin_port = htons((uint16_t)waker.ports[i]);
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            (void)connect(s, (struct sockaddr *)&sa, sizeof sa); /* refused is fine */
            close(s);
        }
        usleep(10 * 1000);
    }
    return NULL;
}

/* bootstraps: "127.0.0.1:PORT,127.0.0.1:PORT,..." */
static void waker_init(const char *bootstraps)
{
    const char *p = bootstraps;
    while (p && *p && waker.nports < WAKER_MAX_BROKERS) {
        const char *colon = strchr(p, ':');
        if (!colon)
            break;
        waker.ports[waker.nports++] = atoi(colon + 1);
        p = strchr(colon, ',');
        if (p)
            p++;
    }
}

static void waker_start(void)
{
    atomic_store(&waker.stop, 0);
    waker.running = waker.nports > 0 && pthread_create(&waker.thread, NULL, waker_main, NULL) == 0;
}

static void waker_stop(void)
{
    if (!waker.running)
        return;
    atomic_store(&waker.stop, 1);
    pthread_join(waker.thread, NULL);
    waker.running = 0;
}

/* "name:parts[:rf]" -> topic; returns 0 on success. */
static int create_topic(rd_kafka_mock_cluster_t *mc, const char *spec, char *err, size_t errlen)
{
    char name[256];
    int parts = 1, rf = 1;
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n == 0 || n >= sizeof name) {
        snprintf(err, errlen, "bad topic spec '%s' (want NAME:PARTITIONS[:RF])", spec);
        return -1;
    }
    memcpy(name, spec, n);
    name[n] = '\0';
    if (colon && sscanf(colon + 1, "%d:%d", &parts, &rf) < 1) {
        snprintf(err, errlen, "bad partition count in '%s'", spec);
        return -1;
    }
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, name, parts, rf);
    if (e) {
        snprintf(err, errlen, "cannot create topic %s: %s", name, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

static int run_command(rd_kafka_mock_cluster_t *mc, char *line, char *err, size_t errlen)
{
    char cmd[32], arg[256];
    int id = 0, a2 = 0;
    arg[0] = '\0';
    int n = sscanf(line, "%31s %255s %d", cmd, arg, &a2);
    if (n < 1)
        return 0;
    id = atoi(arg);
    rd_kafka_resp_err_t e = 0;
    if (!strcmp(cmd, "down") && n >= 2)
        e = rd_kafka_mock_broker_set_down(mc, id);
    else if (!strcmp(cmd, "up") && n >= 2)
        e = rd_kafka_mock_broker_set_up(mc, id);
    else if (!strcmp(cmd, "rtt") && n >= 3)
        e = rd_kafka_mock_broker_set_rtt(mc, id, a2);
    else if (!strcmp(cmd, "create") && n >= 2)
        return create_topic(mc, arg, err, errlen);
    else if (!strcmp(cmd, "produce-error") && n >= 2) {
        int cnt = n >= 3 ? a2 : 1;
        for (int i = 0; i < cnt; i++)
            rd_kafka_mock_push_request_errors(mc, KAFKA_API_PRODUCE, 1, (rd_kafka_resp_err_t)id);
    } else if (!strcmp(cmd, "quit")) {
        got_signal = 1;
    } else {
        snprintf(err, errlen, "unknown command '%s'", cmd);
        return -1;
    }
    if (e) {
        snprintf(err, errlen, "%s: %s", cmd, rd_kafka_err2str(e));
        return -1;
    }
    return 0;
}

/* Read commands from stdin until a signal or `quit`; EOF on stdin just
 * means nobody will send commands. */
static void serve(rd_kafka_mock_cluster_t *mc)
{
    char line[512], err[512];
    size_t used = 0;
    int stdin_open = 1;
    while (!got_signal) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        if (!stdin_open || poll(&pfd, 1, 200) <= 0) {
            if (!stdin_open)
                usleep(200 * 1000);
            continue;
        }
        ssize_t r = read(0, line + used, sizeof line - 1 - used);
        if (r <= 0) {
            stdin_open = r < 0 && errno == EINTR;
            continue;
        }
        used += (size_t)r;
        line[used] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n'))) {
            *nl = '\0';
            waker_start();
            int rc = run_command(mc, line, err, sizeof err);
            waker_stop();
            if (rc == 0)
                puts("ok");
            else
                printf("error: %s\n", err);
            fflush(stdout);
            used -= (size_t)(nl + 1 - line);
            memmove(line, nl + 1, used + 1);
        }
        if (used >= sizeof line - 1)
            used = 0; /* overlong line: drop it */
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: kafka_mock [--brokers N] [--topic NAME:PARTITIONS[:RF]]...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int brokers = 1;
    char err[512];
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--brokers") && i + 1 < argc)
            brokers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--topic") && i + 1 < argc)
            i++;
        else
            usage();
    }
    if (brokers < 1)
        usage();

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "3", NULL, 0); /* quiet: errors only */
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "kafka_mock: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (!mc) {
        fprintf(stderr, "kafka_mock: cannot create the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    int rc = 0;
    waker_init(rd_kafka_mock_cluster_bootstraps(mc));
    waker_start();
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--topic") && create_topic(mc, argv[++i], err, sizeof err)) {
            fprintf(stderr, "kafka_mock: %s\n", err);
            rc = 1;
        }
    waker_stop();
    if (rc == 0) {
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
        fflush(stdout);
        serve(mc);
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return rc;
}
