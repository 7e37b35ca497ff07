/* ops.c: RMSNorm, RoPE, softmax. */
#include "ops.h"

#include <math.h>

void moe_rmsnorm(float *out, const float *x, const float *w, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float r = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) out[i] = w[i] * (x[i] * r);
}

/* transformers computes inv_freq = 1 / theta^(2i/d) and the angle pos*inv_freq
 * in float32 before cos/sin; we do the same so that angles at long positions
 * round like the reference (in double they would differ by up to ~1e-4 rad at
 * position 1000). */
void moe_rope_angles(float *cos_out, float *sin_out, int pos, int head_dim, double theta) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float expo = (float)(2 * i) / (float)head_dim;
        float inv = 1.0f / powf((float)theta, expo);
        float ang = (float)pos * inv;
        cos_out[i] = (float)cos((double)ang);
        sin_out[i] = (float)sin((double)ang);
    }
}

void moe_rope_apply(float *x, const float *c, const float *s, int head_dim) {
    int half = head_dim / 2;
    for (int i = 0; i < half; i++) {
        float a = x[i], b = x[i + half];
        x[i] = a * c[i] - b * s[i];
        x[i + half] = b * c[i] + a * s[i];
    }
}

void moe_softmax(float *x, int n) {
    float mx = x[0];
    for (int i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    double sum = 0;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < n; i++) x[i] *= inv;
}
