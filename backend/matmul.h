/* matmul.h: y[t][r] = W[r] . x[t] (+ bias[r]) for T token vectors, threads
 * over the rows r. Every dot product is computed by one thread in one fixed
 * order, so output is bit-identical for any thread count and for a token
 * computed alone (decode) or inside a batch (prefill). */
#ifndef MOE_BACKEND_MATMUL_H
#define MOE_BACKEND_MATMUL_H

#include <stdint.h>

#include "model.h"
#include "pool.h"

/* dot product of two n-vectors, fixed summation order (backend/simd.h). */
float moe_dot(const float *a, const float *b, int n);

/* y: [T][R] (row stride R), W: [R][C], x: [T][C]; bias may be NULL. */
void moe_matmul(moe_pool *pool, float *y, const float *W, const float *bias, const float *x, int T, int R, int C);
/* A model matrix in whichever form it was loaded; 16-bit weights are
 * widened in registers, so the bits are those of moe_matmul on the f32 copy. */
void moe_matmul_mat(moe_pool *pool, float *y, moe_mat W, const float *bias, const float *x, int T, int R, int C);

#endif
