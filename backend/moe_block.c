/* moe_block.c: the feed-forward half of a decoder layer.
 *
 * Sparse layers: router logits = gate . x; probabilities = softmax over all
 * experts; the top-k by probability (ties: lower expert id first); weights =
 * those probabilities, divided by their sum iff norm_topk_prob (Mixtral
 * always: its softmax-then-renormalise equals a softmax over the top-k
 * logits). Each chosen expert is a SwiGLU MLP; outputs are added, weighted,
 * in ascending expert id (like transformers' loop over hit experts), for a
 * batch and for a single token alike. qwen2_moe adds its shared expert
 * scaled by sigmoid(shared_expert_gate . x). Dense layers run one SwiGLU MLP. */
#include <math.h>
#include <string.h>

#include "forward_internal.h"
#include "matmul.h"
#include "ops.h"

/* y[T][H] = down(silu(gate(x)) * up(x)) for the T rows of x. */
static void swiglu(moe_engine *e, const moe_mlp_w *w, const float *x, int T, float *y) {
    int H = e->m->cfg.hidden, I = w->inter;
    moe_matmul(e->pool, e->gu, w->gate_up, NULL, x, T, 2 * I, H);
    for (int t = 0; t < T; t++) {
        const float *g = e->gu + (size_t)t * 2 * I, *u = g + I;
        float *a = e->act + (size_t)t * I;
        for (int i = 0; i < I; i++) a[i] = moe_silu(g[i]) * u[i];
    }
    moe_matmul(e->pool, y, w->down, NULL, e->act, T, H, I);
}

/* Indices of the k largest of v[0..n) in descending order; ties -> lower index. */
static void top_k(const float *v, int n, int k, int *idx) {
    for (int s = 0; s < k; s++) {
        int best = -1;
        for (int i = 0; i < n; i++) {
            int taken = 0;
            for (int r = 0; r < s; r++) taken |= idx[r] == i;
            if (!taken && (best < 0 || v[i] > v[best])) best = i;
        }
        idx[s] = best;
    }
}

static void route_tokens(moe_engine *e, int l, int T, moe_routing *route, int t0) {
    const moe_model_config *c = &e->m->cfg;
    const moe_layer_w *w = &e->m->layers[l];
    int E = c->n_experts, K = c->top_k, H = c->hidden, L = c->n_moe_layers, m = c->moe_index[l];
    moe_matmul(e->pool, e->rlog, w->router, NULL, e->xn, T, E, H);
    for (int t = 0; t < T; t++) {
        float *lg = e->rlog + (size_t)t * E, *pr = e->rprob + (size_t)t * E;
        memcpy(pr, lg, (size_t)E * sizeof(float));
        moe_softmax(pr, E);
        int *sel = e->sel + (size_t)t * K;
        float *sw = e->selw + (size_t)t * K;
        top_k(pr, E, K, sel);
        double sum = 0;
        for (int s = 0; s < K; s++) sum += pr[sel[s]];
        for (int s = 0; s < K; s++) sw[s] = c->norm_topk_prob ? (float)(pr[sel[s]] / sum) : pr[sel[s]];
        if (!route) continue;
        size_t rec = ((size_t)(t0 + t) * L + m);
        if (route->experts) memcpy(route->experts + rec * K, sel, (size_t)K * sizeof(int));
        if (route->weights) memcpy(route->weights + rec * K, sw, (size_t)K * sizeof(float));
        if (route->logits) memcpy(route->logits + rec * E, lg, (size_t)E * sizeof(float));
    }
    /* Lookahead: later MoE layers' routers applied to this layer's block input. */
    int D = route && route->lookahead ? route->lookahead_depth : 0;
    for (int d = 1; d <= D; d++) {
        int target = -1;
        for (int j = l + 1; j < c->n_layers && target < 0; j++)
            if (c->moe_index[j] == m + d) target = j;
        if (target >= 0) moe_matmul(e->pool, e->rprob, e->m->layers[target].router, NULL, e->xn, T, E, H);
        for (int t = 0; t < T; t++) {
            uint16_t *la = route->lookahead + (((size_t)(t0 + t) * L + m) * D + (d - 1)) * K;
            int idx[K];
            if (target >= 0) top_k(e->rprob + (size_t)t * E, E, K, idx);
            for (int s = 0; s < K; s++) la[s] = target >= 0 ? (uint16_t)idx[s] : 0xFFFF;
        }
    }
}

void moe_ffn(moe_engine *e, int l, int T, moe_routing *route, int t0) {
    const moe_model_config *c = &e->m->cfg;
    const moe_layer_w *w = &e->m->layers[l];
    int H = c->hidden, K = c->top_k;
    if (!c->is_moe[l]) {
        swiglu(e, &w->dense, e->xn, T, e->eo);
        return;
    }
    route_tokens(e, l, T, route, t0);
    memset(e->eo, 0, (size_t)T * H * sizeof(float));
    for (int x = 0; x < c->n_experts; x++) {
        int n = 0;
        for (int t = 0; t < T; t++)
            for (int s = 0; s < K; s++)
                if (e->sel[t * K + s] == x) {
                    e->tok_of[n] = t;
                    e->w_of[n] = e->selw[t * K + s];
                    memcpy(e->xe + (size_t)n * H, e->xn + (size_t)t * H, (size_t)H * sizeof(float));
                    n++;
                }
        if (!n) continue;
        swiglu(e, &w->experts[x], e->xe, n, e->ey);
        for (int i = 0; i < n; i++) {
            float *o = e->eo + (size_t)e->tok_of[i] * H;
            const float *y = e->ey + (size_t)i * H;
            for (int h = 0; h < H; h++) o[h] += y[h] * e->w_of[i];
        }
    }
    if (w->shared.inter) {
        swiglu(e, &w->shared, e->xn, T, e->ey);
        for (int t = 0; t < T; t++) {
            float g = moe_dot(w->shared_gate, e->xn + (size_t)t * H, H);
            g = 1.0f / (1.0f + expf(-g));
            float *o = e->eo + (size_t)t * H;
            const float *y = e->ey + (size_t)t * H;
            for (int h = 0; h < H; h++) o[h] += g * y[h];
        }
    }
}
