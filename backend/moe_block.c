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

#include "expert_quant.h"
#include "forward_internal.h"
#include "matmul.h"
#include "ops.h"

/* y[T][H] = down(silu(gate(x)) * up(x)) for the T rows of x; from the
 * packed matrices qgu / qdn when given (a quantized expert), else from w. */
static void swiglu_q(moe_engine *e, const moe_mlp_w *w, const moe_qmat *qgu, const moe_qmat *qdn, const float *x,
                     int T, float *y) {
    int H = e->m->cfg.hidden, I = w->inter;
    if (qgu) moe_qmatmul(e->pool, e->gu, qgu, x, T);
    else moe_matmul_mat(e->pool, e->gu, moe_mlp_gate_up(w), NULL, x, T, 2 * I, H);
    for (int t = 0; t < T; t++) {
        const float *g = e->gu + (size_t)t * 2 * I, *u = g + I;
        float *a = e->act + (size_t)t * I;
        for (int i = 0; i < I; i++) a[i] = moe_silu(g[i]) * u[i];
    }
    if (qdn) moe_qmatmul(e->pool, y, qdn, e->act, T);
    else moe_matmul_mat(e->pool, y, moe_mlp_down(w), NULL, e->act, T, H, I);
}

static void swiglu(moe_engine *e, const moe_mlp_w *w, const float *x, int T, float *y) {
    swiglu_q(e, w, w->q_gate_up, w->q_down, x, T, y);
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

/* Top-k of the router of MoE layer (this one's ordinal + d) applied to the
 * rows of e->xn, for T tokens: out[t * stride + s], 0xFFFF for every slot
 * when that layer does not exist. */
static void lookahead_topk(moe_engine *e, int l, int d, int T, uint16_t *out, size_t stride) {
    const moe_model_config *c = &e->m->cfg;
    int E = c->n_experts, K = c->top_k, H = c->hidden, m = c->moe_index[l];
    int target = -1;
    for (int j = l + 1; j < c->n_layers && target < 0; j++)
        if (c->moe_index[j] == m + d) target = j;
    if (target >= 0) moe_matmul_mat(e->pool, e->rprob, e->m->layers[target].router, NULL, e->xn, T, E, H);
    for (int t = 0; t < T; t++) {
        uint16_t *la = out + (size_t)t * stride;
        int idx[K];
        if (target >= 0) top_k(e->rprob + (size_t)t * E, E, K, idx);
        for (int s = 0; s < K; s++) la[s] = target >= 0 ? (uint16_t)idx[s] : 0xFFFF;
    }
}

/* With forced routing that holds lookahead of depth d: overwrite what
 * lookahead_topk computed (same layout) with the given predictions. */
static void force_lookahead(moe_engine *e, int m, int d, int T, int t0, uint16_t *out, size_t stride) {
    const moe_forced_routing *f = &e->force;
    if (!f->experts || !f->lookahead || d > f->lookahead_depth) return;
    int L = e->m->cfg.n_moe_layers, K = e->m->cfg.top_k, FD = f->lookahead_depth;
    for (int t = 0; t < T; t++)
        memcpy(out + (size_t)t * stride, f->lookahead + ((((size_t)(t0 + t) * L + m) * FD) + (d - 1)) * K,
               (size_t)K * sizeof *out);
}

static void route_tokens(moe_engine *e, int l, int T, moe_routing *route, int t0) {
    const moe_model_config *c = &e->m->cfg;
    const moe_layer_w *w = &e->m->layers[l];
    int E = c->n_experts, K = c->top_k, H = c->hidden, L = c->n_moe_layers, m = c->moe_index[l];
    moe_matmul_mat(e->pool, e->rlog, w->router, NULL, e->xn, T, E, H);
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
        if (e->force.experts) { /* routed from outside: the router above is paid for, then overridden */
            size_t fr = ((size_t)(t0 + t) * L + m) * K;
            for (int s = 0; s < K; s++) {
                sel[s] = e->force.experts[fr + s];
                sw[s] = e->force.weights ? e->force.weights[fr + s] : 1.0f / (float)K;
            }
        }
        if (!route) continue;
        size_t rec = ((size_t)(t0 + t) * L + m);
        if (route->experts) memcpy(route->experts + rec * K, sel, (size_t)K * sizeof(int));
        if (route->weights) memcpy(route->weights + rec * K, sw, (size_t)K * sizeof(float));
        if (route->logits) memcpy(route->logits + rec * E, lg, (size_t)E * sizeof(float));
    }
    /* Lookahead: later MoE layers' routers applied to this layer's block input. */
    int D = route && route->lookahead ? route->lookahead_depth : 0;
    for (int d = 1; d <= D; d++)
        lookahead_topk(e, l, d, T, route->lookahead + (((size_t)t0 * L + m) * D + (d - 1)) * K, (size_t)L * D * K);
    for (int d = 1; d <= D; d++) force_lookahead(e, m, d, T, t0, route->lookahead + (((size_t)t0 * L + m) * D + (d - 1)) * K,
                                              (size_t)L * D * K);
}

/* Add the weighted outputs of the routed experts into e->eo in ascending
 * expert id; y_of(x) gives expert x's rows (one per chosen token, in token
 * order). The one summation both modes use, so their numbers are equal. */
static void add_expert_outputs(moe_engine *e, int x, int n, const float *y) {
    int H = e->m->cfg.hidden;
    for (int i = 0; i < n; i++) {
        float *o = e->eo + (size_t)e->tok_of[i] * H;
        const float *yi = y + (size_t)i * H;
        for (int h = 0; h < H; h++) o[h] += yi[h] * e->w_of[i];
    }
    (void)x;
}

/* Token list of expert x: e->tok_of / e->w_of (and its inputs into xe when
 * not NULL); returns the count. cls >= 0: only the slots of that class
 * (HOBBIT, e->slot_class). */
static int tokens_of(moe_engine *e, int x, int T, float *xe, int cls) {
    int H = e->m->cfg.hidden, K = e->m->cfg.top_k, n = 0;
    for (int t = 0; t < T; t++)
        for (int s = 0; s < K; s++)
            if (e->sel[t * K + s] == x && (cls < 0 || e->slot_class[t * K + s] == cls)) {
                e->tok_of[n] = t;
                e->w_of[n] = e->selw[t * K + s];
                if (xe) memcpy(xe + (size_t)n * H, e->xn + (size_t)t * H, (size_t)H * sizeof(float));
                n++;
            }
    return n;
}

/* HOBBIT's rule (core/precision.h) for every slot of the T tokens. */
static void classify_slots(moe_engine *e, int T) {
    const moe_qexperts *qx = e->qx;
    int K = e->m->cfg.top_k;
    for (int t = 0; t < T; t++) {
        const float *w = e->selw + (size_t)t * K;
        double sum = 0, c = 0;
        for (int s = 0; s < K; s++) sum += w[s];
        for (int s = 0; s < K; s++) {
            e->slot_class[t * K + s] = (uint8_t)moe_hobbit_class(c, qx->hi, qx->lo);
            c += sum > 0 ? w[s] / sum : 0;
        }
    }
}

/* Offloaded experts: the source serves the layer's set and says in which
 * order the data arrives (and may rewrite slots, engine.h); each expert's
 * output goes to its own rows of ey_all, and the sum is taken afterwards in
 * ascending id. */
static int ffn_offloaded(moe_engine *e, int l, int T, int t0, moe_error *err) {
    const moe_model_config *c = &e->m->cfg;
    int H = c->hidden, E = c->n_experts, K = c->top_k, m = c->moe_index[l];
    moe_expert_source *src = e->src;
    int D = src->lookahead_depth;
    for (int d = 1; d <= D; d++) {
        lookahead_topk(e, l, d, T, e->la + (size_t)(d - 1) * K, (size_t)D * K);
        force_lookahead(e, m, d, T, t0, e->la + (size_t)(d - 1) * K, (size_t)D * K);
    }
    int n = 0;
    double ts0 = e->timing ? moe_engine_now() : 0;
    int rc = src->layer(src->ctx, m, T, e->sel, e->selw, e->rlog, D ? e->la : NULL, e->order, &n, err);
    if (e->timing) {
        /* the source's time is its own term, not expert compute */
        double ts = moe_engine_now() - ts0;
        e->times.source_s += ts;
        e->times.expert_s -= ts;
    }
    if (rc) return -1;
    /* token rows grouped by expert, in token order: one counting pass, one
     * filling pass (tok_of / w_of hold every kept (token, slot) here) */
    memset(e->count_of, 0, (size_t)E * sizeof *e->count_of);
    for (int i = 0; i < T * K; i++)
        if (e->sel[i] >= 0) e->count_of[e->sel[i]]++;
    for (int x = 0, rows = 0; x < E; x++) {
        e->first_of[x] = rows;
        rows += e->count_of[x];
        e->count_of[x] = 0;
    }
    for (int t = 0; t < T; t++)
        for (int s = 0; s < K; s++) {
            int x = e->sel[t * K + s];
            if (x < 0) continue; /* dropped by the source */
            int r = e->first_of[x] + e->count_of[x]++;
            e->tok_of[r] = t;
            e->w_of[r] = e->selw[t * K + s];
            memcpy(e->xe_all + (size_t)r * H, e->xn + (size_t)t * H, (size_t)H * sizeof(float));
        }
    for (int i = 0; i < n; i++) {
        int x = e->order[i];
        double tw = e->timing ? moe_engine_now() : 0;
        const moe_mlp_w *w = src->get(src->ctx, m, x, err);
        if (e->timing) {
            double tg = moe_engine_now();
            e->times.source_s += tg - tw;
            e->times.expert_s -= tg - tw; /* the caller books the whole block as expert time */
        }
        if (!w) return -1;
        size_t r = (size_t)e->first_of[x] * H;
        swiglu(e, w, e->xe_all + r, e->count_of[x], e->ey_all + r);
        e->times.experts_run++;
    }
    /* the weighted sum in ascending expert id, as the resident path adds */
    for (int x = 0; x < E; x++) {
        int r0 = e->first_of[x];
        for (int i = 0; i < e->count_of[x]; i++) {
            float *o = e->eo + (size_t)e->tok_of[r0 + i] * H;
            const float *y = e->ey_all + (size_t)(r0 + i) * H;
            float w = e->w_of[r0 + i];
            for (int h = 0; h < H; h++) o[h] += y[h] * w;
        }
    }
    return 0;
}

int moe_ffn(moe_engine *e, int l, int T, moe_routing *route, int t0, moe_error *err) {
    const moe_model_config *c = &e->m->cfg;
    const moe_layer_w *w = e->lw; /* layer l's: resident or streamed */
    int H = c->hidden;
    if (!c->is_moe[l]) {
        swiglu(e, &w->dense, e->xn, T, e->eo);
        if (e->timing) e->times.dense_s += moe_engine_now() - e->t_layer;
        return 0;
    }
    route_tokens(e, l, T, route, t0);
    double te = e->timing ? moe_engine_now() : 0;
    if (e->timing) {
        e->times.dense_s += te - e->t_layer;
        if (e->record) moe_engine_add_dense_sample(e, T, te - e->t_layer);
    }
    memset(e->eo, 0, (size_t)T * H * sizeof(float));
    uint64_t run0 = e->times.experts_run;
    double src0 = e->times.source_s;
    if (e->src) {
        if (ffn_offloaded(e, l, T, t0, err)) return -1;
    } else {
        const moe_qexperts *qx = e->qx;
        if (qx && qx->dynamic) classify_slots(e, T);
        for (int x = 0; x < c->n_experts; x++) {
            size_t qi = (size_t)c->moe_index[l] * c->n_experts + x;
            /* one pass, or with HOBBIT one per tier: its tokens on the high
             * copy, then those on the low copy (skipped slots on neither) */
            for (int cls = qx && qx->dynamic ? MOE_HOBBIT_HIGH : -1; cls <= (qx && qx->dynamic ? MOE_HOBBIT_LOW : -1); cls++) {
                int n = tokens_of(e, x, T, e->xe, cls);
                if (!n) continue;
                const moe_qmat *gu = NULL, *dn = NULL;
                if (qx && cls == MOE_HOBBIT_LOW) gu = &qx->low_gate_up[qi], dn = &qx->low_down[qi];
                else if (qx) gu = &qx->gate_up[qi], dn = &qx->down[qi];
                if (gu && gu->rows) swiglu_q(e, &w->experts[x], gu, dn, e->xe, n, e->ey);
                else swiglu(e, &w->experts[x], e->xe, n, e->ey);
                add_expert_outputs(e, x, n, e->ey);
                e->times.experts_run++;
            }
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
    if (e->timing) {
        double dt = moe_engine_now() - te;
        e->times.expert_s += dt;
        /* calibration sample: the whole expert block of the layer (gathering
         * inputs, the MLPs, the weighted sum), without the source's time */
        if (e->record)
            moe_engine_add_expert_sample(e, (int)(e->times.experts_run - run0), T * c->top_k,
                                         dt - (e->times.source_s - src0));
    }
    return 0;
}
