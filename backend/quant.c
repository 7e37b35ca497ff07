/* quant.c: group-wise affine quantization and its kernel (see quant.h). */
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "matmul.h"
#include "simd.h"

int moe_qbits_ok(int bits) { return bits == 8 || bits == 4 || bits == 3 || bits == 2; }

static int groups_of(int cols) { return (cols + MOE_QGROUP - 1) / MOE_QGROUP; }
static size_t row_bytes_of(int cols, int bits) { return ((size_t)cols * (size_t)bits + 7) / 8; }
/* The packed rows, padded to 4 bytes so the bf16 arrays after them are aligned. */
static size_t qbytes_of(int rows, int cols, int bits) { return ((size_t)rows * row_bytes_of(cols, bits) + 3) & ~(size_t)3; }

uint64_t moe_qmat_bytes_checked(uint64_t rows, uint64_t cols, int bits) {
    uint64_t b, q, s, groups = cols / MOE_QGROUP + (cols % MOE_QGROUP != 0);
    if (__builtin_mul_overflow(cols, (uint64_t)bits, &b) || __builtin_add_overflow(b, 7, &b) ||
        __builtin_mul_overflow(rows, b / 8, &q) || __builtin_add_overflow(q, 3, &q) ||
        __builtin_mul_overflow(rows, groups, &s) || __builtin_mul_overflow(s, 2 * sizeof(uint16_t), &s) ||
        __builtin_add_overflow(q & ~(uint64_t)3, s, &q))
        return 0;
    return q;
}

size_t moe_qmat_bytes(int rows, int cols, int bits) {
    return qbytes_of(rows, cols, bits) + 2 * (size_t)rows * (size_t)groups_of(cols) * sizeof(uint16_t);
}

void moe_qmat_view(moe_qmat *m, const void *block, int rows, int cols, int bits) {
    const uint8_t *b = block;
    m->rows = rows, m->cols = cols, m->bits = bits, m->groups = groups_of(cols);
    m->row_bytes = row_bytes_of(cols, bits);
    m->q = b;
    m->scale = (const uint16_t *)(const void *)(b + qbytes_of(rows, cols, bits));
    m->bias = m->scale + (size_t)rows * (size_t)m->groups;
    m->own = NULL;
}

float moe_bf16_to_f32(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* f32 to bf16 rounded toward -inf (down = 1) or +inf (down = 0); x finite. */
static uint16_t bf16_directed(float x, int down) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint16_t hi = (uint16_t)(u >> 16);
    if ((u & 0xFFFF) == 0) return hi; /* exact */
    int neg = (u >> 31) != 0;
    /* truncation rounds toward zero: away from zero is one step up in magnitude */
    if (neg == down) hi++;
    return hi;
}

int moe_qmat_quantize(moe_qmat *m, const float *W, int rows, int cols, int bits, moe_error *err) {
    memset(m, 0, sizeof *m);
    if (!moe_qbits_ok(bits)) return moe_fail(err, "unsupported bit width %d (8, 4, 3 or 2)", bits);
    if (rows <= 0 || cols <= 0) return moe_fail(err, "empty matrix (%d x %d)", rows, cols);
    size_t bytes = moe_qmat_bytes(rows, cols, bits);
    /* the block is zeroed: the bit streams are built by or-ing values in */
    void *block = calloc(1, bytes);
    if (!block) return moe_fail(err, "out of memory");
    moe_qmat_view(m, block, rows, cols, bits);
    m->own = block;
    uint8_t *q = block;
    uint16_t *scale = (uint16_t *)(void *)(q + qbytes_of(rows, cols, bits)), *bias = scale + (size_t)rows * m->groups;
    const int qmax = (1 << bits) - 1;
    for (int r = 0; r < rows; r++) {
        const float *w = W + (size_t)r * cols;
        uint8_t *row = q + (size_t)r * m->row_bytes;
        for (int g = 0; g < m->groups; g++) {
            int c0 = g * MOE_QGROUP, n = cols - c0 < MOE_QGROUP ? cols - c0 : MOE_QGROUP;
            float lo = w[c0], hi = w[c0];
            for (int j = 0; j < n; j++) {
                if (!isfinite(w[c0 + j])) {
                    moe_qmat_free(m);
                    return moe_fail(err, "weight at row %d, column %d is not finite", r, c0 + j);
                }
                if (w[c0 + j] < lo) lo = w[c0 + j];
                if (w[c0 + j] > hi) hi = w[c0 + j];
            }
            uint16_t zb = bf16_directed(lo, 1);
            float z = moe_bf16_to_f32(zb);
            /* in double, so the quotient itself is not rounded down first */
            double sd = ((double)hi - (double)z) / qmax;
            uint16_t sb = bf16_directed((float)sd, 0);
            if ((double)moe_bf16_to_f32(sb) < sd) sb++; /* (float)sd may have rounded below sd */
            float s = moe_bf16_to_f32(sb);
            if (!isfinite(s)) {
                moe_qmat_free(m);
                return moe_fail(err, "row %d, columns %d-%d: range %g..%g too wide for a bf16 scale", r, c0,
                                c0 + n - 1, (double)lo, (double)hi);
            }
            scale[(size_t)r * m->groups + g] = sb;
            bias[(size_t)r * m->groups + g] = zb;
            for (int j = 0; j < n; j++) {
                long v = s > 0 ? lround(((double)w[c0 + j] - z) / s) : 0;
                if (v < 0) v = 0;
                if (v > qmax) v = qmax;
                size_t bit = (size_t)(c0 + j) * (size_t)bits;
                uint32_t sh = (uint32_t)v << (bit & 7);
                row[bit >> 3] |= (uint8_t)sh;
                if (sh >> 8) row[(bit >> 3) + 1] |= (uint8_t)(sh >> 8); /* a 3-bit value crossing a byte */
            }
        }
    }
    return 0;
}

void moe_qmat_free(moe_qmat *m) {
    free(m->own);
    memset(m, 0, sizeof *m);
}

void moe_qmat_unpack(const moe_qmat *m, int r, int c0, int n, uint8_t *out) {
    const int b = m->bits;
    const uint8_t mask = (uint8_t)((1 << b) - 1);
    const uint8_t *row = m->q + (size_t)r * m->row_bytes;
    size_t bit = (size_t)c0 * (size_t)b;
    int j = 0;
    /* whole runs of 8 values are b bytes, starting on a byte when c0 is a
     * group start (c0 % 8 == 0): one little-endian load each */
    if ((bit & 7) == 0)
        for (; j + 8 <= n; j += 8, bit += 8 * (size_t)b) {
            const uint8_t *p = row + (bit >> 3);
            uint64_t v = 0;
            for (int k = b - 1; k >= 0; k--) v = v << 8 | p[k];
            for (int k = 0; k < 8; k++) out[j + k] = (uint8_t)(v >> (k * b)) & mask;
        }
    for (; j < n; j++, bit += (size_t)b) {
        size_t byte = bit >> 3;
        uint32_t v = row[byte];
        if ((bit & 7) + (size_t)b > 8) v |= (uint32_t)row[byte + 1] << 8; /* within the row: the value ends in it */
        out[j] = (uint8_t)(v >> (bit & 7)) & mask;
    }
}

void moe_qmat_dequant_row(const moe_qmat *m, int r, float *out) {
    uint8_t q[MOE_QGROUP];
    for (int g = 0; g < m->groups; g++) {
        int c0 = g * MOE_QGROUP, n = m->cols - c0 < MOE_QGROUP ? m->cols - c0 : MOE_QGROUP;
        float s = moe_bf16_to_f32(m->scale[(size_t)r * m->groups + g]);
        float z = moe_bf16_to_f32(m->bias[(size_t)r * m->groups + g]);
        moe_qmat_unpack(m, r, c0, n, q);
        for (int j = 0; j < n; j++) out[c0 + j] = s * (float)q[j] + z;
    }
}

typedef uint8_t v16u8 __attribute__((vector_size(16)));
typedef uint16_t v8u16 __attribute__((vector_size(16)));
typedef uint32_t v4u32 __attribute__((vector_size(16)));
typedef float v4f32 __attribute__((vector_size(16)));

/* Two byte vectors interleaved (a0 b0 a1 b1 ...): punpcklbw / punpckhbw. */
MOE_INLINE void zip8(v16u8 a, v16u8 b, v16u8 *lo, v16u8 *hi) {
    *lo = __builtin_shufflevector(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    *hi = __builtin_shufflevector(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}

/* A full group's 64 q values from its 8 b packed bytes. 4 and 2 bits: the
 * fields of 16 bytes are masked out as whole vectors and interleaved back
 * into stream order (value j of byte k is q[k * 8/b + j]); 3 bits (values
 * crossing bytes) a scalar loop per 3 bytes. */
MOE_INLINE void unpack64(const uint8_t *p, int bits, uint8_t *q) {
    const v16u8 m4 = {15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15};
    const v16u8 m2 = {3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
    v16u8 b, lo, hi;
    switch (bits) {
    case 8: memcpy(q, p, 64); break;
    case 4:
        for (int k = 0; k < 32; k += 16) {
            memcpy(&b, p + k, 16);
            zip8(b & m4, b >> 4, &lo, &hi);
            memcpy(q + 2 * k, &lo, 16);
            memcpy(q + 2 * k + 16, &hi, 16);
        }
        break;
    case 2: {
        memcpy(&b, p, 16);
        v16u8 f0 = b & m2, f1 = (b >> 2) & m2, f2 = (b >> 4) & m2, f3 = b >> 6, a_lo, a_hi, c_lo, c_hi;
        zip8(f0, f1, &a_lo, &a_hi); /* f0_k f1_k pairs */
        zip8(f2, f3, &c_lo, &c_hi); /* f2_k f3_k pairs */
        /* pairs interleaved as 16-bit units: f0 f1 f2 f3 of byte k in a row */
        v8u16 x0 = (v8u16)a_lo, x1 = (v8u16)a_hi, y0 = (v8u16)c_lo, y1 = (v8u16)c_hi;
        v8u16 o[4] = {__builtin_shufflevector(x0, y0, 0, 8, 1, 9, 2, 10, 3, 11),
                      __builtin_shufflevector(x0, y0, 4, 12, 5, 13, 6, 14, 7, 15),
                      __builtin_shufflevector(x1, y1, 0, 8, 1, 9, 2, 10, 3, 11),
                      __builtin_shufflevector(x1, y1, 4, 12, 5, 13, 6, 14, 7, 15)};
        memcpy(q, o, 64);
        break;
    }
    default: /* 3: eight values in each 3 bytes */
        for (int k = 0; k < 8; k++) {
            /* the 24 bits' eight 3-bit fields spread to the low bits of 8
             * bytes in three moves (fields 4-7 by 20 bits, then 2-3 of each
             * half by 10, then the odd ones by 5): one 64-bit store instead
             * of eight shifts, masks and byte stores */
            uint64_t v = (uint64_t)p[3 * k] | (uint64_t)p[3 * k + 1] << 8 | (uint64_t)p[3 * k + 2] << 16;
            v = (v & 0xFFFull) | (v & 0xFFF000ull) << 20;
            v = (v & 0x0000003F0000003Full) | (v & 0x00000FC000000FC0ull) << 10;
            v = (v & 0x0007000700070007ull) | (v & 0x0038003800380038ull) << 5;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            memcpy(q + 8 * k, &v, 8); /* byte j is field j */
#else
            for (int j = 0; j < 8; j++) q[8 * k + j] = (uint8_t)(v >> (8 * j));
#endif
        }
    }
}


/* sum_i (s q_i + z) x_i over a full group of 64, each weight formed in f32
 * as s q + z, the products summed in moe_dot's order (16 lanes over steps
 * of 16, then its fixed reduction, simd.h): the numbers of dequantizing the
 * group and calling moe_dot, without storing the group. q values are small
 * integers, so their conversion to float is exact. */
MOE_INLINE float group_dot64(const uint8_t *q, float s, float z, const float *x) {
    moe_v16f acc = {0}, xv;
    for (int i = 0; i < MOE_QGROUP; i += 16) {
        v16u8 b;
        memcpy(&b, q + i, 16);
        moe_v16f w = __builtin_convertvector(__builtin_convertvector(b, moe_v16i), moe_v16f);
        moe_load16(&xv, x + i);
        acc += (w * s + z) * xv;
    }
    return moe_reduce16(&acc);
}

typedef struct qmm_job {
    float *y;
    const moe_qmat *W;
    const float *x;
    int T;
} qmm_job;

/* Built per vector width (simd.h); the lanes' arithmetic is the same in each. */
MOE_SIMD_CLONES static void qmm_rows(void *ctx, int64_t r0, int64_t r1) {
    const qmm_job *j = ctx;
    const moe_qmat *W = j->W;
    const int R = W->rows, C = W->cols, G = W->groups;
    uint8_t q[MOE_QGROUP];
    float wf[MOE_QGROUP];
    for (int64_t r = r0; r < r1; r++) {
        for (int t = 0; t < j->T; t++) j->y[(int64_t)t * R + r] = 0.0f;
        for (int g = 0; g < G; g++) {
            int c0 = g * MOE_QGROUP, n = C - c0 < MOE_QGROUP ? C - c0 : MOE_QGROUP;
            float s = moe_bf16_to_f32(W->scale[(size_t)r * G + g]);
            float z = moe_bf16_to_f32(W->bias[(size_t)r * G + g]);
            if (n == MOE_QGROUP) {
                /* unpacked once, widened per token inside the dot (no f32 copy) */
                unpack64(W->q + (size_t)r * W->row_bytes + (size_t)g * 8 * (size_t)W->bits, W->bits, q);
                for (int t = 0; t < j->T; t++) j->y[(int64_t)t * R + r] += group_dot64(q, s, z, j->x + (int64_t)t * C + c0);
            } else { /* the short last group of a row: through a small buffer */
                moe_qmat_unpack(W, (int)r, c0, n, q);
                for (int i = 0; i < n; i++) wf[i] = s * (float)q[i] + z;
                for (int t = 0; t < j->T; t++) j->y[(int64_t)t * R + r] += moe_dot(wf, j->x + (int64_t)t * C + c0, n);
            }
        }
    }
}

void moe_qmatmul(moe_pool *pool, float *y, const moe_qmat *W, const float *x, int T) {
    qmm_job j = {y, W, x, T};
    int64_t min_rows = (16384 / ((int64_t)W->cols * T)) + 1;
    moe_pool_run(pool, qmm_rows, &j, W->rows, min_rows);
}
