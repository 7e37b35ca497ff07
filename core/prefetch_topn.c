/* topn: frequency. Counts, online, how often each (layer, expert) was in a
 * router set so far; at (step, layer l) predicts the n most frequent experts
 * of layer l+ahead (ties to the lower id; experts never seen are not
 * predicted). Parameters: n (default 2), ahead (default 1). */
#include <stdlib.h>

#include "prefetch.h"

static const moe_param topn_params[] = {
    {"n", MOE_PARAM_INT, "2", 1, 65535, "experts to predict", 0, 0, ""},
    {"ahead", MOE_PARAM_INT, "1", 1, 64, "layers ahead", 0, 0, ""},
};

typedef struct topn {
    uint32_t L, E, n, ahead;
    double *count; /* L * E */
} topn;

static void *topn_create(const moe_param *p, const moe_prefetch_env *env, moe_error *err) {
    topn *s = calloc(1, sizeof *s);
    if (!s || !(s->count = calloc((size_t)env->n_layers * env->n_experts, sizeof *s->count))) {
        free(s);
        return moe_fail(err, "out of memory"), NULL;
    }
    s->L = env->n_layers;
    s->E = env->n_experts;
    s->n = (uint32_t)p[0].i;
    s->ahead = (uint32_t)p[1].i;
    return s;
}

static void topn_observe(void *st, uint64_t step, uint32_t l, const uint16_t *set, const uint32_t *nt, uint32_t n) {
    topn *s = st;
    (void)step; (void)nt;
    for (uint32_t i = 0; i < n; i++) s->count[(size_t)l * s->E + set[i]] += 1;
}

static uint32_t topn_predict(void *st, uint64_t step, uint32_t l, uint32_t *target, uint16_t *out) {
    topn *s = st;
    (void)step;
    if (l + s->ahead >= s->L) return 0;
    *target = l + s->ahead;
    return moe_prefetch_top_n(s->count + (size_t)*target * s->E, s->E, s->n, out);
}

static void topn_destroy(void *st) {
    topn *s = st;
    free(s->count);
    free(s);
}

const moe_prefetch_ops moe_prefetch_topn = {
    .name = "topn",
    .summary = "the n most frequently routed experts of the next layer so far",
    .params = topn_params,
    .n_params = 2,
    .create = topn_create,
    .observe = topn_observe,
    .predict = topn_predict,
    .destroy = topn_destroy,
};
