/*
 * bench/nn_bench.c — trains the trainer plugin's network (plugins/trainer/nn*.c)
 * directly on IDX files, for bench/train_bench.sh and for measuring the two
 * dense-algebra backends against each other.
 *
 * Usage: nn_bench DATADIR [--epochs N] [--hidden N] [--batch N] [--seed N]
 *                         [--backend own|blas] [--blas-threads N] [--limit N]
 * DATADIR holds uncompressed train-/t10k- images-idx3-ubyte and labels-idx1-ubyte.
 * The last line is machine-readable: RESULT sec_per_epoch=S best_epoch=B accuracy=A
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "nn_data.h"

typedef struct bench_args {
    const char *dir;
    int epochs, hidden, batch, blas_threads;
    unsigned long long seed;
    size_t limit;
    nn_backend backend;
} bench_args;

static int parse_args(int argc, char **argv, bench_args *a)
{
    *a = (bench_args){NULL, 5, 128, 32, 1, 1, 0, NN_BACKEND_AUTO};
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--epochs") && v)
            a->epochs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && v)
            a->hidden = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && v)
            a->batch = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--seed") && v)
            a->seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--limit") && v)
            a->limit = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--blas-threads") && v)
            a->blas_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--backend") && v && nn_backend_parse(v) >= 0)
            a->backend = (nn_backend)nn_backend_parse(argv[++i]);
        else if (argv[i][0] != '-' && !a->dir)
            a->dir = argv[i];
        else
            return -1;
    }
    return a->dir && a->epochs > 0 && a->hidden > 0 && a->batch > 0 ? 0 : -1;
}

static int load(nn_data *d, const char *dir, const char *stem, size_t limit)
{
    char im[4096], lb[4096], err[512];
    snprintf(im, sizeof im, "%s/%s-images-idx3-ubyte", dir, stem);
    snprintf(lb, sizeof lb, "%s/%s-labels-idx1-ubyte", dir, stem);
    if (nn_data_load_idx(d, im, lb, limit, err, sizeof err) != 0) {
        fprintf(stderr, "nn_bench: %s\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    bench_args a;
    if (parse_args(argc, argv, &a) != 0) {
        fprintf(stderr, "usage: nn_bench DATADIR [--epochs N] [--hidden N] [--batch N] "
                        "[--seed N] [--backend own|blas] [--blas-threads N] [--limit N]\n");
        return 2;
    }
    nn_blas_threads(a.blas_threads);
    nn_data tr, te;
    nn_data_init(&tr, 784);
    nn_data_init(&te, 784);
    if (load(&tr, a.dir, "train", a.limit) || load(&te, a.dir, "t10k", 0))
        return 1;
    nn_net net;
    nn_work w;
    nn_rng rng;
    nn_hparams hp;
    nn_hparams_default(&hp);
    nn_rng_seed(&rng, a.seed);
    if (nn_net_init(&net, 784, a.hidden, 10) || nn_work_init(&w, &net, a.batch, &hp, a.backend)) {
        fprintf(stderr, "nn_bench: out of memory\n");
        return 1;
    }
    nn_net_glorot(&net, &rng);
    double total = 0, best = 1e30;
    for (int e = 0; e < a.epochs; e++) {
        nn_epoch_stats st;
        nn_fit_epoch(&w, &tr, &rng, NULL, NULL, &st);
        total += st.seconds;
        best = st.seconds < best ? st.seconds : best;
        printf("ours (%s) epoch %d: %.3fs loss %.4f accuracy %.4f\n", w.k->name, e + 1,
               st.seconds, st.loss_sum / st.count, (double)st.correct / st.count);
        fflush(stdout);
    }
    nn_epoch_stats ev;
    nn_evaluate(&w, &te, NULL, &ev);
    printf("ours test accuracy %.4f loss %.4f\n", (double)ev.correct / ev.count,
           ev.loss_sum / ev.count);
    printf("RESULT sec_per_epoch=%.4f best_epoch=%.4f accuracy=%.4f\n", total / a.epochs, best,
           (double)ev.correct / ev.count);
    nn_work_free(&w);
    nn_net_free(&net);
    nn_data_free(&tr);
    nn_data_free(&te);
    return 0;
}
