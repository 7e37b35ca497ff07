/* test_kernels.c: the vector kernels of backend/simd.h and matmul.c.
 *  - moe_exp16 within 1.25 ulp of exp() in double on every 61st float of
 *    [-87, 0] (about 17 million), exactly 1 at 0, 0 below -87;
 *  - moe_matmul against a double-precision reference on shapes with and
 *    without a tail past 16 columns;
 *  - the same bits for one token at a time as for a batch, for 1 and 3
 *    threads, and from bf16 and f16 weights as from their f32 copy;
 *  - every one of the 65536 f16 values widened exactly (against ldexp). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../backend/matmul.h"
#include "../../backend/simd.h"
#include "check.h"

static double ulps(float got, double want) {
    float w = (float)want;
    double one = (double)nextafterf(w, INFINITY) - (double)w;
    return fabs((double)got - want) / one;
}

static void test_exp(void) {
    double worst = 0;
    float at = 0;
    uint32_t lo, hi, n = 0;
    float a = -87.0f, b = -0.0f;
    memcpy(&lo, &b, 4), memcpy(&hi, &a, 4); /* negative floats: bits grow with magnitude */
    moe_v16f v;
    float xs[16];
    int k = 0;
    for (uint32_t u = lo; u <= hi; u += 61) {
        memcpy(&xs[k], &u, 4);
        if (++k < 16 && u + 61 <= hi) continue;
        for (int i = 0; i < 16; i++) v[i] = i < k ? xs[i] : 0.0f;
        moe_exp16(&v);
        for (int i = 0; i < k; i++, n++) {
            double e = ulps(v[i], exp((double)xs[i]));
            if (e > worst) worst = e, at = xs[i];
        }
        k = 0;
    }
    printf("info exp16: %u inputs in [-87, 0], worst %.3f ulp at %g\n", n, worst, (double)at);
    CHECK(n > 16000000);
    CHECK(worst <= 1.25);
    for (int i = 0; i < 16; i++) v[i] = i == 0 ? 0.0f : i == 1 ? -87.5f : i == 2 ? -1e30f : -200.0f;
    moe_exp16(&v);
    CHECK(v[0] == 1.0f && v[1] == 0.0f && v[2] == 0.0f && v[3] == 0.0f);
}

/* The f16 value of bits h, from its definition. */
static double f16_ref(uint16_t h) {
    int e = (h >> 10) & 31, m = h & 1023;
    double v = e == 0 ? ldexp(m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexp(1024 + m, e - 25);
    return h & 0x8000 ? -v : v;
}

static void test_f16(void) {
    int bad = 0;
    for (uint32_t h0 = 0; h0 < 65536; h0 += 16) {
        uint16_t h[16];
        for (int k = 0; k < 16; k++) h[k] = (uint16_t)(h0 + (uint32_t)k);
        moe_v16f v;
        moe_load16_f16(&v, h);
        for (int k = 0; k < 16; k++) {
            double want = f16_ref(h[k]);
            float s = moe_f16_f32(h[k]);
            int neg = h[k] >> 15; /* signbit() is only nonzero, not 1 */
            int ok = isnan(want) ? isnan(v[k]) && isnan(s) && !signbit(v[k]) == !neg && !signbit(s) == !neg
                                 : (double)v[k] == want && (double)s == want && !signbit(v[k]) == !neg &&
                                       !signbit(s) == !neg;
            if (!ok && bad++ < 3) printf("info f16 %04x: vector %g, scalar %g, want %g\n", h[k], (double)v[k], (double)s, want);
        }
    }
    CHECK_EQ_U(bad, 0);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void test_matmul(void) {
    static const int shapes[][3] = {{1, 37, 144}, {7, 37, 144}, {9, 64, 128}, {5, 9, 13}, {6, 5, 16}};
    moe_pool *p1 = moe_pool_new(1), *p3 = moe_pool_new(3);
    CHECK(p1 && p3);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int T = shapes[s][0], R = shapes[s][1], C = shapes[s][2];
        float *W = malloc(sizeof(float) * (size_t)R * C), *x = malloc(sizeof(float) * (size_t)T * C);
        float *bias = malloc(sizeof(float) * (size_t)R), *y = malloc(sizeof(float) * (size_t)T * R);
        float *y1 = malloc(sizeof(float) * (size_t)T * R), *yb = malloc(sizeof(float) * (size_t)T * R);
        uint16_t *Wb = malloc(sizeof(uint16_t) * (size_t)R * C), *Wh = malloc(sizeof(uint16_t) * (size_t)R * C);
        float *Wf = malloc(sizeof(float) * (size_t)R * C);
        for (int i = 0; i < R * C; i++) {
            uint32_t u;
            float f = frand();
            memcpy(&u, &f, 4);
            Wb[i] = (uint16_t)(u >> 16), u &= 0xFFFF0000u; /* W: the bf16 values exactly */
            memcpy(&W[i], &u, 4);
        }
        for (int i = 0; i < R * C; i++) { /* f16 weights: any finite bits (normals, subnormals, zeros) */
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            Wh[i] = (uint16_t)(rng >> 48);
            if ((Wh[i] & 0x7c00) == 0x7c00) Wh[i] &= 0xbfff;
            Wf[i] = (float)f16_ref(Wh[i]);
        }
        for (int i = 0; i < T * C; i++) x[i] = frand();
        for (int i = 0; i < R; i++) bias[i] = frand();
        moe_matmul(p3, y, W, bias, x, T, R, C);
        double worst = 0;
        for (int t = 0; t < T; t++)
            for (int r = 0; r < R; r++) {
                double ref = bias[r], mag = fabs(bias[r]);
                for (int c = 0; c < C; c++) ref += (double)W[r * C + c] * x[t * C + c], mag += fabs((double)W[r * C + c] * x[t * C + c]);
                double e = fabs(y[t * R + r] - ref) / mag;
                if (e > worst) worst = e;
            }
        CHECK(worst < 1e-6);
        for (int t = 0; t < T; t++) moe_matmul(p1, y1 + t * R, W, bias, x + t * C, 1, R, C); /* one at a time */
        CHECK(memcmp(y, y1, sizeof(float) * (size_t)T * R) == 0);
        moe_matmul_mat(p1, yb, (moe_mat){.h16 = Wb}, bias, x, T, R, C);
        CHECK(memcmp(y, yb, sizeof(float) * (size_t)T * R) == 0);
        for (int t = 0; t < T; t++) moe_matmul_mat(p3, yb + t * R, (moe_mat){.h16 = Wb}, bias, x + t * C, 1, R, C);
        CHECK(memcmp(y, yb, sizeof(float) * (size_t)T * R) == 0);
        moe_matmul(p1, y, Wf, bias, x, T, R, C);
        moe_matmul_mat(p3, yb, (moe_mat){.h16 = Wh, .f16 = 1}, bias, x, T, R, C);
        CHECK(memcmp(y, yb, sizeof(float) * (size_t)T * R) == 0);
        free(W), free(x), free(bias), free(y), free(y1), free(yb), free(Wb), free(Wh), free(Wf);
    }
    moe_pool_free(p1), moe_pool_free(p3);
}

int main(void) {
    RUN(test_exp);
    RUN(test_f16);
    RUN(test_matmul);
    CHECK_EXIT();
}
