/* oracle: perfect knowledge. At (step, layer l) it predicts exactly the
 * router's set of layer l+ahead of the same step (the union over the step's
 * tokens), read from the trace. The upper bound for any prefetcher of the
 * same distance. Parameters: ahead (default 1). */
#include <stdlib.h>
#include <string.h>

#include "prefetch.h"

static const moe_param oracle_params[] = {
    {"ahead", MOE_PARAM_INT, "1", 1, 64, "layers ahead", 0, 0, ""},
};

typedef struct oracle {
    const moe_trace *t;
    uint32_t ahead;
    uint8_t *mark;
} oracle;

static void *oracle_create(const moe_param *p, const moe_prefetch_env *env, moe_error *err) {
    oracle *o = calloc(1, sizeof *o);
    if (!o || !(o->mark = calloc(env->n_experts, 1))) {
        free(o);
        return moe_fail(err, "out of memory"), NULL;
    }
    o->t = env->trace;
    o->ahead = (uint32_t)p[0].i;
    return o;
}

static void oracle_observe(void *st, uint64_t s, uint32_t l, const uint16_t *set, const uint32_t *nt, uint32_t n) {
    (void)st; (void)s; (void)l; (void)set; (void)nt; (void)n;
}

static uint32_t oracle_predict(void *st, uint64_t s, uint32_t l, uint32_t *target, uint16_t *out) {
    oracle *o = st;
    const moe_trace *t = o->t;
    uint32_t lt = l + o->ahead;
    if (lt >= t->n_layers) return 0;
    *target = lt;
    for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++) {
        size_t r = moe_trace_rec(t, tok, lt);
        for (uint32_t k = 0; k < t->top_k && t->experts[r + k] != MOE_NO_EXPERT; k++) o->mark[t->experts[r + k]] = 1;
    }
    uint32_t m = 0;
    for (uint32_t e = 0; e < t->n_experts; e++)
        if (o->mark[e]) {
            out[m++] = (uint16_t)e;
            o->mark[e] = 0;
        }
    return m;
}

static void oracle_destroy(void *st) {
    oracle *o = st;
    free(o->mark);
    free(o);
}

const moe_prefetch_ops moe_prefetch_oracle = {
    .name = "oracle",
    .summary = "perfect knowledge of the next layer's set (upper bound)",
    .params = oracle_params,
    .n_params = 1,
    .create = oracle_create,
    .observe = oracle_observe,
    .predict = oracle_predict,
    .destroy = oracle_destroy,
};
