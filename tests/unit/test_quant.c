/* test_quant.c: group-wise quantization (backend/quant.c) and the quality
 * measures (backend/quality.c) against answers
 * worked out by hand and against a dequantize-then-multiply reference. */
#include "check.h"

#include <float.h>

#include "../../backend/matmul.h"
#include "../../backend/quality.h"
#include "../../backend/quant.h"

static double uniform(uint64_t *s) { return (double)(test_splitmix64(s) >> 11) / 9007199254740992.0; }

/* By hand: the row 0, 1, 2, 3 at 2 bits is z = 0, s = 1, q = 0, 1, 2, 3,
 * packed low bits first into one byte: 3<<6 | 2<<4 | 1<<2 | 0 = 0xE4. */
static void test_known_2bit(void) {
    const float w[4] = {0, 1, 2, 3};
    moe_qmat m;
    moe_error err = {{0}};
    CHECK(moe_qmat_quantize(&m, w, 1, 4, 2, &err) == 0);
    CHECK_EQ_U(m.groups, 1);
    CHECK_EQ_U(m.row_bytes, 1);
    CHECK_EQ_U(m.q[0], 0xE4);
    CHECK(moe_bf16_to_f32(m.scale[0]) == 1.0f);
    CHECK(moe_bf16_to_f32(m.bias[0]) == 0.0f);
    float out[4];
    moe_qmat_dequant_row(&m, 0, out);
    for (int i = 0; i < 4; i++) CHECK(out[i] == w[i]);
    /* 4 packed bytes (1 + 3 padding), one scale, one bias */
    CHECK_EQ_U(moe_qmat_bytes(1, 4, 2), 4 + 2 + 2);
    /* the checked 64-bit form (pack headers) agrees on every shape, and
     * refuses an overflow */
    static const int shapes[][2] = {{1, 4}, {288, 128}, {128, 144}, {3, 65}, {17, 200}, {5, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int b = 2; b <= 8; b++)
            CHECK_EQ_U(moe_qmat_bytes_checked((uint64_t)shapes[i][0], (uint64_t)shapes[i][1], b),
                       moe_qmat_bytes(shapes[i][0], shapes[i][1], b));
    CHECK_EQ_U(moe_qmat_bytes_checked(UINT64_MAX / 2, 1ull << 40, 8), 0);
    moe_qmat_free(&m);
}

/* By hand, 3 bits: values 0..7 then 7..0 (16 values, 48 bits = 6 bytes).
 * Stream of the first 8: bits 0-2 = 0, 3-5 = 1, ... 21-23 = 7, i.e. the
 * 24-bit number sum(j << 3j) = 0xFAC688, bytes 88 C6 FA. */
static void test_known_3bit(void) {
    float w[16];
    for (int j = 0; j < 8; j++) w[j] = (float)j, w[15 - j] = (float)j;
    moe_qmat m;
    moe_error err = {{0}};
    CHECK(moe_qmat_quantize(&m, w, 1, 16, 3, &err) == 0);
    CHECK_EQ_U(m.row_bytes, 6);
    CHECK_EQ_U(m.q[0], 0x88);
    CHECK_EQ_U(m.q[1], 0xC6);
    CHECK_EQ_U(m.q[2], 0xFA);
    uint8_t q[16];
    moe_qmat_unpack(&m, 0, 0, 16, q);
    for (int j = 0; j < 16; j++) CHECK_EQ_U(q[j], w[j]);
    /* an odd start (column 3, not byte aligned) reads the same values */
    moe_qmat_unpack(&m, 0, 3, 11, q);
    for (int j = 0; j < 11; j++) CHECK_EQ_U(q[j], w[3 + j]);
    moe_qmat_free(&m);
}

/* Every weight within s/2 of its dequantized value (s its group's scale;
 * bias rounded down and scale up keep every weight inside the grid), for
 * every bit width and a row length that is not a multiple of 64. */
static void test_error_bound(void) {
    const int R = 7, C = 144;
    float *w = malloc(sizeof(float) * R * C), out[144];
    uint64_t seed = 11;
    for (int i = 0; i < R * C; i++) w[i] = (float)((uniform(&seed) - 0.3) * 0.2);
    w[5] = 3.0f, w[C + 70] = -2.5f; /* outliers widen two groups */
    for (int b = 2; b <= 8; b++) {
        if (!moe_qbits_ok(b)) continue;
        moe_qmat m;
        moe_error err = {{0}};
        CHECK(moe_qmat_quantize(&m, w, R, C, b, &err) == 0);
        CHECK_EQ_U(m.groups, 3);
        for (int r = 0; r < R; r++) {
            moe_qmat_dequant_row(&m, r, out);
            for (int c = 0; c < C; c++) {
                double s = moe_bf16_to_f32(m.scale[r * 3 + c / 64]);
                CHECK(fabs((double)w[r * C + c] - out[c]) <= s / 2 * (1 + 1e-5) + 1e-7);
            }
        }
        moe_qmat_free(&m);
    }
    free(w);
}

/* The kernel against the reference (dequantize the row, then a double
 * dot product): |y - ref| <= 1e-5 * sum_j |w_j x_j| for each output (the
 * size of the terms; |ref| alone is no scale when they cancel), on every
 * shape the shipped models use and odd ones, every width, 1 and 5 tokens,
 * 1 and 3 threads. And a token alone gives the bits it gives in a batch. */
static void test_kernel_vs_reference(void) {
    static const int shapes[][2] = {{288, 128}, {128, 144}, {32, 128}, {5, 1}, {9, 63}, {3, 65}, {17, 200}, {1, 64}};
    static const int widths[] = {8, 4, 3, 2};
    moe_pool *pools[2] = {moe_pool_new(1), moe_pool_new(3)};
    CHECK(pools[0] && pools[1]);
    uint64_t seed = 5;
    int fails = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        int R = shapes[si][0], C = shapes[si][1], T = 5;
        float *w = malloc(sizeof(float) * R * C), *x = malloc(sizeof(float) * T * C);
        float *y = malloc(sizeof(float) * T * R), *y1 = malloc(sizeof(float) * R), *row = malloc(sizeof(float) * C);
        for (int i = 0; i < R * C; i++) w[i] = (float)((uniform(&seed) - 0.5) * 0.1);
        for (int i = 0; i < T * C; i++) x[i] = (float)((uniform(&seed) - 0.5) * 4);
        for (size_t wi = 0; wi < 4; wi++) {
            moe_qmat m;
            moe_error err = {{0}};
            CHECK(moe_qmat_quantize(&m, w, R, C, widths[wi], &err) == 0);
            for (int p = 0; p < 2; p++) {
                moe_qmatmul(pools[p], y, &m, x, T);
                for (int r = 0; r < R; r++) {
                    moe_qmat_dequant_row(&m, r, row);
                    for (int t = 0; t < T; t++) {
                        double ref = 0, mag = 0;
                        for (int c = 0; c < C; c++) {
                            ref += (double)row[c] * x[t * C + c];
                            mag += fabs((double)row[c] * x[t * C + c]);
                        }
                        if (!(fabs(y[t * R + r] - ref) <= 1e-5 * mag + 1e-30)) fails++;
                    }
                }
                for (int t = 0; t < T; t++) {
                    moe_qmatmul(pools[p], y1, &m, x + t * C, 1);
                    if (memcmp(y1, y + t * R, sizeof(float) * R)) fails++;
                }
            }
            moe_qmat_free(&m);
        }
        free(w), free(x), free(y), free(y1), free(row);
    }
    moe_pool_free(pools[0]), moe_pool_free(pools[1]);
    CHECK_EQ_U(fails, 0);
}

/* A viewed block computes exactly what the owning matrix computes. */
static void test_view(void) {
    const int R = 4, C = 100;
    float w[400], x[100], y0[4], y1[4];
    uint64_t seed = 3;
    for (int i = 0; i < 400; i++) w[i] = (float)(uniform(&seed) - 0.5);
    for (int i = 0; i < 100; i++) x[i] = (float)(uniform(&seed) - 0.5);
    moe_qmat m, v;
    moe_error err = {{0}};
    CHECK(moe_qmat_quantize(&m, w, R, C, 3, &err) == 0);
    void *copy = malloc(moe_qmat_bytes(R, C, 3));
    memcpy(copy, m.own, moe_qmat_bytes(R, C, 3));
    moe_qmat_view(&v, copy, R, C, 3);
    moe_pool *p = moe_pool_new(1);
    moe_qmatmul(p, y0, &m, x, 1);
    moe_qmatmul(p, y1, &v, x, 1);
    CHECK(memcmp(y0, y1, sizeof y0) == 0);
    moe_pool_free(p);
    moe_qmat_free(&m);
    free(copy);
}

static void test_bad_input(void) {
    float w[4] = {0, 1, NAN, 3};
    moe_qmat m;
    moe_error err = {{0}};
    CHECK(moe_qmat_quantize(&m, w, 1, 4, 5, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "unsupported bit width 5");
    CHECK(moe_qmat_quantize(&m, w, 2, 2, 4, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "row 1, column 0 is not finite");
    CHECK(m.own == NULL);
    /* -FLT_MAX rounded down to bf16 is -inf */
    float big[2] = {-FLT_MAX, 0};
    CHECK(moe_qmat_quantize(&m, big, 1, 2, 8, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "too wide");
}

/* By hand: full logits (0, 0) give p = (1/2, 1/2); constrained (ln 3, 0)
 * give q = (3/4, 1/4). KL(p||q) = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
 * = 0.1438410362; next = 1: -ln q1 + ln p1 = ln 4 - ln 2 = ln 2; both rank
 * token 0 first (p's tie goes to the lower id). Then a position where they
 * disagree: p = softmax(0, 1), q = softmax(1, 0), next = 0. */
static void test_quality_by_hand(void) {
    moe_quality q = {0};
    const float lf[2] = {0, 0}, lc[2] = {(float)log(3.0), 0};
    moe_quality_add(&q, lf, lc, 2, 1);
    CHECK_EQ_U(q.positions, 1);
    CHECK_EQ_U(q.top1_agree, 1);
    CHECK_NEAR(q.kl, 0.5 * log(4.0 / 3.0), 1e-7);
    CHECK_NEAR(q.nll_con - q.nll_full, log(2.0), 1e-7);
    CHECK_NEAR(q.nll_full, log(2.0), 1e-7);
    const float lf2[2] = {0, 1}, lc2[2] = {1, 0};
    moe_quality_add(&q, lf2, lc2, 2, 0);
    CHECK_EQ_U(q.positions, 2);
    CHECK_EQ_U(q.top1_agree, 1);
    /* p = (1/(1+e), e/(1+e)), q the same reversed */
    double e = exp(1.0), p0 = 1 / (1 + e), p1 = e / (1 + e);
    CHECK_NEAR(q.kl, 0.5 * log(4.0 / 3.0) + p0 * log(p0 / p1) + p1 * log(p1 / p0), 1e-7);
    /* identical logits: exactly nothing */
    moe_quality z = {0};
    moe_quality_add(&z, lf2, lf2, 2, 1);
    CHECK(z.kl == 0 && z.nll_con == z.nll_full && z.top1_agree == 1);
}

/* By hand: "abcabcabc" with n = 3 has windows abc bca cab abc bca cab abc:
 * the last four repeat an earlier one: 4 / 7. A text shorter than n: 0;
 * all distinct: 0; one symbol repeated: every window but the first. */
static void test_repetition_by_hand(void) {
    int x[9];
    for (int i = 0; i < 9; i++) x[i] = "abcabcabc"[i];
    CHECK_NEAR(moe_repetition(x, 9, 3), 4.0 / 7.0, 1e-12);
    CHECK(moe_repetition(x, 2, 3) == 0);
    int d[5] = {1, 2, 3, 4, 5}, same[6] = {7, 7, 7, 7, 7, 7};
    CHECK(moe_repetition(d, 5, 2) == 0);
    CHECK_NEAR(moe_repetition(same, 6, 2), 4.0 / 5.0, 1e-12);
}

int main(void) {
    RUN(test_repetition_by_hand);
    RUN(test_quality_by_hand);
    RUN(test_known_2bit);
    RUN(test_known_3bit);
    RUN(test_error_bound);
    RUN(test_kernel_vs_reference);
    RUN(test_view);
    RUN(test_bad_input);
    CHECK_EXIT();
}
