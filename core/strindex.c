/* strindex.c: see strindex.h. */
#include "strindex.h"

#include <stdlib.h>
#include <string.h>

static uint64_t str_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static void put(moe_strindex *x, char *const *strs, size_t i) {
    size_t m = x->cap - 1, j = (size_t)str_hash(strs[i]) & m;
    while (x->slot[j]) j = (j + 1) & m;
    x->slot[j] = i + 1;
}

int64_t moe_strindex_find(const moe_strindex *x, char *const *strs, const char *s) {
    if (!x->cap) return -1;
    size_t m = x->cap - 1;
    for (size_t j = (size_t)str_hash(s) & m; x->slot[j]; j = (j + 1) & m)
        if (!strcmp(strs[x->slot[j] - 1], s)) return (int64_t)(x->slot[j] - 1);
    return -1;
}

int moe_strindex_add(moe_strindex *x, char *const *strs, size_t i) {
    if (2 * (x->n + 1) > x->cap) { /* grow and re-index positions [0, n) */
        size_t cap = x->cap ? 2 * x->cap : 64;
        size_t *slot = calloc(cap, sizeof *slot);
        if (!slot) return -1;
        free(x->slot);
        x->slot = slot, x->cap = cap;
        for (size_t k = 0; k < x->n; k++) put(x, strs, k);
    }
    put(x, strs, i);
    x->n++;
    return 0;
}

void moe_strindex_free(moe_strindex *x) {
    free(x->slot);
    memset(x, 0, sizeof *x);
}
