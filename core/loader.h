/*
 * loader.h — finds plugin shared objects, dlopen()s them and checks their
 * descriptor (symbol present, ABI major, roles).
 */
#ifndef TRIB_LOADER_H
#define TRIB_LOADER_H

#include <stddef.h>
#include <tributary/plugin.h>

typedef struct plugin_lib {
    char *path;
    void *dl;
    const trib_plugin *desc;
} plugin_lib;

/** Extra directory searched first (config's plugin_dir); NULL for none. */
void loader_set_dir(const char *dir);
/**
 * Load plugin `name` (a plain name searched in the plugin path, or a path
 * containing '/').  Libraries stay loaded until exit.  `role` (TRIB_ROLE_*)
 * is checked when nonzero.  NULL with a message in err.
 */
const plugin_lib *loader_load(const char *name, unsigned role, char *err, size_t errlen);
/** Load a specific file (no search). */
const plugin_lib *loader_load_file(const char *path, char *err, size_t errlen);
/** Call fn for every loadable plugin found in the search path (first of each name). */
void loader_scan(void (*fn)(const plugin_lib *lib, void *arg),
                 void (*bad)(const char *path, const char *why, void *arg), void *arg);
/** Human-readable list of the roles in mask, e.g. "source, sink". */
const char *roles_str(unsigned mask, char *buf, size_t len);

#endif
