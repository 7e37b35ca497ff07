/* bench_infer.c: CPU inference speed of the shipped model, all weights in RAM.
 *
 *   bench infer_prefill <tok/s> tok/s        256-byte prompt, one forward call (best of 3)
 *   bench infer_decode <tok/s> tok/s         128 greedy tokens after a 16-byte prompt
 *   bench infer_matvec_baseline <GFLOP/s>    plain single-thread dense matvec (naive loop,
 *                                            -O2) over as many weights as one decoded token
 *                                            touches (attention + router + top-k experts + lm_head)
 *   bench infer_decode_gflops <GFLOP/s>      the same weight work per token, done by decode
 *   bench infer_decode_vs_baseline <x> ratio decode / baseline
 * MOESIM_BENCH_MODEL=DIR benchmarks another model; without one it skips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../backend/engine.h"
#include "bench.h"

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* The baseline kernel: one row at a time, one accumulator. */
static float naive_matvec(const float *W, const float *x, float *y, long rows, long cols) {
    float chk = 0;
    for (long r = 0; r < rows; r++) {
        float s = 0;
        for (long c = 0; c < cols; c++) s += W[r * cols + c] * x[c];
        y[r] = s;
        chk += s;
    }
    return chk;
}

int main(void) {
    const char *dir = getenv("MOESIM_BENCH_MODEL");
    if (!dir) dir = "models/tinymix";
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    if (access(cfg, R_OK)) {
        printf("bench_infer: skipped, %s not present (set MOESIM_BENCH_MODEL=DIR)\n", cfg);
        return 0;
    }
    moe_error err = {{0}};
    moe_model *m = moe_model_load(dir, &err);
    if (!m) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    const moe_model_config *c = &m->cfg;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = ncpu > 0 ? (int)ncpu : 1;
    moe_engine *e = moe_engine_new(m, threads, 512, &err);
    float *logits = malloc((size_t)c->vocab * sizeof(float));
    if (!e || !logits) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    static const char text[] = "#include <stdio.h>\n#include <stdlib.h>\n\n/* Count the lines of a file. */\n"
                               "int main(int argc, char **argv) {\n    FILE *f = fopen(argv[1], \"r\");\n"
                               "    int c, n = 0;\n    if (!f) return 1;\n    while ((c = fgetc(f)) != EOF)\n"
                               "        if (c == '\\n') n++;\n    printf(\"%d\\n\", n);\n    return 0;\n}\n";
    int prompt[256];
    for (int i = 0; i < 256; i++) prompt[i] = (unsigned char)text[i % (sizeof text - 1)] % c->vocab;
    double best = 1e30;
    for (int rep = 0; rep < 3; rep++) {
        moe_engine_reset(e);
        double t0 = now();
        if (moe_engine_forward(e, prompt, 256, logits, 0, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("bench infer_prefill %.1f tok/s\n", 256 / best);
    moe_engine_reset(e);
    if (moe_engine_forward(e, prompt, 16, logits, 0, NULL, &err)) return 1;
    double t0 = now();
    for (int i = 0; i < 128; i++) {
        int tok = argmax(logits, c->vocab);
        if (moe_engine_forward(e, &tok, 1, logits, 0, NULL, &err)) { fprintf(stderr, "%s\n", err.msg); return 1; }
    }
    double decode = 128 / (now() - t0);
    printf("bench infer_decode %.1f tok/s\n", decode);
    /* weights one decoded token multiplies (per MoE layer top_k experts) */
    long H = c->hidden, Q = (long)c->n_heads * c->head_dim, KV = (long)c->n_kv_heads * c->head_dim;
    long per_tok = (long)c->vocab * H;
    for (int l = 0; l < c->n_layers; l++) {
        per_tok += 2 * Q * H + 2 * KV * H;
        per_tok += c->is_moe[l] ? (long)c->n_experts * H + (long)c->top_k * 3 * H * c->expert_inter +
                                      (c->shared_inter ? 3 * H * c->shared_inter + H : 0)
                                : 3 * H * c->dense_inter;
    }
    long cols = H, rows = per_tok / cols;
    float *W = malloc((size_t)rows * cols * sizeof(float)), *x = malloc((size_t)cols * sizeof(float)),
          *y = malloc((size_t)rows * sizeof(float));
    for (long i = 0; i < rows * cols; i++) W[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    for (long i = 0; i < cols; i++) x[i] = (float)i * 1e-2f;
    volatile float sink = naive_matvec(W, x, y, rows, cols);
    int reps = 0;
    t0 = now();
    double dt;
    do {
        sink += naive_matvec(W, x, y, rows, cols);
        reps++;
    } while ((dt = now() - t0) < 0.5);
    (void)sink;
    double base = 2.0 * rows * cols * reps / dt * 1e-9, eng = 2.0 * per_tok * decode * 1e-9;
    printf("bench infer_matvec_baseline %.2f GFLOP/s\n", base);
    printf("bench infer_decode_gflops %.2f GFLOP/s\n", eng);
    printf("bench infer_decode_vs_baseline %.2f ratio\n", eng / base);
    fprintf(stderr, "bench_infer: %s, %d threads, %.2f M weights per decoded token\n", m->name, threads, per_tok / 1e6);
    free(W); free(x); free(y); free(logits);
    moe_engine_free(e);
    moe_model_free(m);
    return 0;
}
