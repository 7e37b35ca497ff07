/* engine.c: engine lifetime and the layer loop of the forward pass. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "expert_quant.h"
#include "forward_internal.h"
#include "matmul.h"
#include "ops.h"

static void engine_release(moe_engine *e) {
    float **bufs[] = {&e->k_cache, &e->v_cache, &e->x, &e->xn, &e->q, &e->k, &e->v, &e->att, &e->att_sc, &e->tmp,
                      &e->rlog, &e->rprob, &e->gu, &e->act, &e->ey, &e->eo, &e->xe, &e->rope_cos,
                      &e->rope_sin, &e->selw, &e->w_of};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) free(*bufs[i]);
    free(e->sel);
    free(e->slot_class);
    free(e->tok_of);
    free(e->xe_all);
    free(e->ey_all);
    free(e->first_of);
    free(e->count_of);
    free(e->order);
    free(e->la);
    free(e->ex_tok);
    free(e->ex_n);
    free(e->ex_s);
    free(e->dn_tok);
    free(e->dn_ctx);
    free(e->dn_s);
}

double moe_engine_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Grow a pair/triple of sample arrays; 0 or -1 (then the sample is dropped:
 * calibration notices a short sample count, it never reads garbage). */
static int grow(size_t n, size_t *cap, int **tok, double **a, double **b) {
    if (n < *cap) return 0;
    size_t c = *cap ? *cap * 2 : 4096;
    int *t2 = realloc(*tok, c * sizeof *t2);
    if (!t2) return -1;
    *tok = t2;
    double *a2 = realloc(*a, c * sizeof *a2);
    if (!a2) return -1;
    *a = a2;
    if (b) {
        double *b2 = realloc(*b, c * sizeof *b2);
        if (!b2) return -1;
        *b = b2;
    }
    *cap = c;
    return 0;
}

void moe_engine_add_expert_sample(moe_engine *e, int experts, int tokens, double seconds) {
    if (grow(e->n_ex, &e->cap_ex, &e->ex_n, &e->ex_s, &e->ex_tok)) return;
    e->ex_n[e->n_ex] = experts;
    e->ex_tok[e->n_ex] = tokens;
    e->ex_s[e->n_ex++] = seconds;
}

void moe_engine_add_dense_sample(moe_engine *e, int tokens, double seconds) {
    if (grow(e->n_dn, &e->cap_dn, &e->dn_tok, &e->dn_s, &e->dn_ctx)) return;
    /* positions pos..pos+T-1 attend to pos+1..pos+T keys */
    e->dn_tok[e->n_dn] = tokens;
    e->dn_ctx[e->n_dn] = (double)tokens * e->pos + (double)tokens * (tokens + 1) / 2.0;
    e->dn_s[e->n_dn++] = seconds;
}

int moe_engine_set_quantized(moe_engine *e, const moe_qexperts *q, moe_error *err) {
    const moe_model_config *c = &e->m->cfg;
    if (q && (q->n_layers != c->n_moe_layers || q->n_experts != c->n_experts))
        return moe_fail(err, "quantized experts of %d x %d for a model of %d MoE layers x %d experts", q->n_layers,
                        q->n_experts, c->n_moe_layers, c->n_experts);
    e->qx = q;
    return 0;
}

void moe_engine_set_timing(moe_engine *e, int on) { e->timing = on; }
moe_engine_times moe_engine_times_get(const moe_engine *e) { return e->times; }
void moe_engine_times_reset(moe_engine *e) { memset(&e->times, 0, sizeof e->times); }
void moe_engine_record_experts(moe_engine *e, int on) {
    e->record = on;
    if (on) e->timing = 1;
    e->n_ex = e->n_dn = 0;
}
size_t moe_engine_expert_samples(const moe_engine *e, const int **experts, const double **tokens,
                                 const double **seconds) {
    *experts = e->ex_n;
    *tokens = e->ex_tok;
    *seconds = e->ex_s;
    return e->n_ex;
}
size_t moe_engine_dense_samples(const moe_engine *e, const int **tokens, const double **ctx, const double **seconds) {
    *tokens = e->dn_tok;
    *ctx = e->dn_ctx;
    *seconds = e->dn_s;
    return e->n_dn;
}

int moe_engine_set_expert_source(moe_engine *e, moe_expert_source *src, moe_error *err) {
    const moe_model_config *c = &e->m->cfg;
    if (e->m->dense_streamed && !(src && src->dense))
        return moe_fail(err, "%s: dense weights are not loaded and no source streams them (--stream-dense)", e->m->name);
    if (!src) {
        if (!e->m->experts_loaded) return moe_fail(err, "%s: experts are not loaded and no expert source is set", e->m->name);
        e->src = NULL;
        return 0;
    }
    size_t rows = (size_t)MOE_CHUNK * c->top_k, H = (size_t)c->hidden, E = (size_t)c->n_experts;
    size_t D = src->lookahead_depth > 0 ? (size_t)src->lookahead_depth : 0;
    free(e->xe_all); free(e->ey_all); free(e->first_of); free(e->count_of); free(e->order); free(e->la);
    e->xe_all = malloc(rows * H * sizeof(float));
    e->ey_all = malloc(rows * H * sizeof(float));
    e->first_of = malloc(E * sizeof(int));
    e->count_of = malloc(E * sizeof(int));
    e->order = malloc(E * sizeof(int));
    e->la = malloc(((size_t)MOE_CHUNK * (D ? D : 1) * c->top_k) * sizeof(uint16_t));
    if (!e->xe_all || !e->ey_all || !e->first_of || !e->count_of || !e->order || !e->la)
        return moe_fail(err, "out of memory");
    e->src = src;
    return 0;
}

moe_engine *moe_engine_new(const moe_model *m, int threads, int ctx, moe_error *err) {
    const moe_model_config *c = &m->cfg;
    if (ctx < 1) {
        moe_fail(err, "context length must be at least 1");
        return NULL;
    }
    moe_engine *e = calloc(1, sizeof *e);
    if (!e) {
        moe_fail(err, "out of memory");
        return NULL;
    }
    e->m = m;
    e->ctx = ctx;
    e->q_dim = c->n_heads * c->head_dim;
    e->kv_dim = c->n_kv_heads * c->head_dim;
    e->max_inter = c->expert_inter;
    if (c->shared_inter > e->max_inter) e->max_inter = c->shared_inter;
    if (c->dense_inter > e->max_inter) e->max_inter = c->dense_inter;
    size_t CH = MOE_CHUNK, H = (size_t)c->hidden, E = (size_t)c->n_experts;
    size_t kv = (size_t)c->n_layers * (size_t)ctx * (size_t)e->kv_dim;
    /* keys transposed, [layer][kv_dim][ctx + 16] (attention.c); zeroed: a
     * last block of 16 reads past the newest key, into values never used */
    e->k_cache = calloc((size_t)c->n_layers * (size_t)e->kv_dim * ((size_t)ctx + 16), sizeof(float));
    e->v_cache = malloc(kv * sizeof(float));
    e->x = malloc(CH * H * sizeof(float));
    e->xn = malloc(CH * H * sizeof(float));
    e->tmp = malloc(CH * H * sizeof(float));
    e->ey = malloc(CH * H * sizeof(float));
    e->eo = malloc(CH * H * sizeof(float));
    e->xe = malloc(CH * H * sizeof(float));
    e->q = malloc(CH * (size_t)e->q_dim * sizeof(float));
    e->att = malloc(CH * (size_t)e->q_dim * sizeof(float));
    e->k = malloc(CH * (size_t)e->kv_dim * sizeof(float));
    e->v = malloc(CH * (size_t)e->kv_dim * sizeof(float));
    e->rlog = malloc(CH * E * sizeof(float));
    e->rprob = malloc(CH * E * sizeof(float));
    e->gu = malloc(CH * 2 * (size_t)e->max_inter * sizeof(float));
    e->act = malloc(CH * (size_t)e->max_inter * sizeof(float));
    e->rope_cos = malloc(CH * (size_t)(c->head_dim / 2) * sizeof(float));
    e->rope_sin = malloc(CH * (size_t)(c->head_dim / 2) * sizeof(float));
    e->sel = malloc(CH * (size_t)c->top_k * sizeof(int));
    e->slot_class = malloc(CH * (size_t)c->top_k);
    e->selw = malloc(CH * (size_t)c->top_k * sizeof(float));
    e->tok_of = malloc(CH * (size_t)c->top_k * sizeof(int)); /* offloaded: every (token, slot) */
    e->w_of = malloc(CH * (size_t)c->top_k * sizeof(float));
    e->pool = moe_pool_new(threads);
    e->att_sc = malloc((size_t)(threads > 0 ? threads : 1) * ((size_t)ctx + 16) * sizeof(float));
    if (!e->att_sc || !e->k_cache || !e->v_cache || !e->x || !e->xn || !e->tmp || !e->ey || !e->eo || !e->xe || !e->q ||
        !e->att || !e->k || !e->v || !e->rlog || !e->rprob || !e->gu || !e->act || !e->rope_cos ||
        !e->rope_sin || !e->sel || !e->slot_class || !e->selw || !e->tok_of || !e->w_of || !e->pool) {
        moe_fail(err, "out of memory for a %d-token context", ctx);
        moe_engine_free(e);
        return NULL;
    }
    return e;
}

void moe_engine_free(moe_engine *e) {
    if (!e) return;
    moe_pool_free(e->pool);
    engine_release(e);
    free(e);
}

void moe_engine_reset(moe_engine *e) { e->pos = 0; }
void moe_engine_force_routing(moe_engine *e, const moe_forced_routing *r) {
    e->force = r ? *r : (moe_forced_routing){0};
}
int moe_engine_pos(const moe_engine *e) { return e->pos; }
const moe_model *moe_engine_model(const moe_engine *e) { return e->m; }

/* One chunk of T tokens through every layer; logits of rows [0,T) into
 * `logits` (row stride vocab) when want_all, else of the last row only. */
static int forward_chunk(moe_engine *e, const int *tok, int T, float *logits, int want_all, moe_routing *route,
                         int t0, moe_error *err) {
    const moe_model *m = e->m;
    const moe_model_config *c = &m->cfg;
    int H = c->hidden, V = c->vocab;
    double th = e->timing ? moe_engine_now() : 0;
    for (int t = 0; t < T; t++) {
        moe_mat_row(m->embed, (size_t)tok[t], H, e->x + (size_t)t * H);
        moe_rope_angles(e->rope_cos + (size_t)t * (c->head_dim / 2), e->rope_sin + (size_t)t * (c->head_dim / 2),
                        e->pos + t, c->head_dim, c->rope_theta);
    }
    if (e->timing) e->times.head_s += moe_engine_now() - th;
    for (int l = 0; l < c->n_layers; l++) {
        const moe_layer_w *w = &m->layers[l];
        if (e->src && e->src->dense) {
            /* waiting for a streamed block is the source's time, not dense compute */
            double tw = e->timing ? moe_engine_now() : 0;
            w = e->src->dense(e->src->ctx, l, err);
            if (e->timing) e->times.source_s += moe_engine_now() - tw;
            if (!w) return -1;
        }
        e->lw = w;
        if (e->timing) e->t_layer = moe_engine_now();
        for (int t = 0; t < T; t++)
            moe_rmsnorm(e->xn + (size_t)t * H, e->x + (size_t)t * H, w->attn_norm, H, c->rms_eps);
        moe_attention(e, l, e->pos, T);
        for (size_t i = 0; i < (size_t)T * H; i++) e->x[i] += e->tmp[i];
        /* e->xn now becomes the MoE block's input (post_attention_layernorm output):
         * the hidden state the lookahead predictions are computed from. */
        for (int t = 0; t < T; t++)
            moe_rmsnorm(e->xn + (size_t)t * H, e->x + (size_t)t * H, w->ffn_norm, H, c->rms_eps);
        if (moe_ffn(e, l, T, route, t0, err)) return -1;
        for (size_t i = 0; i < (size_t)T * H; i++) e->x[i] += e->eo[i];
    }
    e->pos += T;
    if (!logits) return 0;
    th = e->timing ? moe_engine_now() : 0;
    int first = want_all ? 0 : T - 1;
    for (int t = first; t < T; t++) moe_rmsnorm(e->xn + (size_t)t * H, e->x + (size_t)t * H, m->final_norm, H, c->rms_eps);
    moe_matmul_mat(e->pool, logits, m->lm_head, NULL, e->xn + (size_t)first * H, T - first, V, H);
    if (e->timing) e->times.head_s += moe_engine_now() - th;
    return 0;
}

int moe_engine_forward(moe_engine *e, const int *tokens, int n, float *logits, int all_logits, moe_routing *route,
                       moe_error *err) {
    const moe_model_config *c = &e->m->cfg;
    if (n < 1) return moe_fail(err, "forward of no tokens");
    if (n > e->ctx - e->pos)
        return moe_fail(err, "%d more tokens exceed the context of %d (%d already used)", n, e->ctx, e->pos);
    for (int i = 0; i < n; i++)
        if (tokens[i] < 0 || tokens[i] >= c->vocab)
            return moe_fail(err, "token %d at index %d is outside the vocabulary (%d)", tokens[i], i, c->vocab);
    if (e->src && n > MOE_ENGINE_MAX_STEP)
        return moe_fail(err, "offloaded mode: a forward call is one step of at most %d tokens (got %d)",
                        MOE_ENGINE_MAX_STEP, n);
    if (!e->src && !e->m->experts_loaded)
        return moe_fail(err, "%s: experts are not loaded and no expert source is set", e->m->name);
    if (e->m->dense_streamed && !(e->src && e->src->dense))
        return moe_fail(err, "%s: dense weights are not loaded and no source streams them (--stream-dense)", e->m->name);
    for (int t0 = 0; t0 < n; t0 += MOE_CHUNK) {
        int T = n - t0 < MOE_CHUNK ? n - t0 : MOE_CHUNK;
        int last_chunk = t0 + T == n;
        float *out = NULL;
        if (logits && all_logits) out = logits + (size_t)t0 * c->vocab;
        else if (logits && last_chunk) out = logits;
        if (forward_chunk(e, tokens + t0, T, out, all_logits, route, t0, err)) {
            e->force = (moe_forced_routing){0};
            return -1;
        }
    }
    e->force = (moe_forced_routing){0}; /* one call only */
    return 0;
}
