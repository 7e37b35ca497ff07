/* simd.h: the 16-lane f32 vector the kernels compute with, and the one
 * summation order of a dot product (matmul.c says why it is fixed).
 *
 * MOE_SIMD_CLONES on a hot function builds it for AVX-512, AVX2 and the
 * baseline, chosen once at load by the CPU (GCC's target_clones, an ifunc):
 * one portable binary, with the widest vectors the machine has. The
 * functions below are always inlined into the clone that calls them, so
 * they take its width. */
#ifndef MOE_BACKEND_SIMD_H
#define MOE_BACKEND_SIMD_H

#include <stdint.h>
#include <string.h>

typedef float moe_v16f __attribute__((vector_size(64)));
typedef int32_t moe_v16i __attribute__((vector_size(64)));

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(MOE_NO_CLONES)
#define MOE_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MOE_SIMD_CLONES
#endif

#define MOE_INLINE static inline __attribute__((always_inline))

/* Vectors cross these helpers by pointer: a 64-byte vector passed by value
 * has a different ABI per target (they are always inlined anyway). */
MOE_INLINE void moe_load16(moe_v16f *v, const float *p) { memcpy(v, p, sizeof *v); }

typedef float moe_v8f __attribute__((vector_size(32)));
typedef float moe_v4f __attribute__((vector_size(16)));

/* Lanes k and k + 8 added, then ((0+4) + (1+5)) + ((2+6) + (3+7)): as
 * vector halves (no trip through memory), the same additions in the same
 * order. */
MOE_INLINE float moe_reduce16(const moe_v16f *a) {
    moe_v8f s = __builtin_shufflevector(*a, *a, 0, 1, 2, 3, 4, 5, 6, 7) +
                __builtin_shufflevector(*a, *a, 8, 9, 10, 11, 12, 13, 14, 15);
    moe_v4f t = __builtin_shufflevector(s, s, 0, 1, 2, 3) + __builtin_shufflevector(s, s, 4, 5, 6, 7);
    return (t[0] + t[1]) + (t[2] + t[3]);
}

/* 16 bf16 values widened to f32 (exactly: bf16 is an f32's top half). */
typedef uint16_t moe_v16u16 __attribute__((vector_size(32)));
typedef uint32_t moe_v16u32 __attribute__((vector_size(64)));
MOE_INLINE void moe_load16_bf16(moe_v16f *v, const uint16_t *p) {
    moe_v16u16 h;
    memcpy(&h, p, sizeof h);
    moe_v16u32 u = __builtin_convertvector(h, moe_v16u32) << 16;
    memcpy(v, &u, sizeof *v);
}
MOE_INLINE float moe_bf16_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* 16 f16 values widened to f32, exactly, with integer and float lane
 * operations only (the baseline path has no conversion instruction):
 * normal numbers re-biased (exponent + 112), infinities and NaNs to
 * exponent 255 (+ 112 more), zeros and subnormals as mantissa x 2^-24 (an
 * exact product), the sign put back. */
MOE_INLINE void moe_load16_f16(moe_v16f *v, const uint16_t *p) {
    moe_v16u16 h;
    memcpy(&h, p, sizeof h);
    moe_v16u32 u = __builtin_convertvector(h, moe_v16u32);
    moe_v16u32 sign = (u & 0x8000u) << 16, em = u & 0x7fffu;
    moe_v16u32 norm = (em << 13) + (112u << 23);
    moe_v16u32 special = (moe_v16u32)(em >= 0x7c00u), small = (moe_v16u32)(em < 0x400u);
    norm += special & (112u << 23);
    moe_v16f sub = __builtin_convertvector((moe_v16i)em, moe_v16f) * 5.9604644775390625e-8f;
    moe_v16u32 subu;
    memcpy(&subu, &sub, sizeof subu);
    moe_v16u32 r = ((norm & ~small) | (subu & small)) | sign;
    memcpy(v, &r, sizeof *v);
}
MOE_INLINE float moe_f16_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, em = h & 0x7fffu, r;
    if (em < 0x400u) {
        float f = (float)em * 5.9604644775390625e-8f;
        memcpy(&r, &f, 4);
    } else {
        r = (em << 13) + (112u << 23) + (em >= 0x7c00u ? 112u << 23 : 0);
    }
    r |= sign;
    float f;
    memcpy(&f, &r, 4);
    return f;
}
MOE_INLINE float moe_h16_f32(uint16_t h, int f16) { return f16 ? moe_f16_f32(h) : moe_bf16_f32(h); }

/* e^x for 16 lanes, each alone (so any width gives the same bits), within
 * about 1 ulp of the true value, for x <= 88; below -87 it is 0 (a softmax
 * term 2^-125 of its largest: nothing). e^x = 2^n e^r with n = round(x /
 * ln 2) (by the 1.5 * 2^23 rounding trick) and r = x - n ln 2 in two steps
 * (ln 2 split so n * hi is exact), |r| <= ln 2 / 2; e^r by its Taylor series
 * to r^7 (the next term under 1e-8 relative), Horner; 2^n added to the
 * exponent. Measured against exp() in double on every float in [-87, 0]:
 * under 1.25 ulp (tests/unit/test_kernels.c). */
MOE_INLINE void moe_exp16(moe_v16f *v) {
    const float magic = 12582912.0f; /* 1.5 * 2^23 */
    const moe_v16f floor87 = (moe_v16f){0} - 87.0f;
    moe_v16f x = *v;
    moe_v16i low = x < floor87; /* all ones where below: computed at -87, zeroed at the end */
    x = (moe_v16f)(((moe_v16i)x & ~low) | ((moe_v16i)floor87 & low));
    moe_v16f n = (x * 1.44269504f + magic) - magic;
    moe_v16f r = (x - n * 0.693145752f) - n * 1.42860677e-6f;
    moe_v16f p = r * (1.0f / 5040) + (1.0f / 720);
    p = p * r + (1.0f / 120);
    p = p * r + (1.0f / 24);
    p = p * r + (1.0f / 6);
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    moe_v16i e = (__builtin_convertvector(n, moe_v16i) + 127) << 23;
    moe_v16f y = p * (moe_v16f)e;
    *v = (moe_v16f)((moe_v16i)y & ~low);
}

/* sum a[i] b[i]: 16 lanes over whole steps of 16, reduced, then the tail in order. */
MOE_INLINE float moe_dot16(const float *a, const float *b, int n) {
    moe_v16f acc = {0}, x, y;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        moe_load16(&x, a + i), moe_load16(&y, b + i);
        acc += x * y;
    }
    float s = moe_reduce16(&acc);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

#endif
