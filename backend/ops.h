/* ops.h: the small element-wise pieces of the forward pass. */
#ifndef MOE_BACKEND_OPS_H
#define MOE_BACKEND_OPS_H

/* out = x / sqrt(mean(x^2) + eps) * w (HF RMSNorm; mean accumulated in double). out may be x. */
void moe_rmsnorm(float *out, const float *x, const float *w, int n, float eps);

/* RoPE tables for one position: cos/sin of pos * inv_freq[i], i < head_dim/2. */
void moe_rope_angles(float *cos_out, float *sin_out, int pos, int head_dim, double theta);
/* Rotate one head in place with the HF rotate_half convention: pairs are
 * (x[i], x[i + d/2]), not adjacent elements. */
void moe_rope_apply(float *x, const float *cos_t, const float *sin_t, int head_dim);

/* In-place softmax over n values (max subtracted; sum in double). */
void moe_softmax(float *x, int n);

static inline float moe_silu(float x);
#include <math.h>
static inline float moe_silu(float x) { return x / (1.0f + expf(-x)); }

#endif
