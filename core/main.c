/*
 * main.c — command-line entry point: global flags, then one command.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include "cli.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifdef HAVE_JEMALLOC
/*
 * jemalloc's built-in options (MALLOC_CONF in the environment still wins).
 * tcache_max: serve allocations up to 128 KB from the thread caches (its
 * default stops at 32 KB).  librdkafka's LZ4 compression callocs a 68 KB
 * context for every message set; from the arena, jemalloc zeroes a reused
 * extent by madvise(MADV_DONTNEED), so each batch faulted 17 pages back in
 * and interrupted every other thread of the process for the TLB shootdown
 * (~1,000 madvise calls per 60,000 rows; none with this).
 */
const char *malloc_conf = "tcache_max:131072";
#endif

/*
 * One malloc arena.  Records are allocated by the source thread and freed by
 * whichever thread sees their acknowledgement; with glibc's per-thread arenas
 * every such free takes the slow cross-arena path.  A single arena measured
 * ~12% faster on the 60,000-row snapshot bench (bench/snapshot_bench.sh).
 * This matters for builds with the C library's malloc (configure
 * --without-jemalloc, the sanitizer builds); linked with jemalloc, which is
 * faster still (docs/benchmarks.md), glibc's malloc serves nothing and this
 * is a no-op.  MALLOC_ARENA_MAX or a GLIBC_TUNABLES arena setting in the
 * environment wins.
 */
static void malloc_tune(void)
{
#ifdef __GLIBC__
    const char *t = getenv("GLIBC_TUNABLES");
    if (!getenv("MALLOC_ARENA_MAX") && !(t && strstr(t, "arena_max")))
        mallopt(M_ARENA_MAX, 1);
#endif
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: tributary [--log-level LEVEL] COMMAND [ARGS]\n"
            "\n"
            "Change data capture from Postgres to Kafka, Redis Streams or MQTT, and a\n"
            "trainer that learns from the stream.\n"
            "\n"
            "commands:\n"
            "  run CONFIG         run the pipeline until SIGINT/SIGTERM (then flush and confirm)\n"
            "  check CONFIG       validate the config and every plugin's options; run nothing\n"
            "  plugins [NAME]     list plugins, or one plugin's options\n"
            "  train CONFIG       consume the training topic, train, save and evaluate the model\n"
            "  predict CONFIG [--show] [--png DIR]\n"
            "                     classify records as they arrive\n"
            "  consume CONFIG TOPIC [--from-beginning] [--bounded] [--group G] [--idle-ms N]\n"
            "                     [--max N] [--format json|hex]\n"
            "                     read a topic back through the sink plugin's consumer\n"
            "\n"
            "options:\n"
            "  --log-level LEVEL  error|warn|info|debug|trace (also TRIBUTARY_LOG_LEVEL)\n"
            "  -h, --help         this text\n"
            "  -V, --version      print the version and plugin ABI\n"
            "\n"
            "Plugins are searched in the config's plugin_dir, $TRIBUTARY_PLUGIN_PATH and\n"
            "%s.\n",
            TRIB_PLUGIN_DIR);
}

int main(int argc, char **argv)
{
    malloc_tune();
    const char *env = getenv("TRIBUTARY_LOG_LEVEL");
    if (env && log_level_parse(env) >= 0)
        log_set_level(log_level_parse(env));
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "-V") || !strcmp(argv[i], "--version")) {
            printf("tributary %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, TRIB_ABI_MAJOR,
                   TRIB_ABI_MINOR);
            return 0;
        } else if (!strcmp(argv[i], "--log-level") && i + 1 < argc &&
                   log_level_parse(argv[i + 1]) >= 0) {
            log_set_level(log_level_parse(argv[++i]));
            setenv("TRIBUTARY_LOG_LEVEL", argv[i], 1);
        } else {
            fprintf(stderr, "tributary: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (!strcmp(cmd, "run"))
        return cmd_run(sub_argc, sub_argv);
    if (!strcmp(cmd, "check"))
        return cmd_check(sub_argc, sub_argv);
    if (!strcmp(cmd, "plugins"))
        return cmd_plugins(sub_argc, sub_argv);
    if (!strcmp(cmd, "train"))
        return cmd_train(sub_argc, sub_argv);
    if (!strcmp(cmd, "predict"))
        return cmd_predict(sub_argc, sub_argv);
    if (!strcmp(cmd, "consume"))
        return cmd_consume(sub_argc, sub_argv);
    if (!strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "tributary: unknown command '%s' (try --help)\n", cmd);
    return 2;
}
