/* bench_quant.c: the quantized kernels (backend/quant.h) against the bf16
 * kernel a bf16 model's weights use (and the f32 one), measured in one run,
 * interleaved, best of 5 rounds, one thread:
 *
 *   bench quant_matvec_f32 <GB/s> GB/s       y = W x, W 2048 x 4096 f32 (32 MiB)
 *   bench quant_matvec_bf16 <GB/s> GB/s      the same matrix in bf16 (16 MiB)
 *   bench quant_matvec_qB <GB/s> GB/s        the same matrix quantized to B bits:
 *                                            packed bytes read per second
 *   bench quant_matvec_qB_vs_f32 <x> ratio   matvecs per second against f32
 *   bench quant_matvec_qB_vs_bf16 <x> ratio  matvecs per second against bf16
 *   bench quant_decode_qB <tok/s> tok/s      the shipped model decoding with
 *                                            every expert at B bits (16 = as
 *                                            loaded: bf16), all threads
 * MOESIM_BENCH_MODEL=DIR decodes another model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../backend/engine.h"
#include "../../backend/expert_quant.h"
#include "../../backend/matmul.h"
#include "../../backend/quant.h"
#include "../../core/device_profile.h"
#include "../../core/trace.h"
#include "bench.h"

#define R 2048
#define C 4096
#define ROUNDS 5

static const int widths[] = {8, 4, 3, 2};

static double time_f32(moe_pool *p, const float *W, const float *x, float *y, int reps) {
    double t0 = now();
    for (int i = 0; i < reps; i++) moe_matmul(p, y, W, NULL, x, 1, R, C);
    return (now() - t0) / reps;
}

static double time_bf16(moe_pool *p, const uint16_t *W, const float *x, float *y, int reps) {
    double t0 = now();
    for (int i = 0; i < reps; i++) moe_matmul_mat(p, y, (moe_mat){.h16 = W}, NULL, x, 1, R, C);
    return (now() - t0) / reps;
}

static double time_q(moe_pool *p, const moe_qmat *q, const float *x, float *y, int reps) {
    double t0 = now();
    for (int i = 0; i < reps; i++) moe_qmatmul(p, y, q, x, 1);
    return (now() - t0) / reps;
}

/* Decode tok/s: 64 greedy tokens after an 8-byte prompt. */
static double decode_tok_s(moe_engine *e, int V) {
    static const int prompt[8] = {'i', 'n', 't', ' ', 'm', 'a', 'i', 'n'};
    float *logits = malloc((size_t)V * sizeof *logits);
    moe_error err = {{0}};
    moe_engine_reset(e);
    if (!logits || moe_engine_forward(e, prompt, 8, logits, 0, NULL, &err)) return free(logits), 0;
    double t0 = now();
    for (int i = 0; i < 64; i++) {
        int tok = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[tok]) tok = v;
        if (moe_engine_forward(e, &tok, 1, logits, 0, NULL, &err)) return free(logits), 0;
    }
    double dt = now() - t0;
    free(logits);
    return 64 / dt;
}

int main(void) {
    moe_error err = {{0}};
    float *W = malloc(sizeof(float) * R * C), *x = malloc(sizeof(float) * C), *y = malloc(sizeof(float) * R);
    moe_pool *p = moe_pool_new(1);
    if (!W || !x || !y || !p) return fprintf(stderr, "bench_quant: out of memory\n"), 1;
    uint64_t s = 9;
    for (size_t i = 0; i < (size_t)R * C; i++) W[i] = (float)((double)(sm64(&s) >> 11) / 9007199254740992.0 - 0.5);
    for (int i = 0; i < C; i++) x[i] = (float)((double)(sm64(&s) >> 11) / 9007199254740992.0 - 0.5);
    uint16_t *Wb = malloc(sizeof(uint16_t) * R * C);
    if (!Wb) return fprintf(stderr, "bench_quant: out of memory\n"), 1;
    for (size_t i = 0; i < (size_t)R * C; i++) {
        uint32_t u;
        memcpy(&u, &W[i], 4);
        Wb[i] = (uint16_t)(u >> 16);
    }
    moe_qmat q[4];
    for (int k = 0; k < 4; k++)
        if (moe_qmat_quantize(&q[k], W, R, C, widths[k], &err)) return fprintf(stderr, "bench_quant: %s\n", err.msg), 1;
    double best_f = 1e9, best_b = 1e9, best_q[4] = {1e9, 1e9, 1e9, 1e9};
    for (int round = 0; round < ROUNDS; round++) { /* interleaved: the machine's noise hits all alike */
        double t = time_f32(p, W, x, y, 10);
        if (t < best_f) best_f = t;
        t = time_bf16(p, Wb, x, y, 10);
        if (t < best_b) best_b = t;
        for (int k = 0; k < 4; k++) {
            t = time_q(p, &q[k], x, y, 10);
            if (t < best_q[k]) best_q[k] = t;
        }
    }
    printf("bench quant_matvec_f32 %.2f GB/s\n", (double)R * C * 4 / best_f / 1e9);
    printf("bench quant_matvec_bf16 %.2f GB/s\n", (double)R * C * 2 / best_b / 1e9);
    for (int k = 0; k < 4; k++) {
        printf("bench quant_matvec_q%d %.2f GB/s\n", widths[k], (double)moe_qmat_bytes(R, C, widths[k]) / best_q[k] / 1e9);
        printf("bench quant_matvec_q%d_vs_f32 %.2f ratio\n", widths[k], best_f / best_q[k]);
        printf("bench quant_matvec_q%d_vs_bf16 %.2f ratio\n", widths[k], best_b / best_q[k]);
        moe_qmat_free(&q[k]);
    }
    free(W), free(Wb), free(x), free(y);
    moe_pool_free(p);

    const char *dir = getenv("MOESIM_BENCH_MODEL");
    if (!dir) dir = "models/tinymix";
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (access(cfg, R_OK)) {
        printf("bench_quant: decode skipped, %s not present\n", cfg);
        return 0;
    }
    moe_model *m = moe_model_load(dir, &err);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    moe_engine *e = m ? moe_engine_new(m, ncpu > 0 ? (int)ncpu : 1, 128, &err) : NULL;
    if (!e) return fprintf(stderr, "bench_quant: %s\n", err.msg), 1;
    size_t n = (size_t)m->cfg.n_moe_layers * m->cfg.n_experts;
    uint8_t *tier = malloc(n);
    moe_qexperts *qx[4] = {0};
    for (int k = 0; k < 4 && tier; k++) {
        memset(tier, moe_prec_of_bits(widths[k]), n);
        if (!(qx[k] = moe_qexperts_new(m, tier, &err))) return fprintf(stderr, "bench_quant: %s\n", err.msg), 1;
    }
    double best16 = 0, bestk[4] = {0};
    for (int round = 0; round < 3; round++) {
        moe_engine_set_quantized(e, NULL, &err);
        double r = decode_tok_s(e, m->cfg.vocab);
        if (r > best16) best16 = r;
        for (int k = 0; k < 4; k++) {
            moe_engine_set_quantized(e, qx[k], &err);
            r = decode_tok_s(e, m->cfg.vocab);
            if (r > bestk[k]) bestk[k] = r;
        }
    }
    printf("bench quant_decode_q16 %.1f tok/s\n", best16);
    for (int k = 0; k < 4; k++) printf("bench quant_decode_q%d %.1f tok/s\n", widths[k], bestk[k]);
    for (int k = 0; k < 4; k++) moe_qexperts_free(qx[k]);
    free(tier);
    moe_engine_free(e);
    moe_model_free(m);
    return 0;
}
