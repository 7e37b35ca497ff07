/* attention.c: grouped-query self-attention with a KV cache.
 *
 * Per layer: q,k,v projections (+bias), q/k norm (qwen3_moe per head, olmoe
 * over the whole projection), olmoe's clip_qkv, RoPE, append k,v to the cache,
 * causal (optionally sliding-window) attention, o projection. */
#include <math.h>
#include <string.h>

#include "forward_internal.h"
#include "matmul.h"
#include "ops.h"
#include "simd.h"

static void clip(float *x, int n, float c) {
    for (int i = 0; i < n; i++) x[i] = x[i] > c ? c : x[i] < -c ? -c : x[i];
}

#define ATT_MAX_VEC 16 /* value accumulators held in registers: heads up to 256 wide */

typedef struct att_job {
    moe_engine *e;
    int l, pos0, T;
    int calls; /* att_items calls so far: each its own scratch row */
} att_job;

/* out[d] = sum over the n keys, in key order, of w_s v_s[d] (v_s at vb +
 * s * stride): nv vectors of 16 dimensions held across the keys, the rest
 * one by one; the same additions in the same order either way. */
MOE_INLINE void weigh_values(float *out, const float *vb, int stride, const float *w, int n, int hd, int nv) {
    moe_v16f o[ATT_MAX_VEC], vv;
    int d0 = 16 * nv;
    memset(out, 0, (size_t)hd * sizeof(float));
    for (int k = 0; k < nv; k++) o[k] = (moe_v16f){0};
    for (int s = 0; s < n; s++) {
        const float *vs = vb + (size_t)s * stride;
        for (int k = 0; k < nv; k++) {
            moe_load16(&vv, vs + 16 * k);
            o[k] += w[s] * vv;
        }
        for (int d = d0; d < hd; d++) out[d] += w[s] * vs[d];
    }
    for (int k = 0; k < nv; k++) memcpy(out + 16 * k, &o[k], sizeof o[k]);
}

/* One (token, head) item: the scores of keys first..p, their maximum,
 * e^(score - max) for all of them (moe_exp16, 16 at a time: the scores are
 * padded with -1e30, whose terms are 0), their sum in 16 lanes (reduced as
 * a dot product is), then the values weighted in key order and divided by
 * the sum. Each score is moe_dot16(q, key) * scale, computed for 16 keys at
 * once from the transposed key cache: one vector per lane k of the dot
 * product, holding that lane for the 16 keys, summed over the steps of 16,
 * then reduced by moe_reduce16's additions and the tail added in order: the
 * same operations on the same values, so the same bits. Every step is the
 * same for any thread count, batch size and vector width. sc: scratch of
 * ctx + 16 floats. */
MOE_INLINE void att_one(const att_job *j, int64_t it, float *sc) {
    moe_engine *e = j->e;
    const moe_model_config *c = &e->m->cfg;
    int hd = c->head_dim, nh = c->n_heads, group = c->n_heads / c->n_kv_heads;
    size_t stride = (size_t)e->ctx + 16;
    float scale = 1.0f / sqrtf((float)hd);
    const float *vc = e->v_cache + (size_t)j->l * e->ctx * e->kv_dim;
    int t = (int)(it / nh), h = (int)(it % nh), kvh = h / group;
    const float *kt = e->k_cache + ((size_t)j->l * e->kv_dim + (size_t)kvh * hd) * stride;
    int p = j->pos0 + t;
    int first = 0;
    /* transformers' sliding window keeps keys k with p - W < k <= p */
    if (c->sliding_window > 0 && p - c->sliding_window + 1 > 0) first = p - c->sliding_window + 1;
    const float *q = e->q + (size_t)t * e->q_dim + (size_t)h * hd;
    float *out = e->att + (size_t)t * e->q_dim + (size_t)h * hd;
    int n = p - first + 1, n16 = (n + 15) & ~15;
    moe_v16f mxv = (moe_v16f){0} - INFINITY;
    for (int s0 = 0; s0 < n; s0 += 16) {
        moe_v16f acc[16], kv, r;
#pragma GCC unroll 16
        for (int k = 0; k < 16; k++) acc[k] = (moe_v16f){0}; /* unrolled here and below: registers, not memory */
        const float *kb = kt + first + s0;
        int i = 0;
        for (; i + 16 <= hd; i += 16)
#pragma GCC unroll 16
            for (int k = 0; k < 16; k++) { /* unrolled: the 16 accumulators stay in registers */
                moe_load16(&kv, kb + (size_t)(i + k) * stride);
                acc[k] += q[i + k] * kv;
            }
#pragma GCC unroll 8
        for (int k = 0; k < 8; k++) acc[k] += acc[k + 8];
#pragma GCC unroll 4
        for (int k = 0; k < 4; k++) acc[k] += acc[k + 4];
        r = (acc[0] + acc[1]) + (acc[2] + acc[3]);
        for (; i < hd; i++) {
            moe_load16(&kv, kb + (size_t)i * stride);
            r += q[i] * kv;
        }
        r *= scale;
        memcpy(sc + s0, &r, sizeof r);
    }
    for (int s = n; s < n16; s++) sc[s] = -1e30f; /* past the newest key */
    for (int s0 = 0; s0 < n16; s0 += 16) {
        moe_v16f v;
        moe_load16(&v, sc + s0);
        moe_v16i gt = v > mxv; /* the maximum: exact in any order */
        mxv = (moe_v16f)(((moe_v16i)v & gt) | ((moe_v16i)mxv & ~gt));
    }
    float mx = mxv[0];
    for (int k = 1; k < 16; k++) mx = mxv[k] > mx ? mxv[k] : mx;
    moe_v16f acc = {0}, v;
    for (int s = 0; s < n16; s += 16) {
        moe_load16(&v, sc + s);
        v -= mx;
        moe_exp16(&v);
        memcpy(sc + s, &v, sizeof v);
        acc += v;
    }
    float inv = 1.0f / moe_reduce16(&acc);
    const float *vb = vc + (size_t)first * e->kv_dim + (size_t)kvh * hd;
    /* the usual head widths with their vector count known, so the
     * accumulators live in registers */
    switch (hd) {
    case 32: weigh_values(out, vb, e->kv_dim, sc, n, 32, 2); break;
    case 64: weigh_values(out, vb, e->kv_dim, sc, n, 64, 4); break;
    case 128: weigh_values(out, vb, e->kv_dim, sc, n, 128, 8); break;
    default: weigh_values(out, vb, e->kv_dim, sc, n, hd, hd / 16 <= ATT_MAX_VEC ? hd / 16 : 0);
    }
    for (int d = 0; d < hd; d++) out[d] *= inv;
}

/* A range of (token, head) items, built per vector width (simd.h). Each
 * call (at most one per thread) takes its own scratch row. */
MOE_SIMD_CLONES static void att_items(void *ctx, int64_t i0, int64_t i1) {
    att_job *j = ctx;
    int slot = __atomic_fetch_add(&j->calls, 1, __ATOMIC_RELAXED);
    float *sc = j->e->att_sc + (size_t)slot * ((size_t)j->e->ctx + 16);
    for (int64_t it = i0; it < i1; it++) att_one(j, it, sc);
}

void moe_attention(moe_engine *e, int l, int pos0, int T) {
    const moe_model_config *c = &e->m->cfg;
    const moe_layer_w *w = e->lw; /* layer l's: resident or streamed */
    int H = c->hidden, hd = c->head_dim, Q = e->q_dim, KV = e->kv_dim;
    moe_matmul_mat(e->pool, e->q, w->wq, w->bq, e->xn, T, Q, H);
    moe_matmul_mat(e->pool, e->k, w->wk, w->bk, e->xn, T, KV, H);
    moe_matmul_mat(e->pool, e->v, w->wv, w->bv, e->xn, T, KV, H);
    for (int t = 0; t < T; t++) {
        float *q = e->q + (size_t)t * Q, *k = e->k + (size_t)t * KV, *v = e->v + (size_t)t * KV;
        if (c->qk_norm == MOE_QKNORM_FULL) {
            moe_rmsnorm(q, q, w->q_norm, Q, c->rms_eps);
            moe_rmsnorm(k, k, w->k_norm, KV, c->rms_eps);
        } else if (c->qk_norm == MOE_QKNORM_HEAD) {
            for (int h = 0; h < c->n_heads; h++) moe_rmsnorm(q + h * hd, q + h * hd, w->q_norm, hd, c->rms_eps);
            for (int h = 0; h < c->n_kv_heads; h++) moe_rmsnorm(k + h * hd, k + h * hd, w->k_norm, hd, c->rms_eps);
        }
        if (c->clip_qkv > 0) {
            clip(q, Q, (float)c->clip_qkv);
            clip(k, KV, (float)c->clip_qkv);
            clip(v, KV, (float)c->clip_qkv);
        }
        const float *cs = e->rope_cos + (size_t)t * (hd / 2), *sn = e->rope_sin + (size_t)t * (hd / 2);
        for (int h = 0; h < c->n_heads; h++) moe_rope_apply(q + h * hd, cs, sn, hd);
        for (int h = 0; h < c->n_kv_heads; h++) moe_rope_apply(k + h * hd, cs, sn, hd);
        size_t at = ((size_t)l * e->ctx + (size_t)(pos0 + t)) * KV, stride = (size_t)e->ctx + 16;
        for (int d = 0; d < KV; d++) e->k_cache[((size_t)l * KV + (size_t)d) * stride + (size_t)(pos0 + t)] = k[d];
        memcpy(e->v_cache + at, v, (size_t)KV * sizeof(float));
    }
    att_job j = {e, l, pos0, T, 0};
    moe_pool_run(e->pool, att_items, &j, (int64_t)T * c->n_heads, 1);
    moe_matmul_mat(e->pool, e->tmp, w->wo, w->bo, e->att, T, H, Q);
}
