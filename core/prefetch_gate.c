/* gate: next-layer gate lookahead (Eliseev & Mazur's speculative expert
 * loading; the trace's `lookahead` field). At (step, layer l) it predicts
 * for layer l+ahead the union over the step's tokens of the first n
 * experts that gate_{l+ahead} ranks on layer l's hidden state, as captured
 * by the backend.
 * Parameters: ahead = d (1..D of the trace), n = j experts per token (0 =
 * the trace's top_k; at most top_k, the slots a lookahead record holds). */
#include <stdlib.h>
#include <string.h>

#include "sort_small.h"
#include "prefetch.h"

static const moe_param gate_params[] = {
    {"ahead", MOE_PARAM_INT, "1", 1, 64, "layers ahead (d)", 0, 0, ""},
    {"n", MOE_PARAM_INT, "0", 0, 65535, "experts per token (0 = top_k)", 0, 0, ""},
};

typedef struct gate {
    const moe_trace *t;
    uint32_t ahead, n;
    uint32_t *stamp, cur;
} gate;

static void *gate_create(const moe_param *p, const moe_prefetch_env *env, moe_error *err) {
    const moe_trace *t = env->trace;
    uint32_t ahead = (uint32_t)p[0].i, n = (uint32_t)p[1].i;
    if (!t->lookahead || t->lookahead_depth == 0)
        return moe_fail(err, "the trace has no lookahead predictions (capture them with the backend or "
                             "generate a trace with lookahead)"), NULL;
    if (ahead > t->lookahead_depth)
        return moe_fail(err, "ahead=%u but the trace's lookahead depth is %u", ahead, t->lookahead_depth), NULL;
    if (n == 0) n = t->top_k;
    if (n > t->top_k) return moe_fail(err, "n=%u > top_k (%u) slots of a lookahead record", n, t->top_k), NULL;
    gate *g = calloc(1, sizeof *g);
    if (!g || !(g->stamp = calloc(t->n_experts, sizeof *g->stamp))) {
        free(g);
        return moe_fail(err, "out of memory"), NULL;
    }
    g->t = t;
    g->ahead = ahead;
    g->n = n;
    return g;
}

static void gate_observe(void *st, uint64_t s, uint32_t l, const uint16_t *set, const uint32_t *nt, uint32_t n) {
    (void)st; (void)s; (void)l; (void)set; (void)nt; (void)n;
}

static uint32_t gate_predict(void *st, uint64_t s, uint32_t l, uint32_t *target, uint16_t *out) {
    gate *g = st;
    const moe_trace *t = g->t;
    if (l + g->ahead >= t->n_layers) return 0;
    *target = l + g->ahead;
    if (++g->cur == 0) {
        memset(g->stamp, 0, t->n_experts * sizeof *g->stamp);
        g->cur = 1;
    }
    uint32_t m = 0;
    for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++) {
        const uint16_t *la = t->lookahead +
            (((size_t)tok * t->n_layers + l) * t->lookahead_depth + (g->ahead - 1)) * t->top_k;
        for (uint32_t k = 0; k < g->n; k++) {
            uint16_t e = la[k];
            if (e == MOE_NO_EXPERT) break;
            if (e >= t->n_experts || g->stamp[e] == g->cur) continue;
            g->stamp[e] = g->cur;
            out[m++] = e;
        }
    }
    moe_sort_u16(out, m);
    return m;
}

static void gate_destroy(void *st) {
    gate *g = st;
    free(g->stamp);
    free(g);
}

const moe_prefetch_ops moe_prefetch_gate = {
    .name = "gate",
    .summary = "next-layer gate lookahead from the trace (Eliseev & Mazur)",
    .params = gate_params,
    .n_params = 2,
    .create = gate_create,
    .observe = gate_observe,
    .predict = gate_predict,
    .destroy = gate_destroy,
};
