/*
 * fuzz_config.c — libFuzzer target: the YAML config loader and option
 * validation must reject any input with a message, never crash or leak.
 */
#include "cfg.h"
#include "options.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const trib_option table[] = {
    {"url", TRIB_OPT_STRING, NULL, 0, NULL, "", 0},
    {"n", TRIB_OPT_INT, "1", 0, NULL, "", 0},
    {"d", TRIB_OPT_DOUBLE, NULL, 0, NULL, "", 0},
    {"b", TRIB_OPT_BOOL, NULL, 0, NULL, "", 0},
    {"e", TRIB_OPT_ENUM, "a", 0, "a|b", "", 0},
    {"l", TRIB_OPT_LIST, NULL, 0, NULL, "", 0},
    {"m", TRIB_OPT_MAP, NULL, 0, NULL, "", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512];
    config *c = config_parse("fuzz.yaml", (const char *)data, size, err, sizeof err);
    if (!c)
        return 0;
    for (size_t i = 0; i < c->root->n; i++) {
        const cnode *sec = c->root->items[i];
        if (sec->type != CN_MAP)
            continue;
        trib_opts *o = opts_build(table, sec, NULL, "fuzz", err, sizeof err);
        opts_free(o);
    }
    config_free(c);
    return 0;
}
