/* kernel_digest.c: one number for everything the vector kernels compute, so
 * builds for different vector widths can be compared bit for bit
 * (tests/cli/test_kernel_paths.sh). Prints "digest <hex>" over:
 *  - moe_exp16 on a fixed grid of inputs;
 *  - moe_matmul_mat with f32, bf16 and f16 weights on seeded matrices, odd shapes included
 *    (a tail past 16 columns, 1 and 5 tokens);
 *  - the shipped model's logits over a held-out text: one prefill of 200
 *    bytes, then 40 decode steps, and the same 4-bit-quantized.
 * Usage: kernel_digest MODEL_DIR TEXT_FILE */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../backend/engine.h"
#include "../../backend/expert_quant.h"
#include "../../backend/matmul.h"
#include "../../backend/simd.h"
#include "../../core/device_profile.h"

static uint64_t h = 1469598103934665603ull; /* FNV-1a over the bits */
static void eat(const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static int run_model(const char *dir, const char *text_path, int quantized) {
    moe_error err = {{0}};
    moe_model *m = moe_model_load(dir, &err);
    FILE *f = fopen(text_path, "rb");
    if (!m || !f) {
        fprintf(stderr, "kernel_digest: %s\n", m ? text_path : err.msg);
        return -1;
    }
    unsigned char text[240];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    int ids[240], V = m->cfg.vocab;
    for (size_t i = 0; i < n; i++) ids[i] = text[i];
    moe_engine *e = moe_engine_new(m, 2, 256, &err);
    moe_qexperts *q = NULL;
    if (e && quantized) {
        size_t ne = (size_t)m->cfg.n_moe_layers * m->cfg.n_experts;
        uint8_t *tier = malloc(ne);
        memset(tier, moe_prec_of_bits(4), ne);
        q = moe_qexperts_new(m, tier, &err);
        free(tier);
        if (!q || moe_engine_set_quantized(e, q, &err)) e = NULL;
    }
    float *logits = malloc(sizeof(float) * 32 * (size_t)V);
    int rc = !e || !logits || n < 240 ? -1 : 0;
    /* 200 prompt bytes in chunks of 32 (every position's logits), then 40 single steps */
    for (int p = 0; !rc && p < 200; p += 32) {
        int T = 200 - p < 32 ? 200 - p : 32;
        rc = moe_engine_forward(e, ids + p, T, logits, 1, NULL, &err);
        if (!rc) eat(logits, sizeof(float) * (size_t)T * V);
    }
    for (int p = 200; !rc && p < 240; p++) {
        rc = moe_engine_forward(e, ids + p, 1, logits, 0, NULL, &err);
        if (!rc) eat(logits, sizeof(float) * (size_t)V);
    }
    if (rc) fprintf(stderr, "kernel_digest: %s\n", err.msg);
    free(logits);
    moe_engine_free(e);
    moe_qexperts_free(q);
    moe_model_free(m);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: kernel_digest MODEL_DIR TEXT_FILE\n");
        return 2;
    }
    /* exp over [-90, 0] in 4096 steps, 16 at a time */
    for (int i = 0; i < 4096; i += 16) {
        moe_v16f v;
        for (int k = 0; k < 16; k++) v[k] = -90.0f + 90.0f * (float)(i + k) / 4095.0f;
        moe_exp16(&v);
        eat(&v, sizeof v);
    }
    /* matmuls: shapes with and without a tail, 1 and 5 tokens, both weight types */
    static const int shapes[][3] = {{1, 37, 144}, {5, 37, 144}, {1, 64, 128}, {5, 9, 13}, {3, 256, 128}};
    moe_pool *pool = moe_pool_new(2);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int T = shapes[s][0], R = shapes[s][1], C = shapes[s][2];
        float *W = malloc(sizeof(float) * (size_t)R * C), *x = malloc(sizeof(float) * (size_t)T * C);
        float *y = malloc(sizeof(float) * (size_t)T * R), *bias = malloc(sizeof(float) * (size_t)R);
        uint16_t *Wb = malloc(sizeof(uint16_t) * (size_t)R * C);
        for (int i = 0; i < R * C; i++) { /* finite bf16: a NaN's payload may differ by instruction set */
            uint32_t u;
            W[i] = frand();
            memcpy(&u, &W[i], 4);
            Wb[i] = (uint16_t)(u >> 16);
        }
        for (int i = 0; i < T * C; i++) x[i] = frand();
        for (int i = 0; i < R; i++) bias[i] = frand();
        moe_matmul(pool, y, W, bias, x, T, R, C);
        eat(y, sizeof(float) * (size_t)T * R);
        moe_matmul_mat(pool, y, (moe_mat){.h16 = Wb}, NULL, x, T, R, C);
        eat(y, sizeof(float) * (size_t)T * R);
        for (int i = 0; i < R * C; i++) Wb[i] = (uint16_t)(Wb[i] & 0xbfff); /* as f16 bits: finite */
        moe_matmul_mat(pool, y, (moe_mat){.h16 = Wb, .f16 = 1}, NULL, x, T, R, C);
        eat(y, sizeof(float) * (size_t)T * R);
        free(W), free(x), free(y), free(bias), free(Wb);
    }
    moe_pool_free(pool);
    if (run_model(argv[1], argv[2], 0) || run_model(argv[1], argv[2], 1)) return 1;
    printf("digest %016llx\n", (unsigned long long)h);
    return 0;
}
