/*
 * loader.c — plugin discovery and loading.
 *
 * Search order for `plugin: NAME`: the config's plugin_dir, then each entry of
 * $TRIBUTARY_PLUGIN_PATH (colon-separated), then the install dir.  In each
 * directory NAME.so, .libs/NAME.so, NAME/NAME.so and NAME/.libs/NAME.so are
 * tried, so an in-tree build works without installing.
 */
#include "loader.h"
#include "util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TRIB_PLUGIN_DIR
#define TRIB_PLUGIN_DIR "/usr/local/lib/tributary"
#endif

static char *g_dir;               /* start-up configuration */
static plugin_lib **g_libs;       /* loaded libraries, kept until exit */
static size_t g_nlibs;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

void loader_set_dir(const char *dir)
{
    free(g_dir);
    g_dir = dir ? xstrdup(dir) : NULL;
}

const char *roles_str(unsigned mask, char *buf, size_t len)
{
    static const char *const names[] = {"source", "transform", "sink", "consumer", "trainer"};
    buf[0] = '\0';
    for (int i = 0; i < 5; i++) {
        if (!(mask & (1u << i)))
            continue;
        if (buf[0])
            strncat(buf, ", ", len - strlen(buf) - 1);
        strncat(buf, names[i], len - strlen(buf) - 1);
    }
    if (!buf[0])
        snprintf(buf, len, "none");
    return buf;
}

/* Build the list of directories to search (malloc'd strings, NULL-terminated). */
static char **search_dirs(void)
{
    char **dirs = xcalloc(64, sizeof *dirs);
    size_t n = 0;
    if (g_dir)
        dirs[n++] = xstrdup(g_dir);
    const char *env = getenv("TRIBUTARY_PLUGIN_PATH");
    for (const char *p = env; p && *p && n < 62;) {
        const char *c = strchr(p, ':');
        size_t l = c ? (size_t)(c - p) : strlen(p);
        if (l)
            dirs[n++] = xstrndup(p, l);
        if (!c)
            break;
        p = c + 1;
    }
    dirs[n++] = xstrdup(TRIB_PLUGIN_DIR);
    return dirs;
}

static void free_dirs(char **dirs)
{
    for (char **d = dirs; *d; d++)
        free(*d);
    free(dirs);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Look for NAME's shared object; malloc'd path or NULL. */
static char *find_plugin(const char *name, strbuf *tried)
{
    static const char *const pats[] = {"%s/%s.so", "%s/.libs/%s.so", "%s/%s/%s.so",
                                       "%s/%s/.libs/%s.so"};
    char **dirs = search_dirs();
    char *found = NULL;
    for (char **d = dirs; *d && !found; d++) {
        for (int i = 0; i < 4 && !found; i++) {
            char path[4096];
            if (i < 2)
                snprintf(path, sizeof path, pats[i], *d, name);
            else
                snprintf(path, sizeof path, pats[i], *d, name, name);
            if (is_file(path))
                found = xstrdup(path);
        }
        if (tried->len)
            sb_puts(tried, ":");
        sb_puts(tried, *d);
    }
    free_dirs(dirs);
    return found;
}

const plugin_lib *loader_load_file(const char *path, char *err, size_t errlen)
{
    pthread_mutex_lock(&g_lock);
    for (size_t i = 0; i < g_nlibs; i++)
        if (strcmp(g_libs[i]->path, path) == 0) {
            pthread_mutex_unlock(&g_lock);
            return g_libs[i];
        }
    pthread_mutex_unlock(&g_lock);
    if (access(path, R_OK) != 0) {
        set_err(err, errlen, "%s: cannot read plugin: %s", path, strerror(errno));
        return NULL;
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *e = dlerror();
        set_err(err, errlen, "%s: cannot load plugin: %s", path, e ? e : "dlopen failed");
        return NULL;
    }
    dlerror();
    const trib_plugin *desc = dlsym(dl, TRIB_PLUGIN_SYMBOL);
    if (!desc) {
        set_err(err, errlen,
                "%s: not a Tributary plugin (no '%s' symbol; build it against "
                "<tributary/plugin.h> and export a const trib_plugin)",
                path, TRIB_PLUGIN_SYMBOL);
        dlclose(dl);
        return NULL;
    }
    if (desc->abi_major != TRIB_ABI_MAJOR) {
        set_err(err, errlen,
                "%s: plugin '%s' was built for plugin ABI %u.%u but this tributary "
                "provides ABI %d.%d; rebuild the plugin against the installed "
                "<tributary/plugin.h>",
                path, desc->name ? desc->name : "?", desc->abi_major, desc->abi_minor,
                TRIB_ABI_MAJOR, TRIB_ABI_MINOR);
        dlclose(dl);
        return NULL;
    }
    if (!desc->name || !desc->create) {
        set_err(err, errlen, "%s: plugin descriptor lacks a name or a create callback", path);
        dlclose(dl);
        return NULL;
    }
    plugin_lib *lib = xcalloc(1, sizeof *lib);
    lib->path = xstrdup(path);
    lib->dl = dl;
    lib->desc = desc;
    pthread_mutex_lock(&g_lock);
    g_libs = xrealloc(g_libs, (g_nlibs + 1) * sizeof *g_libs);
    g_libs[g_nlibs++] = lib;
    pthread_mutex_unlock(&g_lock);
    return lib;
}

static int role_ops_present(const trib_plugin *d, unsigned role)
{
    switch (role) {
    case TRIB_ROLE_SOURCE: return d->source && d->source->run;
    case TRIB_ROLE_TRANSFORM: return d->transform && d->transform->apply;
    case TRIB_ROLE_SINK: return d->sink && d->sink->send;
    case TRIB_ROLE_CONSUMER: return d->consumer && d->consumer->open && d->consumer->poll;
    case TRIB_ROLE_TRAINER: return d->trainer && d->trainer->train;
    }
    return 1;
}

const plugin_lib *loader_load(const char *name, unsigned role, char *err, size_t errlen)
{
    char *path;
    if (strchr(name, '/')) {
        path = xstrdup(name);
    } else {
        strbuf tried;
        sb_init(&tried);
        path = find_plugin(name, &tried);
        if (!path) {
            set_err(err, errlen,
                    "plugin '%s' not found (looked for %s.so in %s; set plugin_dir or "
                    "TRIBUTARY_PLUGIN_PATH)",
                    name, name, tried.data ? tried.data : "");
            sb_free(&tried);
            return NULL;
        }
        sb_free(&tried);
    }
    const plugin_lib *lib = loader_load_file(path, err, errlen);
    free(path);
    if (!lib)
        return NULL;
    if (role && (!(lib->desc->roles & role) || !role_ops_present(lib->desc, role))) {
        char want[64], has[128];
        roles_str(role, want, sizeof want);
        roles_str(lib->desc->roles, has, sizeof has);
        set_err(err, errlen, "plugin '%s' (%s) cannot be used as a %s: it provides %s",
                lib->desc->name, lib->path, want, has);
        return NULL;
    }
    return lib;
}

void loader_scan(void (*fn)(const plugin_lib *lib, void *arg),
                 void (*bad)(const char *path, const char *why, void *arg), void *arg)
{
    char **dirs = search_dirs();
    char **seen = NULL;
    size_t nseen = 0;
    for (char **d = dirs; *d; d++) {
        /* the directory itself, .libs, and one level of sub-folders */
        char *cands[2048];
        size_t nc = 0;
        DIR *dh = opendir(*d);
        if (!dh)
            continue;
        struct dirent *de;
        while ((de = readdir(dh)) && nc < 2040) {
            if (de->d_name[0] == '.' && strcmp(de->d_name, ".libs") != 0)
                continue;
            size_t l = strlen(de->d_name);
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", *d, de->d_name);
            if (l > 3 && strcmp(de->d_name + l - 3, ".so") == 0) {
                cands[nc++] = xstrdup(p);
                continue;
            }
            struct stat st;
            if (stat(p, &st) || !S_ISDIR(st.st_mode))
                continue;
            char q[4200];
            snprintf(q, sizeof q, "%s/%s.so", p, de->d_name);
            if (is_file(q))
                cands[nc++] = xstrdup(q);
            snprintf(q, sizeof q, "%s/.libs/%s.so", p, de->d_name);
            if (is_file(q))
                cands[nc++] = xstrdup(q);
            if (strcmp(de->d_name, ".libs") == 0) {
                DIR *sub = opendir(p);
                struct dirent *se;
                while (sub && (se = readdir(sub)) && nc < 2040) {
                    size_t sl = strlen(se->d_name);
                    if (sl > 3 && strcmp(se->d_name + sl - 3, ".so") == 0) {
                        snprintf(q, sizeof q, "%s/%s", p, se->d_name);
                        cands[nc++] = xstrdup(q);
                    }
                }
                if (sub)
                    closedir(sub);
            }
        }
        closedir(dh);
        for (size_t i = 0; i < nc; i++) {
            char err[512];
            const plugin_lib *lib = loader_load_file(cands[i], err, sizeof err);
            if (!lib) {
                if (bad)
                    bad(cands[i], err, arg);
            } else {
                int dup = 0;
                for (size_t j = 0; j < nseen; j++)
                    if (strcmp(seen[j], lib->desc->name) == 0)
                        dup = 1;
                if (!dup) {
                    seen = xrealloc(seen, (nseen + 1) * sizeof *seen);
                    seen[nseen++] = xstrdup(lib->desc->name);
                    fn(lib, arg);
                }
            }
            free(cands[i]);
        }
    }
    for (size_t j = 0; j < nseen; j++)
        free(seen[j]);
    free(seen);
    free_dirs(dirs);
}
