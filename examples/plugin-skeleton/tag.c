/*
 * tag.c — an example out-of-tree Tributary transform, built against the
 * installed <tributary/plugin.h> only.
 *
 * It adds a header to every record and drops records whose column `field`
 * equals `drop_value`:
 *
 *   transforms:
 *     - plugin: /path/to/tag.so
 *       header: team          # header name   (default "tag")
 *       value: ml             # header value  (required)
 *       field: labels         # optional: column to test
 *       drop_value: "9"       # optional: drop rows whose `field` has this text
 *
 * Build:  make            (see Makefile: pkg-config --cflags tributary)
 */
#include <tributary/plugin.h>

#include <stdlib.h>
#include <string.h>

/* One instance's state: options are read once in create(). */
typedef struct tag {
    trib_ctx *ctx;
    const trib_host *h;
    const char *header, *value, *field, *drop_value;
} tag;

/* The option table: the core validates configs against it, gives typed
   values through h->opt_*, and prints it for `tributary plugins tag`. */
static const trib_option tag_options[] = {
    {"header", TRIB_OPT_STRING, "tag", 0, NULL, "name of the header to add", 0},
    {"value", TRIB_OPT_STRING, NULL, 1, NULL, "value of the header", 0},
    {"field", TRIB_OPT_STRING, NULL, 0, NULL, "column tested by drop_value", 0},
    {"drop_value", TRIB_OPT_STRING, NULL, 0, NULL, "drop rows whose field has this text value", 0},
    {NULL, 0, NULL, 0, NULL, NULL, 0}};

static int tag_create(trib_ctx *ctx, const trib_host *h, const trib_opts *o, void **inst,
                      char *err, size_t errlen)
{
    tag *t = calloc(1, sizeof *t);
    if (!t)
        return TRIB_ERR;
    t->ctx = ctx;
    t->h = h;
    t->header = h->opt_str(o, "header");
    t->value = h->opt_str(o, "value");
    t->field = h->opt_str(o, "field");
    t->drop_value = h->opt_str(o, "drop_value");
    if (!t->field != !t->drop_value) {
        strncpy(err, "field and drop_value go together", errlen - 1);
        err[errlen - 1] = '\0';
        free(t);
        return TRIB_ERR;
    }
    *inst = t;
    return TRIB_OK;
}

static void tag_destroy(void *inst)
{
    free(inst);
}

static int tag_apply(void *inst, trib_record **rec)
{
    tag *t = inst;
    trib_record *r = *rec;
    if (t->field && r->has_after) {
        trib_field *f = t->h->field_get(&r->after, t->field);
        if (f && f->kind == TRIB_VAL_TEXT && strcmp(f->data, t->drop_value) == 0) {
            t->h->metric_add(t->ctx, "dropped", 1);
            t->h->record_free(r); /* dropping: free it and say so */
            *rec = NULL;
            return TRIB_OK;
        }
    }
    return t->h->header_add(r, t->header, t->value, strlen(t->value));
}

static const trib_transform_ops tag_transform = {tag_apply};

/* The one exported symbol. */
TRIB_EXPORT const trib_plugin tributary_plugin = {
    .abi_major = TRIB_ABI_MAJOR,
    .abi_minor = TRIB_ABI_MINOR,
    .name = "tag",
    .version = "1.0.0",
    .description = "add a header; optionally drop rows whose column has a value",
    .roles = TRIB_ROLE_TRANSFORM,
    .options = tag_options,
    .create = tag_create,
    .destroy = tag_destroy,
    .transform = &tag_transform,
};
