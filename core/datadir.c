/* datadir.c: look-up of data files (order in datadir.h). MOESIM_DATADIR is
 * PREFIX/share/moesim, set by the Makefile. Nothing is cached: a look-up is
 * a readlink and a few access() calls, and workers of a sweep may call it
 * from several threads at once. */
#include "datadir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef MOESIM_DATADIR
#define MOESIM_DATADIR "/usr/local/share/moesim"
#endif

#define MAX_ROOTS MOE_DATA_DIRS_MAX
#define ROOT_CAP MOE_DATA_DIR_CAP

/* Drop the last path component of p in place ("/a/b/c" -> "/a/b", "/a" -> "/"). */
static void up(char *p) {
    char *s = strrchr(p, '/');
    if (!s) strcpy(p, ".");
    else if (s == p) p[1] = 0;
    else *s = 0;
}

static int exists(const char *dir, const char *rel, char *buf, size_t cap) {
    int n = snprintf(buf, cap, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", rel);
    return n > 0 && (size_t)n < cap && access(buf, F_OK) == 0;
}

size_t moe_data_dirs(char out[MAX_ROOTS][ROOT_CAP]) {
    size_t n = 0;
    char exe[ROOT_CAP], probe[ROOT_CAP + 64];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        up(exe); /* the binary's folder: PREFIX/bin or CHECKOUT/build */
        up(exe); /* its parent */
        if (snprintf(out[n], ROOT_CAP, "%s%sshare/moesim", exe, strcmp(exe, "/") ? "/" : "") < ROOT_CAP &&
            access(out[n], F_OK) == 0)
            n++;
        /* a checkout is recognised by a data file, so that /usr/local/plots
         * or the like is never taken for ours */
        if (exists(exe, "experiments/devices.ini", probe, sizeof probe)) snprintf(out[n++], ROOT_CAP, "%s", exe);
    }
    const char *fixed[2] = {MOESIM_DATADIR, getenv("MOESIM_DATA")};
    for (int i = 0; i < 2; i++) {
        if (!fixed[i] || !*fixed[i] || access(fixed[i], F_OK)) continue;
        int dup = 0;
        for (size_t k = 0; k < n; k++) dup |= !strcmp(out[k], fixed[i]);
        if (!dup && strlen(fixed[i]) < ROOT_CAP) snprintf(out[n++], ROOT_CAP, "%s", fixed[i]);
    }
    return n;
}

const char *moe_data_path(const char *rel, char *buf, size_t cap) {
    if (!rel || !*rel || rel[0] == '/' || access(rel, F_OK) == 0) return rel;
    char r[MAX_ROOTS][ROOT_CAP];
    size_t n = moe_data_dirs(r);
    for (size_t i = 0; i < n; i++)
        if (exists(r[i], rel, buf, cap)) return buf;
    return rel;
}

void moe_data_dirs_text(char *buf, size_t cap) {
    char r[MAX_ROOTS][ROOT_CAP];
    size_t n = moe_data_dirs(r), used = 0;
    if (cap) buf[0] = 0;
    for (size_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(buf + used, cap - used, "%s%s", i ? ", " : "", r[i]);
        if (w < 0) break;
        used += (size_t)w;
    }
    if (n == 0) snprintf(buf, cap, "nowhere else (no data folder: set MOESIM_DATA)");
}

int moe_data_glob(const char *pattern, glob_t *g) {
    memset(g, 0, sizeof *g);
    int rc = glob(pattern, 0, NULL, g);
    if (rc != GLOB_NOMATCH || pattern[0] == '/') return rc;
    char r[MAX_ROOTS][ROOT_CAP], full[ROOT_CAP + 1024];
    size_t n = moe_data_dirs(r);
    for (size_t i = 0; i < n && rc == GLOB_NOMATCH; i++) {
        if (snprintf(full, sizeof full, "%s/%s", r[i], pattern) >= (int)sizeof full) continue;
        globfree(g);
        memset(g, 0, sizeof *g);
        rc = glob(full, 0, NULL, g);
    }
    return rc;
}
