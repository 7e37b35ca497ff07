/* cache_state.c: saved expert-cache states (see cache_state.h). */
#include "cache_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace_formats.h"

#define STATE_MAGIC "# moesim cache state v1"

int moe_cache_state_load(const char *path, uint32_t L, uint32_t E, uint32_t **keys_out, size_t *n_out,
                         moe_error *err) {
    size_t len;
    char *text = moe_read_file(path, &len, err);
    if (!text) return -1;
    uint32_t *keys = NULL;
    size_t n = 0, cap = 0, line_no = 0;
    int have_geometry = 0, rc = -1;
    size_t n_keys = (size_t)L * E;
    uint8_t *dup = calloc(n_keys ? n_keys : 1, 1);
    if (!dup) { moe_fail(err, "out of memory"); goto out; }
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        line_no++;
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = 0;
        if (line_no == 1) {
            if (strcmp(line, STATE_MAGIC)) {
                moe_fail(err, "%s:1: not a moesim cache state (expected '%s')", path, STATE_MAGIC);
                goto out;
            }
            continue;
        }
        if (!ll || line[0] == '#') continue;
        unsigned long a, b;
        char extra;
        if (!have_geometry) {
            if (sscanf(line, "geometry %lu %lu %c", &a, &b, &extra) != 2) {
                moe_fail(err, "%s:%zu: expected 'geometry LAYERS EXPERTS'", path, line_no);
                goto out;
            }
            if (a != L || b != E) {
                moe_fail(err, "%s:%zu: state of %lu layers x %lu experts, the model has %u x %u", path, line_no, a,
                         b, L, E);
                goto out;
            }
            have_geometry = 1;
            continue;
        }
        if (sscanf(line, "%lu %lu %c", &a, &b, &extra) != 2 || strspn(line, "0123456789 \t") != ll) {
            moe_fail(err, "%s:%zu: expected 'LAYER EXPERT', got '%.40s'", path, line_no, line);
            goto out;
        }
        if (a >= L || b >= E) {
            moe_fail(err, "%s:%zu: layer %lu expert %lu is outside %u layers x %u experts", path, line_no, a, b, L, E);
            goto out;
        }
        uint32_t k = (uint32_t)(a * E + b);
        if (dup[k]) {
            moe_fail(err, "%s:%zu: layer %lu expert %lu listed twice", path, line_no, a, b);
            goto out;
        }
        dup[k] = 1;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            uint32_t *k2 = realloc(keys, cap * sizeof *k2);
            if (!k2) { moe_fail(err, "out of memory"); goto out; }
            keys = k2;
        }
        keys[n++] = k;
    }
    if (line_no == 0) {
        moe_fail(err, "%s: empty file, not a moesim cache state", path);
        goto out;
    }
    if (!have_geometry) {
        moe_fail(err, "%s: no 'geometry LAYERS EXPERTS' line", path);
        goto out;
    }
    rc = 0;
out:
    free(text);
    free(dup);
    if (rc) {
        free(keys);
        return -1;
    }
    *keys_out = keys;
    *n_out = n;
    return 0;
}

int moe_cache_state_save(const char *path, uint32_t L, uint32_t E, const uint32_t *keys, size_t n,
                         moe_error *err) {
    for (size_t i = 0; i < n; i++)
        if (keys[i] >= (uint64_t)L * E)
            return moe_fail(err, "%s: key %u is outside %u layers x %u experts", path, keys[i], L, E);
    moe_atomic_file af;
    if (moe_atomic_open(&af, path, err)) return -1;
    fprintf(af.f, "%s\ngeometry %u %u\n", STATE_MAGIC, L, E);
    for (size_t i = 0; i < n; i++) fprintf(af.f, "%u %u\n", keys[i] / E, keys[i] % E);
    return moe_atomic_commit(&af, err);
}

size_t moe_cache_state_order(const uint8_t *resident, const uint64_t *last_use, uint32_t n_keys, uint32_t *keys) {
    size_t n = 0;
    for (uint32_t k = 0; k < n_keys; k++)
        if (resident[k]) keys[n++] = k;
    /* insertion sort by (last_use, key): states hold at most a few thousand keys */
    for (size_t i = 1; i < n; i++) {
        uint32_t v = keys[i];
        size_t j = i;
        while (j && (last_use[keys[j - 1]] > last_use[v] || (last_use[keys[j - 1]] == last_use[v] && keys[j - 1] > v))) {
            keys[j] = keys[j - 1];
            j--;
        }
        keys[j] = v;
    }
    return n;
}
