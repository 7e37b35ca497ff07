/* transition: cross-layer co-occurrence (N-hop transition table) learned
 * online. C[l][a][b] counts the steps in which expert a was in layer l's set
 * and b in layer l+hops's set. At (step, l) the score of b is the sum of
 * C[l][a][b] over a in the current set of layer l; the n best with a
 * positive score are predicted for layer l+hops. The table is updated when
 * layer l+hops of a step is observed, so a step never learns from itself
 * before it predicts. Parameters: hops (default 1), n (0 = top_k). */
#include <stdlib.h>
#include <string.h>

#include "prefetch.h"

static const moe_param transition_params[] = {
    {"hops", MOE_PARAM_INT, "1", 1, 64, "layer distance", 0, 0, ""},
    {"n", MOE_PARAM_INT, "0", 0, 65535, "experts to predict (0 = top_k)", 0, 0, ""},
};

typedef struct transition {
    uint32_t L, E, hops, n;
    uint32_t *table;   /* (L - hops) * E * E */
    uint16_t *sets;    /* L * E: the current step's set of each layer */
    uint32_t *n_set;   /* L */
    double *score;     /* E */
} transition;

static void *transition_create(const moe_param *p, const moe_prefetch_env *env, moe_error *err) {
    transition *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "out of memory"), NULL;
    s->L = env->n_layers;
    s->E = env->n_experts;
    s->hops = (uint32_t)p[0].i;
    s->n = p[1].i ? (uint32_t)p[1].i : env->top_k;
    size_t rows = s->L > s->hops ? s->L - s->hops : 0;
    s->table = calloc(rows * s->E * s->E + 1, sizeof *s->table);
    s->sets = malloc((size_t)s->L * s->E * sizeof *s->sets);
    s->n_set = calloc(s->L, sizeof *s->n_set);
    s->score = malloc(s->E * sizeof *s->score);
    if (!s->table || !s->sets || !s->n_set || !s->score) {
        free(s->table); free(s->sets); free(s->n_set); free(s->score); free(s);
        return moe_fail(err, "out of memory (table of %zu x %u x %u)", rows, env->n_experts, env->n_experts), NULL;
    }
    return s;
}

static void transition_observe(void *st, uint64_t step, uint32_t l, const uint16_t *set, const uint32_t *nt,
                               uint32_t n) {
    transition *s = st;
    (void)step; (void)nt;
    memcpy(s->sets + (size_t)l * s->E, set, n * sizeof *set);
    s->n_set[l] = n;
    if (l < s->hops) return;
    uint32_t lf = l - s->hops;
    const uint16_t *from = s->sets + (size_t)lf * s->E;
    for (uint32_t i = 0; i < s->n_set[lf]; i++) {
        uint32_t *row = s->table + ((size_t)lf * s->E + from[i]) * s->E;
        for (uint32_t j = 0; j < n; j++) row[set[j]]++;
    }
}

static uint32_t transition_predict(void *st, uint64_t step, uint32_t l, uint32_t *target, uint16_t *out) {
    transition *s = st;
    (void)step;
    if (l + s->hops >= s->L) return 0;
    *target = l + s->hops;
    memset(s->score, 0, s->E * sizeof *s->score);
    const uint16_t *from = s->sets + (size_t)l * s->E;
    for (uint32_t i = 0; i < s->n_set[l]; i++) {
        const uint32_t *row = s->table + ((size_t)l * s->E + from[i]) * s->E;
        for (uint32_t b = 0; b < s->E; b++) s->score[b] += row[b];
    }
    return moe_prefetch_top_n(s->score, s->E, s->n, out);
}

static void transition_destroy(void *st) {
    transition *s = st;
    free(s->table); free(s->sets); free(s->n_set); free(s->score); free(s);
}

const moe_prefetch_ops moe_prefetch_transition = {
    .name = "transition",
    .summary = "cross-layer co-occurrence table learned online (N hops)",
    .params = transition_params,
    .n_params = 2,
    .create = transition_create,
    .observe = transition_observe,
    .predict = transition_predict,
    .destroy = transition_destroy,
};
