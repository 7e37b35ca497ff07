/* moe-infinity: MoE-Infinity's eviction, the resident expert with the fewest
 * in-cache visits.
 *
 * Source: MoE-Infinity (Xue et al., arXiv 2401.14361) and its released code
 * (EfficientMoE/MoE-Infinity): every expert node keeps incache_visit_count,
 * incremented when the expert is executed while it is already on the GPU (a
 * hit; the access that loads it on a miss does not count), and zeroed for all
 * experts between requests (ClearExpertCacheCounts); the victim is the cached
 * expert with the smallest count. Rule implemented here:
 *   visits[k] = hits of k since the later of (its last insertion, the start
 *               of the current sequence when clear=1); an insertion sets 0.
 *   victim    = the unprotected resident with the fewest visits; ties go to
 *               the least recently used (the policy's own access clock, so
 *               the tie-break is unique). Upstream breaks ties by its cache
 *               iteration order; recency is our stated substitute.
 * A sequence starts at a step whose first token's sequence id differs from
 * the previous step's (as cold_per_seq counts it), seen through on_step and
 * the trace in the policy env; without a trace (env.trace NULL) counts are
 * never cleared. The paper's request-level activation matrix (EAM) drives
 * its prefetcher (`history`), not this eviction count.
 * Parameters: clear (1 = zero every count at each new sequence, as upstream
 * does per request; 0 = count since insertion only; default 1).
 * Cost: O(residents) per eviction (a scan). */
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../params.h"
#include "util.h"

typedef struct mi {
    moe_kset res;
    uint64_t *visits, *last; /* n_keys each */
    uint64_t clock;
    int clear;
    const moe_trace *trace;
} mi;

static void mi_destroy(void *st) {
    mi *s = st;
    moe_kset_free(&s->res);
    free(s->visits);
    free(s->last);
    free(s);
}

/* Parameters (defaults, ranges): create parses a copy; `moesim policies` lists them. */
static const moe_param mi_params[] = {
    {.key = "clear", .type = MOE_PARAM_INT, .default_value = "1", .min = 0, .max = 1,
     .help = "zero every visit count at each new sequence (request)"},
};

static void *mi_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                       moe_error *err) {
    moe_param p[sizeof mi_params / sizeof *mi_params];
    memcpy(p, mi_params, sizeof p);
    if (moe_params_parse("moe-infinity", args, p, sizeof p / sizeof *p, canonical, cap, err)) return NULL;
    mi *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "moe-infinity: out of memory"), NULL;
    size_t n = env->n_keys ? env->n_keys : 1;
    int bad = moe_kset_init(&s->res, env->n_keys);
    s->visits = calloc(n, sizeof *s->visits);
    s->last = calloc(n, sizeof *s->last);
    if (bad || !s->visits || !s->last) {
        mi_destroy(s);
        return moe_fail(err, "moe-infinity: out of memory"), NULL;
    }
    s->clear = (int)p[0].i;
    s->trace = env->trace;
    return s;
}

static void mi_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    mi *s = st;
    s->visits[key]++;
    s->last[key] = ++s->clock;
}

static void mi_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    mi *s = st;
    s->visits[key] = 0;
    s->last[key] = ++s->clock;
    moe_kset_add(&s->res, key);
}

static void mi_on_step(void *st, uint64_t step) {
    mi *s = st;
    const moe_trace *t = s->trace;
    if (!s->clear || !t || step == 0 || step >= t->n_steps) return;
    if (t->token_seq[t->step_first_token[step]] == t->token_seq[t->step_first_token[step - 1]]) return;
    for (uint32_t i = 0; i < s->res.n; i++) s->visits[s->res.keys[i]] = 0;
}

static int64_t mi_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    const mi *s = st;
    int64_t best = -1;
    for (uint32_t i = 0; i < s->res.n; i++) {
        uint32_t k = s->res.keys[i];
        if (moe_cache_protected(c, k)) continue;
        if (best < 0 || s->visits[k] < s->visits[best] ||
            (s->visits[k] == s->visits[best] && s->last[k] < s->last[best]))
            best = k;
    }
    return best;
}

static void mi_on_evict(void *st, uint32_t key) { moe_kset_remove(&((mi *)st)->res, key); }

const moe_policy_ops moe_policy_moe_infinity = {
    .name = "moe-infinity",
    .params = mi_params,
    .n_params = sizeof mi_params / sizeof *mi_params,
    .flags = MOE_POLICY_NEEDS_ROUTING,
    .summary = "MoE-Infinity: fewest in-cache visits (hits since insertion / sequence start), ties LRU",
    .description =
        "Evict the expert with the fewest in-cache visits: hits since its insertion, and since "
        "the start of the current sequence with clear=1 (MoE-Infinity zeroes its counts between "
        "requests); ties to the least recently used. With clear=0 it ranks exactly like lfu.",
    .reference =
        "Xue et al., MoE-Infinity, arXiv 2401.14361, and its released code (incache_visit_count)",
    .create = mi_create,
    .on_hit = mi_on_hit,
    .on_insert = mi_on_insert,
    .choose_victim = mi_choose_victim,
    .on_evict = mi_on_evict,
    .on_step = mi_on_step,
    .destroy = mi_destroy,
};
