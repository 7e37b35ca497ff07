/* matmul.c: the dense kernel every projection uses. */
#include "matmul.h"

#include <string.h>

/* GCC vector extension: 8 independent f32 lanes; compiles to SSE pairs (or
 * AVX where enabled). The lane sums are combined in a fixed order, so the
 * result does not depend on how work is split across threads. */
typedef float v8f __attribute__((vector_size(32)));

float moe_dot(const float *a, const float *b, int n) {
    v8f acc0 = {0}, acc1 = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        v8f a0, b0, a1, b1;
        memcpy(&a0, a + i, 32);
        memcpy(&b0, b + i, 32);
        memcpy(&a1, a + i + 8, 32);
        memcpy(&b1, b + i + 8, 32);
        acc0 += a0 * b0;
        acc1 += a1 * b1;
    }
    acc0 += acc1;
    float s = ((acc0[0] + acc0[4]) + (acc0[1] + acc0[5])) + ((acc0[2] + acc0[6]) + (acc0[3] + acc0[7]));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

typedef struct mm_job {
    float *y;
    const float *W, *bias, *x;
    int T, R, C;
} mm_job;

static void mm_rows(void *ctx, int64_t r0, int64_t r1) {
    const mm_job *j = ctx;
    for (int64_t r = r0; r < r1; r++) {
        const float *w = j->W + r * (int64_t)j->C;
        float b = j->bias ? j->bias[r] : 0.0f;
        /* the weight row stays in cache across all T tokens */
        for (int t = 0; t < j->T; t++) j->y[(int64_t)t * j->R + r] = moe_dot(w, j->x + (int64_t)t * j->C, j->C) + b;
    }
}

void moe_matmul(moe_pool *pool, float *y, const float *W, const float *bias, const float *x, int T, int R, int C) {
    mm_job j = {y, W, bias, x, T, R, C};
    /* ~16k multiply-adds per thread at least, else run on fewer threads */
    int64_t min_rows = (16384 / ((int64_t)C * T)) + 1;
    moe_pool_run(pool, mm_rows, &j, R, min_rows);
}
