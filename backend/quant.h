/* quant.h: group-wise affine quantization of a weight matrix (the scheme
 * MLX uses) and the kernel that multiplies by the packed values directly.
 *
 * A matrix W [R][C] (R output rows, C inputs) is quantized row by row in
 * groups of MOE_QGROUP = 64 consecutive columns, i.e. along the input
 * dimension. When C is not a multiple of 64 the last group of each row holds
 * the C mod 64 columns left, with its own scale and bias: nothing is padded
 * with invented weights (C = 144, the tiny model's down projection, is two
 * groups of 64 and one of 16).
 *
 * Per group: bias z and scale s, both stored as bf16 (what MLX stores for a
 * bf16 model), and w ~= s * q + z with q an unsigned b-bit integer, b in
 * {8, 4, 3, 2}:
 *     z = min(w) rounded down to bf16,
 *     s = (max(w) - z) / (2^b - 1) rounded up to bf16,
 *     q = min(round((w - z) / s), 2^b - 1)          (q = 0 when s = 0).
 * Rounding z down and s up keeps [z, z + s (2^b - 1)] around every weight,
 * so the error of each weight is at most s / 2 (plus float rounding).
 *
 * Packing: the R rows one after another, each ceil(C b / 8) bytes; a row's
 * q values form one little-endian bit stream, value j in bits
 * [j b, (j + 1) b), bit i of the stream being bit (i mod 8) of byte i / 8.
 * A group of 64 takes 8 b bytes, so every group starts on a byte. Then zero
 * padding to a multiple of 4 bytes, the scales, R x groups bf16 (row
 * major), then the biases, the same. One block
 * of moe_qmat_bytes() bytes in all; a view can point into any such block
 * (an expert pack's, later) without copying. */
#ifndef MOE_BACKEND_QUANT_H
#define MOE_BACKEND_QUANT_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "pool.h"

#define MOE_QGROUP 64

typedef struct moe_qmat {
    int rows, cols, bits, groups; /* groups = ceil(cols / 64) per row */
    size_t row_bytes;             /* ceil(cols * bits / 8) */
    const uint8_t *q;             /* [rows][row_bytes] */
    const uint16_t *scale, *bias; /* bf16 [rows][groups] */
    void *own;                    /* the block when the matrix owns it (moe_qmat_free) */
} moe_qmat;

/* 1 for a supported bit width (8, 4, 3, 2). */
int moe_qbits_ok(int bits);
/* Bytes of the packed block of an R x C matrix at `bits`. */
size_t moe_qmat_bytes(int rows, int cols, int bits);
/* The same in checked 64-bit arithmetic, for sizes read from files: 0 if
 * it overflows. */
uint64_t moe_qmat_bytes_checked(uint64_t rows, uint64_t cols, int bits);
/* Point m at a packed block (not owned). */
void moe_qmat_view(moe_qmat *m, const void *block, int rows, int cols, int bits);
/* Quantize W [rows][cols] into a block m owns. Fails on an unsupported bit
 * width, a non-finite weight (naming row and column) or out of memory. */
int moe_qmat_quantize(moe_qmat *m, const float *W, int rows, int cols, int bits, moe_error *err);
void moe_qmat_free(moe_qmat *m);

/* The q values of row r, columns [c0, c0 + n), as integers. */
void moe_qmat_unpack(const moe_qmat *m, int r, int c0, int n, uint8_t *q);
/* Row r dequantized: out[c] = s q + z, c in [0, cols). The reference the
 * kernel is tested against. */
void moe_qmat_dequant_row(const moe_qmat *m, int r, float *out);
/* bf16 bits to f32 (exact). */
float moe_bf16_to_f32(uint16_t b);

/* y [T][R] = W . x[t] for the T rows of x [T][C], computed from the packed
 * values: a full group's 64 values are unpacked to bytes once, then for each
 * token widened in registers to s q + z and multiplied into x (a short last
 * group goes through a 64-float buffer); no f32 copy of W is made. Threads
 * split the rows; every output is summed in one fixed order, so results are
 * bit-identical for any thread count and for a token alone or in a batch. */
void moe_qmatmul(moe_pool *pool, float *y, const moe_qmat *W, const float *x, int T);

#endif
