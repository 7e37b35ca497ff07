/* history: MoE-Infinity's expert activation matrix (EAM) matching.
 *
 * An EAM counts, for one sequence, how many tokens were routed to each
 * (layer, expert). Finished sequences' EAMs are kept in a ring of `store`
 * entries. At (step, l) of the current sequence, the stored EAM with the
 * highest cosine similarity to the current sequence's EAM, both restricted
 * to layers 0..l, is taken as the match (ties to the older entry), and the
 * n experts it used most at layer l+ahead are predicted (only experts it used
 * at all). With an empty store nothing is predicted, so the first sequence of
 * a trace gets no prefetches. A sequence ends when the step's first token
 * has a different sequence id than the previous step's.
 * Parameters: store (default 32), n (0 = top_k), ahead (default 1). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "prefetch.h"

static const moe_param history_params[] = {
    {"store", MOE_PARAM_INT, "32", 1, 1 << 20, "finished sequences remembered", 0, 0, ""},
    {"n", MOE_PARAM_INT, "0", 0, 65535, "experts to predict (0 = top_k)", 0, 0, ""},
    {"ahead", MOE_PARAM_INT, "1", 1, 64, "layers ahead", 0, 0, ""},
};

typedef struct history {
    const moe_trace *t;
    uint32_t L, E, store, n, ahead;
    float *eams;       /* store * L * E */
    uint32_t n_stored, next; /* ring */
    float *cur;        /* L * E */
    int cur_any;
    int64_t last_seq;
    double *score;
} history;

static void *history_create(const moe_param *p, const moe_prefetch_env *env, moe_error *err) {
    history *h = calloc(1, sizeof *h);
    if (!h) return moe_fail(err, "out of memory"), NULL;
    h->t = env->trace;
    h->L = env->n_layers;
    h->E = env->n_experts;
    h->store = (uint32_t)p[0].i;
    h->n = p[1].i ? (uint32_t)p[1].i : env->top_k;
    h->ahead = (uint32_t)p[2].i;
    size_t m = (size_t)h->L * h->E;
    h->eams = calloc((size_t)h->store * m, sizeof *h->eams);
    h->cur = calloc(m, sizeof *h->cur);
    h->score = malloc(h->E * sizeof *h->score);
    h->last_seq = -1;
    if (!h->eams || !h->cur || !h->score) {
        free(h->eams); free(h->cur); free(h->score); free(h);
        return moe_fail(err, "out of memory (%u stored EAMs of %zu entries)", (unsigned)p[0].i, m), NULL;
    }
    return h;
}

static void history_observe(void *st, uint64_t step, uint32_t l, const uint16_t *set, const uint32_t *nt,
                            uint32_t n) {
    history *h = st;
    size_t m = (size_t)h->L * h->E;
    if (l == 0) {
        int64_t seq = h->t->token_seq[h->t->step_first_token[step]];
        if (seq != h->last_seq && h->cur_any) {
            memcpy(h->eams + (size_t)h->next * m, h->cur, m * sizeof *h->cur);
            h->next = (h->next + 1) % h->store;
            if (h->n_stored < h->store) h->n_stored++;
            memset(h->cur, 0, m * sizeof *h->cur);
            h->cur_any = 0;
        }
        h->last_seq = seq;
    }
    for (uint32_t i = 0; i < n; i++) h->cur[(size_t)l * h->E + set[i]] += (float)nt[i];
    h->cur_any |= n > 0;
}

static uint32_t history_predict(void *st, uint64_t step, uint32_t l, uint32_t *target, uint16_t *out) {
    history *h = st;
    (void)step;
    if (l + h->ahead >= h->L || !h->n_stored) return 0;
    *target = l + h->ahead;
    size_t m = (size_t)h->L * h->E, upto = (size_t)(l + 1) * h->E;
    double cn = 0;
    for (size_t i = 0; i < upto; i++) cn += (double)h->cur[i] * h->cur[i];
    double best = -1;
    uint32_t best_i = 0;
    /* oldest first, so ties go to the older entry */
    for (uint32_t j = 0; j < h->n_stored; j++) {
        uint32_t idx = h->n_stored < h->store ? j : (h->next + j) % h->store;
        const float *e = h->eams + (size_t)idx * m;
        double dot = 0, en = 0;
        for (size_t i = 0; i < upto; i++) {
            dot += (double)h->cur[i] * e[i];
            en += (double)e[i] * e[i];
        }
        double sim = cn > 0 && en > 0 ? dot / sqrt(cn * en) : 0;
        if (sim > best) {
            best = sim;
            best_i = idx;
        }
    }
    const float *row = h->eams + (size_t)best_i * m + (size_t)*target * h->E;
    for (uint32_t e = 0; e < h->E; e++) h->score[e] = row[e];
    return moe_prefetch_top_n(h->score, h->E, h->n, out);
}

static void history_destroy(void *st) {
    history *h = st;
    free(h->eams); free(h->cur); free(h->score); free(h);
}

const moe_prefetch_ops moe_prefetch_history = {
    .name = "history",
    .summary = "MoE-Infinity expert-activation-matrix matching against past sequences",
    .params = history_params,
    .n_params = 3,
    .create = history_create,
    .observe = history_observe,
    .predict = history_predict,
    .destroy = history_destroy,
};
