/* prefetch.c: prefetcher registry, creation from a spec, shared helpers. */
#include "prefetch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sort_small.h"

#define PREFETCH(n) extern const moe_prefetch_ops moe_prefetch_##n;
#include "prefetch_registry.def"
#undef PREFETCH

static const moe_prefetch_ops *const registry[] = {
#define PREFETCH(n) &moe_prefetch_##n,
#include "prefetch_registry.def"
#undef PREFETCH
    NULL,
};

const moe_prefetch_ops *const *moe_prefetch_list(void) { return registry; }

const moe_prefetch_ops *moe_prefetch_find(const char *name) {
    for (const moe_prefetch_ops *const *p = registry; *p; p++)
        if (!strcmp((*p)->name, name)) return *p;
    return NULL;
}

/* Look up the ops and parse the parameters into `params`. */
static const moe_prefetch_ops *parse(const char *spec, moe_param *params, char *canonical, size_t cap,
                                     moe_error *err) {
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!len || len >= sizeof name) return moe_fail(err, "bad prefetcher name '%s'", spec), NULL;
    memcpy(name, spec, len);
    name[len] = 0;
    const moe_prefetch_ops *ops = moe_prefetch_find(name);
    if (!ops) {
        char known[256] = "";
        for (const moe_prefetch_ops *const *p = registry; *p; p++) {
            if (p != registry) strncat(known, ", ", sizeof known - strlen(known) - 1);
            strncat(known, (*p)->name, sizeof known - strlen(known) - 1);
        }
        return moe_fail(err, "unknown prefetcher '%s' (known: %s)", name, known), NULL;
    }
    if (ops->n_params) memcpy(params, ops->params, ops->n_params * sizeof *params);
    if (moe_params_parse(ops->name, colon ? colon + 1 : "", params, ops->n_params, canonical, cap, err))
        return NULL;
    return ops;
}

int moe_prefetch_canonical(const char *spec, char *canonical, size_t cap, moe_error *err) {
    moe_param params[MOE_PREFETCH_MAX_PARAMS];
    return parse(spec, params, canonical, cap, err) ? 0 : -1;
}

static uint32_t ahead_of(const moe_prefetch_ops *ops, const moe_param *params) {
    const moe_param *a = moe_params_get(params, ops->n_params, "ahead");
    if (!a) a = moe_params_get(params, ops->n_params, "hops");
    return a ? (uint32_t)a->i : 0;
}

int moe_prefetch_ahead(const char *spec, uint32_t *ahead, moe_error *err) {
    moe_param params[MOE_PREFETCH_MAX_PARAMS];
    char canonical[256];
    const moe_prefetch_ops *ops = parse(spec, params, canonical, sizeof canonical, err);
    if (!ops) return -1;
    *ahead = ahead_of(ops, params);
    return 0;
}

moe_prefetcher *moe_prefetcher_new(const char *spec, const moe_prefetch_env *env, moe_error *err) {
    moe_param params[MOE_PREFETCH_MAX_PARAMS];
    moe_prefetcher *p = calloc(1, sizeof *p);
    if (!p) return moe_fail(err, "out of memory"), NULL;
    if (!(p->ops = parse(spec, params, p->canonical, sizeof p->canonical, err))) {
        free(p);
        return NULL;
    }
    p->ahead = ahead_of(p->ops, params);
    if (!(p->st = p->ops->create(params, env, err))) {
        moe_fail_prefix(err, "%s", p->ops->name);
        free(p);
        return NULL;
    }
    return p;
}

void moe_prefetcher_free(moe_prefetcher *p) {
    if (!p) return;
    if (p->st) p->ops->destroy(p->st);
    free(p);
}

uint32_t moe_prefetch_top_n(const double *score, uint32_t n_experts, uint32_t n, uint16_t *out) {
    /* Selection by repeated scans: n is small (a few experts per layer). */
    uint32_t m = 0;
    for (uint32_t r = 0; r < n; r++) {
        int64_t best = -1;
        for (uint32_t e = 0; e < n_experts; e++) {
            if (!(score[e] > 0)) continue;
            int taken = 0;
            for (uint32_t j = 0; j < m && !taken; j++) taken = out[j] == e;
            if (taken) continue;
            if (best < 0 || score[e] > score[best]) best = e;
        }
        if (best < 0) break;
        out[m++] = (uint16_t)best;
    }
    moe_sort_u16(out, m);
    return m;
}
