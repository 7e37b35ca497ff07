/* capture.c: routing of forward calls -> trace builder -> moe_trace. */
#include "capture.h"

#include <stdlib.h>
#include <string.h>

#include "expert_quant.h"

struct moe_capture {
    const moe_model *m;
    moe_trace_builder *b;
    moe_routing r;
    uint64_t steps;
};

moe_capture *moe_capture_new(const moe_model *m, int with_logits, int D, int max_n) {
    const moe_model_config *c = &m->cfg;
    moe_capture *cap = calloc(1, sizeof *cap);
    if (!cap) return NULL;
    cap->m = m;
    size_t rec = (size_t)max_n * c->n_moe_layers;
    cap->b = moe_tb_new((uint32_t)c->n_moe_layers, (uint32_t)c->n_experts, (uint32_t)c->top_k, 1, with_logits,
                        (uint32_t)D);
    cap->r.experts = malloc(rec * c->top_k * sizeof(int));
    cap->r.weights = malloc(rec * c->top_k * sizeof(float));
    if (with_logits) cap->r.logits = malloc(rec * c->n_experts * sizeof(float));
    cap->r.lookahead_depth = D;
    if (D) cap->r.lookahead = malloc(rec * (size_t)D * c->top_k * sizeof(uint16_t));
    if (!cap->b || !cap->r.experts || !cap->r.weights || (with_logits && !cap->r.logits) || (D && !cap->r.lookahead)) {
        moe_capture_abort(cap);
        return NULL;
    }
    return cap;
}

moe_routing *moe_capture_routing(moe_capture *c) { return &c->r; }

int moe_capture_step(moe_capture *c, int phase, uint32_t seq, int pos0, int n, moe_error *err) {
    const moe_model_config *cf = &c->m->cfg;
    int L = cf->n_moe_layers, K = cf->top_k, E = cf->n_experts, D = c->r.lookahead_depth;
    if (moe_tb_begin_step(c->b, c->steps++, phase, err)) return -1;
    for (int t = 0; t < n; t++) {
        int64_t ti = moe_tb_add_token(c->b, seq, (uint32_t)(pos0 + t), err);
        if (ti < 0) return -1;
        for (int l = 0; l < L; l++) {
            size_t rec = (size_t)t * L + l;
            for (int s = 0; s < K; s++)
                if (moe_tb_set(c->b, (uint64_t)ti, (uint32_t)l, (uint32_t)s, (uint32_t)c->r.experts[rec * K + s],
                               c->r.weights[rec * K + s], err))
                    return -1;
            float *lg = moe_tb_logits(c->b, (uint64_t)ti, (uint32_t)l);
            if (lg && c->r.logits) memcpy(lg, c->r.logits + rec * E, (size_t)E * sizeof(float));
            uint16_t *la = moe_tb_lookahead(c->b, (uint64_t)ti, (uint32_t)l);
            if (la && c->r.lookahead) memcpy(la, c->r.lookahead + rec * D * K, (size_t)D * K * sizeof(uint16_t));
        }
    }
    return 0;
}

moe_trace *moe_capture_finish(moe_capture *c, const char *meta, moe_error *err) {
    moe_trace *t = moe_tb_finish(c->b, c->m->name, "moesim infer", meta, err);
    c->b = NULL;
    if (t) {
        t->n_shared = c->m->cfg.shared_inter ? 1 : 0;
        for (int p = 0; p < MOE_PREC_COUNT; p++) t->expert_bytes[p] = moe_expert_bytes_at(c->m->cfg.hidden, c->m->cfg.expert_inter, p);
    }
    moe_capture_abort(c);
    return t;
}

void moe_capture_abort(moe_capture *c) {
    if (!c) return;
    moe_tb_abort(c->b);
    free(c->r.experts);
    free(c->r.weights);
    free(c->r.logits);
    free(c->r.lookahead);
    free(c);
}
