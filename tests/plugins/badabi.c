/* badabi.c — test-only plugin claiming a future ABI major: must be refused. */
#include <tributary/plugin.h>

static int bad_create(trib_ctx *c, const trib_host *h, const trib_opts *o, void **i, char *e,
                      size_t l)
{
    (void)c, (void)h, (void)o, (void)i, (void)e, (void)l;
    return TRIB_ERR;
}

TRIB_EXPORT const trib_plugin tributary_plugin = {
    TRIB_ABI_MAJOR + 98, 0, "badabi", "9.9", "built for another ABI", TRIB_ROLE_SINK,
    NULL, bad_create, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
};
