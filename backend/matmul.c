/* matmul.c: the dense kernel every projection and expert uses.
 *
 * One summation order everywhere: a dot product keeps 16 lanes, lane k
 * summing the products of elements i + k over steps of 16 (each step a
 * multiply, then an add: never fused, -ffp-contract=off), then lanes k and
 * k + 8 are added and the 8 sums reduced in a fixed tree; the tail past the
 * last multiple of 16 is added in order. A 16-lane vector is one AVX-512
 * register, two AVX ones or four SSE ones, and the lanes do the same
 * arithmetic in each, so every kernel path gives the same bits (the traces
 * in traces/ are captured alike on any x86-64). 16-bit weights are widened in
 * registers, exactly, so they give the bits of their f32 copy. */
#include "matmul.h"

#include "simd.h"

float moe_dot(const float *a, const float *b, int n) { return moe_dot16(a, b, n); }

typedef struct mm_job {
    float *y;
    const void *W; /* [R][C] f32, bf16 or f16 */
    const float *bias, *x;
    int T, R, C;
} mm_job;

/* The weight type, a constant in each entry point below: 0 f32, 1 bf16, 2 f16. */
MOE_INLINE void load_w(moe_v16f *v, const void *W, int64_t at, int wt) {
    if (wt == 1) moe_load16_bf16(v, (const uint16_t *)W + at);
    else if (wt == 2) moe_load16_f16(v, (const uint16_t *)W + at);
    else moe_load16(v, (const float *)W + at);
}
MOE_INLINE float w_at(const void *W, int64_t at, int wt) {
    return wt ? moe_h16_f32(((const uint16_t *)W)[at], wt == 2) : ((const float *)W)[at];
}

/* One row for every token: four tokens at a time, then one by one. */
MOE_INLINE void mm_row(const mm_job *j, int64_t r, int wt) {
    const int C = j->C, R = j->R, T = j->T;
    const int64_t w = r * (int64_t)C;
    float b = j->bias ? j->bias[r] : 0.0f;
    int t = 0;
    for (; t + 4 <= T; t += 4) {
        const float *x0 = j->x + (int64_t)t * C, *x1 = x0 + C, *x2 = x1 + C, *x3 = x2 + C;
        moe_v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, wv, v0, v1, v2, v3;
        int i = 0;
        for (; i + 16 <= C; i += 16) {
            load_w(&wv, j->W, w + i, wt);
            moe_load16(&v0, x0 + i), moe_load16(&v1, x1 + i), moe_load16(&v2, x2 + i), moe_load16(&v3, x3 + i);
            a0 += wv * v0;
            a1 += wv * v1;
            a2 += wv * v2;
            a3 += wv * v3;
        }
        float s0 = moe_reduce16(&a0), s1 = moe_reduce16(&a1), s2 = moe_reduce16(&a2), s3 = moe_reduce16(&a3);
        for (; i < C; i++) {
            float wi = w_at(j->W, w + i, wt);
            s0 += wi * x0[i], s1 += wi * x1[i], s2 += wi * x2[i], s3 += wi * x3[i];
        }
        j->y[(int64_t)t * R + r] = s0 + b;
        j->y[(int64_t)(t + 1) * R + r] = s1 + b;
        j->y[(int64_t)(t + 2) * R + r] = s2 + b;
        j->y[(int64_t)(t + 3) * R + r] = s3 + b;
    }
    for (; t < T; t++) { /* one token: moe_dot16 with the weights widened */
        const float *x = j->x + (int64_t)t * C;
        moe_v16f acc = {0}, wv, xv;
        int i = 0;
        for (; i + 16 <= C; i += 16) {
            load_w(&wv, j->W, w + i, wt), moe_load16(&xv, x + i);
            acc += wv * xv;
        }
        float s = moe_reduce16(&acc);
        for (; i < C; i++) s += w_at(j->W, w + i, wt) * x[i];
        j->y[(int64_t)t * R + r] = s + b;
    }
}

/* Two rows by four tokens: each load of 16 weights serves four tokens and
 * each load of 16 inputs two rows; eight sums, each in moe_dot16's order. */
MOE_INLINE void mm_2x4(const mm_job *j, int64_t r, int t, int wt) {
    const int C = j->C, R = j->R;
    const int64_t w0 = r * (int64_t)C, w1 = w0 + C;
    const float *x0 = j->x + (int64_t)t * C, *x1 = x0 + C, *x2 = x1 + C, *x3 = x2 + C;
    moe_v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    moe_v16f u, v, v0, v1, v2, v3;
    int i = 0;
    for (; i + 16 <= C; i += 16) {
        load_w(&u, j->W, w0 + i, wt), load_w(&v, j->W, w1 + i, wt);
        moe_load16(&v0, x0 + i), moe_load16(&v1, x1 + i), moe_load16(&v2, x2 + i), moe_load16(&v3, x3 + i);
        a0 += u * v0, a1 += u * v1, a2 += u * v2, a3 += u * v3;
        b0 += v * v0, b1 += v * v1, b2 += v * v2, b3 += v * v3;
    }
    float s[8] = {moe_reduce16(&a0), moe_reduce16(&a1), moe_reduce16(&a2), moe_reduce16(&a3),
                  moe_reduce16(&b0), moe_reduce16(&b1), moe_reduce16(&b2), moe_reduce16(&b3)};
    for (; i < C; i++) {
        float p = w_at(j->W, w0 + i, wt), q = w_at(j->W, w1 + i, wt);
        s[0] += p * x0[i], s[1] += p * x1[i], s[2] += p * x2[i], s[3] += p * x3[i];
        s[4] += q * x0[i], s[5] += q * x1[i], s[6] += q * x2[i], s[7] += q * x3[i];
    }
    float ba = j->bias ? j->bias[r] : 0.0f, bb = j->bias ? j->bias[r + 1] : 0.0f;
    for (int k = 0; k < 4; k++) {
        j->y[(int64_t)(t + k) * R + r] = s[k] + ba;
        j->y[(int64_t)(t + k) * R + r + 1] = s[4 + k] + bb;
    }
}

/* Rows r0..r1 for every token. Four tokens share each load of a weight row's
 * 16 values (prefill): four sums, each in moe_dot16's order; two rows at a
 * time where they pair. */
MOE_INLINE void mm_body(const mm_job *j, int64_t r0, int64_t r1, int wt) {
    const int C = j->C, R = j->R, T = j->T;
    int64_t r = r0;
    if (T >= 4) {
        for (; r + 2 <= r1; r += 2)
            for (int t = 0; t + 4 <= T; t += 4) mm_2x4(j, r, t, wt);
        /* the tokens past a multiple of 4, for those rows: below, one row at a time */
        if (T % 4) {
            mm_job rest = *j;
            rest.x = j->x + (int64_t)(T - T % 4) * C;
            rest.y = j->y + (int64_t)(T - T % 4) * R;
            rest.T = T % 4;
            for (int64_t q = r0; q < r; q++) mm_row(&rest, q, wt);
        }
    }
    for (; r < r1; r++) mm_row(j, r, wt);
}

/* One token (decode): four rows at a time share each load of x's 16
 * values, and their four independent sums keep the adder busy. */
MOE_INLINE void mv_body(const mm_job *j, int64_t r0, int64_t r1, int wt) {
    const int C = j->C;
    const float *x = j->x;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const int64_t w0 = r * (int64_t)C, w1 = w0 + C, w2 = w1 + C, w3 = w2 + C;
        moe_v16f a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, xv, v0, v1, v2, v3;
        int i = 0;
        for (; i + 16 <= C; i += 16) {
            moe_load16(&xv, x + i);
            load_w(&v0, j->W, w0 + i, wt), load_w(&v1, j->W, w1 + i, wt);
            load_w(&v2, j->W, w2 + i, wt), load_w(&v3, j->W, w3 + i, wt);
            a0 += v0 * xv;
            a1 += v1 * xv;
            a2 += v2 * xv;
            a3 += v3 * xv;
        }
        float s0 = moe_reduce16(&a0), s1 = moe_reduce16(&a1), s2 = moe_reduce16(&a2), s3 = moe_reduce16(&a3);
        for (; i < C; i++) {
            s0 += w_at(j->W, w0 + i, wt) * x[i], s1 += w_at(j->W, w1 + i, wt) * x[i];
            s2 += w_at(j->W, w2 + i, wt) * x[i], s3 += w_at(j->W, w3 + i, wt) * x[i];
        }
        float *y = j->y + r;
        y[0] = s0 + (j->bias ? j->bias[r] : 0.0f);
        y[1] = s1 + (j->bias ? j->bias[r + 1] : 0.0f);
        y[2] = s2 + (j->bias ? j->bias[r + 2] : 0.0f);
        y[3] = s3 + (j->bias ? j->bias[r + 3] : 0.0f);
    }
    if (r < r1) mm_body(j, r, r1, wt);
}

/* The entry points the pool runs, one per weight type and shape, each
 * built per vector width. */
MOE_SIMD_CLONES static void mm_f32(void *ctx, int64_t r0, int64_t r1) { mm_body(ctx, r0, r1, 0); }
MOE_SIMD_CLONES static void mm_bf16(void *ctx, int64_t r0, int64_t r1) { mm_body(ctx, r0, r1, 1); }
MOE_SIMD_CLONES static void mv_f32(void *ctx, int64_t r0, int64_t r1) { mv_body(ctx, r0, r1, 0); }
MOE_SIMD_CLONES static void mv_bf16(void *ctx, int64_t r0, int64_t r1) { mv_body(ctx, r0, r1, 1); }
MOE_SIMD_CLONES static void mm_f16(void *ctx, int64_t r0, int64_t r1) { mm_body(ctx, r0, r1, 2); }
MOE_SIMD_CLONES static void mv_f16(void *ctx, int64_t r0, int64_t r1) { mv_body(ctx, r0, r1, 2); }

static void run(moe_pool *pool, float *y, const void *W, int wt, const float *bias, const float *x, int T, int R,
                int C) {
    mm_job j = {y, W, bias, x, T, R, C};
    /* ~16k multiply-adds per thread at least, else run on fewer threads */
    int64_t min_rows = (16384 / ((int64_t)C * T)) + 1;
    static const moe_pool_fn mm[3] = {mm_f32, mm_bf16, mm_f16}, mv[3] = {mv_f32, mv_bf16, mv_f16};
    moe_pool_fn fn = (T == 1 ? mv : mm)[wt];
    moe_pool_run(pool, fn, &j, R, min_rows);
}

void moe_matmul(moe_pool *pool, float *y, const float *W, const float *bias, const float *x, int T, int R, int C) {
    run(pool, y, W, 0, bias, x, T, R, C);
}

void moe_matmul_mat(moe_pool *pool, float *y, moe_mat W, const float *bias, const float *x, int T, int R, int C) {
    if (W.h16) run(pool, y, W.h16, W.f16 ? 2 : 1, bias, x, T, R, C);
    else run(pool, y, W.f32, 0, bias, x, T, R, C);
}
