/* bench_infer.c: CPU inference speed of the shipped model (bf16 experts,
 * all weights in RAM) against this machine's own limits, measured in the
 * same run, interleaved, best of 3:
 *
 *   bench infer_peak_gflops <GFLOP/s>              one thread's multiply-then-add rate on
 *                                                  16-lane vectors (the kernels' instruction mix,
 *                                                  widest path), from registers
 *   bench infer_mem_gbps <GB/s>                    one thread streaming 256 MiB
 *   bench infer_prefill_tN <tok/s>                 a 512-byte prompt, N threads
 *   bench infer_decode_ctx0_tN <tok/s>             128 greedy tokens after 1 prompt byte
 *   bench infer_decode_ctx512_tN <tok/s>           128 greedy tokens after the 512-byte prompt
 *   bench infer_prefill_vs_peak <x> ratio          prefill's GFLOP/s (2 per weight use) / peak
 *   bench infer_decode_vs_dram_ceiling <x> ratio   decode at context 0 / (memory rate / bytes of
 *                                                  bf16 weights one token reads)
 *
 * With MOESIM_LLAMA_BENCH=PATH/llama-bench and MOESIM_LLAMA_GGUF=F (the same
 * model converted, ../shared/peer-llamacpp/), llama.cpp runs interleaved
 * with moesim at 1 thread and the lines infer_llama_* (its tok/s) and
 * infer_vs_llama_* (moesim / llama.cpp) follow; its decode at context 512
 * is derived from its pp512 and pp512+tg128 figures.
 * MOESIM_BENCH_MODEL=DIR benchmarks another model; without one it skips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../backend/engine.h"
#include "../../backend/simd.h"
#include "bench.h"

/* 16 independent 16-lane multiply-then-add chains: a * x + y per lane,
 * repeated; operands in registers. Returns GFLOP/s (2 per lane step). */
MOE_SIMD_CLONES static double peak_gflops(void) {
    moe_v16f acc[8], m = (moe_v16f){0} + 0.999999f, a = (moe_v16f){0} + 1e-7f;
    for (int k = 0; k < 8; k++) acc[k] = (moe_v16f){0} + (float)k;
    long iters = 0;
    double t0 = now(), dt;
    do {
        for (int i = 0; i < 4096; i++)
#pragma GCC unroll 8
            for (int k = 0; k < 8; k++) acc[k] = acc[k] * m + a;
        iters += 4096;
    } while ((dt = now() - t0) < 0.3);
    volatile float sink = 0;
    for (int k = 0; k < 8; k++) sink += acc[k][0];
    (void)sink;
    return 2.0 * 16 * 8 * (double)iters / dt * 1e-9;
}

/* One thread reading 256 MiB with vector loads (best of 3): GB/s. */
MOE_SIMD_CLONES static double mem_gbps(void) {
    size_t n = (size_t)64 << 20; /* floats */
    float *b = malloc(n * sizeof *b);
    if (!b) return 0;
    for (size_t i = 0; i < n; i++) b[i] = (float)(i & 1023);
    double best = 1e30;
    volatile float sink = 0;
    for (int rep = 0; rep < 3; rep++) {
        moe_v16f s0 = {0}, s1 = {0}, v0, v1;
        double t0 = now();
        for (size_t i = 0; i < n; i += 32) {
            moe_load16(&v0, b + i), moe_load16(&v1, b + i + 16);
            s0 += v0, s1 += v1;
        }
        double dt = now() - t0;
        sink += s0[0] + s1[0];
        if (dt < best) best = dt;
    }
    (void)sink;
    free(b);
    return (double)n * sizeof(float) / best * 1e-9;
}

static int argmax(const float *v, int n) {
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

typedef struct speeds {
    double prefill, decode0, decode512;
} speeds;

/* Prefill of the 512 prompt tokens; decode of 128 after 1 token and after all 512. */
static int measure(moe_engine *e, const int *prompt, int V, float *logits, speeds *out, moe_error *err) {
    moe_engine_reset(e);
    double t0 = now();
    if (moe_engine_forward(e, prompt, 512, logits, 0, NULL, err)) return -1;
    double pre = now() - t0;
    double d512 = 0, d0 = 0;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            moe_engine_reset(e);
            if (moe_engine_forward(e, prompt, 1, logits, 0, NULL, err)) return -1;
        }
        t0 = now();
        for (int i = 0; i < 128; i++) {
            int tok = argmax(logits, V);
            if (moe_engine_forward(e, &tok, 1, logits, 0, NULL, err)) return -1;
        }
        *(pass ? &d0 : &d512) = now() - t0;
    }
    out->prefill = 512 / pre, out->decode0 = 128 / d0, out->decode512 = 128 / d512;
    return 0;
}

/* llama-bench at 1 thread: pp512, tg128, pp512+tg128 in tok/s (0 if it failed). */
static void llama(const char *bin, const char *gguf, double *pp, double *tg, double *pg) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' -m '%s' -p 512 -n 128 -pg 512,128 -t 1 -r 3 -o csv 2>/dev/null", bin, gguf);
    *pp = *tg = *pg = 0;
    FILE *f = popen(cmd, "r");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        /* the last two fields are avg_ts and stddev_ts; n_prompt, n_gen come 7 and 6 before the end */
        char *field[64];
        int nf = 0;
        for (char *p = strtok(line, ","); p && nf < 64; p = strtok(NULL, ",")) field[nf++] = p;
        if (nf < 8 || !strcmp(field[nf - 2], "avg_ts")) continue;
        double ts = atof(field[nf - 2] + (field[nf - 2][0] == '"'));
        int np = atoi(field[nf - 7] + (field[nf - 7][0] == '"')), ng = atoi(field[nf - 6] + (field[nf - 6][0] == '"'));
        if (np && ng) *pg = ts;
        else if (np) *pp = ts;
        else *tg = ts;
    }
    pclose(f);
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
    moe_engine *e1 = moe_engine_new(m, 1, 1024, &err), *e2 = e1 ? moe_engine_new(m, 2, 1024, &err) : NULL;
    float *logits = malloc((size_t)c->vocab * sizeof(float));
    if (!e2 || !logits) {
        fprintf(stderr, "bench_infer: %s\n", err.msg);
        return 1;
    }
    static const char text[] = "#include <stdio.h>\n#include <stdlib.h>\n\n/* Count the lines of a file. */\n"
                               "int main(int argc, char **argv) {\n    FILE *f = fopen(argv[1], \"r\");\n"
                               "    int c, n = 0;\n    if (!f) return 1;\n    while ((c = fgetc(f)) != EOF)\n"
                               "        if (c == '\\n') n++;\n    printf(\"%d\\n\", n);\n    return 0;\n}\n";
    int prompt[512];
    for (int i = 0; i < 512; i++) prompt[i] = (unsigned char)text[i % (sizeof text - 1)] % c->vocab;
    const char *lb = getenv("MOESIM_LLAMA_BENCH"), *lg = getenv("MOESIM_LLAMA_GGUF");
    int with_llama = lb && lg && access(lb, X_OK) == 0 && access(lg, R_OK) == 0;
    speeds best[2] = {{0}}, s;
    double peak = 0, bw = 0, lpp = 0, ltg = 0, lpg = 0;
    for (int round = 0; round < 3; round++) { /* interleaved: each round measures everything once */
        double p = peak_gflops(), b = mem_gbps();
        if (p > peak) peak = p;
        if (b > bw) bw = b;
        for (int t = 0; t < 2; t++) {
            if (measure(t ? e2 : e1, prompt, c->vocab, logits, &s, &err)) {
                fprintf(stderr, "bench_infer: %s\n", err.msg);
                return 1;
            }
            if (s.prefill > best[t].prefill) best[t].prefill = s.prefill;
            if (s.decode0 > best[t].decode0) best[t].decode0 = s.decode0;
            if (s.decode512 > best[t].decode512) best[t].decode512 = s.decode512;
        }
        if (with_llama) {
            double pp, tg, pg;
            llama(lb, lg, &pp, &tg, &pg);
            if (pp > lpp) lpp = pp;
            if (tg > ltg) ltg = tg;
            if (pg > lpg) lpg = pg;
        }
    }
    printf("bench infer_peak_gflops %.1f GFLOP/s\n", peak);
    printf("bench infer_mem_gbps %.1f GB/s\n", bw);
    for (int t = 0; t < 2; t++) {
        printf("bench infer_prefill_t%d %.1f tok/s\n", t + 1, best[t].prefill);
        printf("bench infer_decode_ctx0_t%d %.1f tok/s\n", t + 1, best[t].decode0);
        printf("bench infer_decode_ctx512_t%d %.1f tok/s\n", t + 1, best[t].decode512);
    }
    /* weights one token multiplies: attention, routers, top-k experts, LM head */
    long H = c->hidden, Q = (long)c->n_heads * c->head_dim, KV = (long)c->n_kv_heads * c->head_dim;
    long per_tok = (long)c->vocab * H;
    for (int l = 0; l < c->n_layers; l++) {
        per_tok += 2 * Q * H + 2 * KV * H;
        per_tok += c->is_moe[l] ? (long)c->n_experts * H + (long)c->top_k * 3 * H * c->expert_inter +
                                      (c->shared_inter ? 3 * H * c->shared_inter + H : 0)
                                : 3 * H * c->dense_inter;
    }
    double ceiling = bw * 1e9 / (2.0 * (double)per_tok); /* bf16: 2 bytes a weight */
    printf("bench infer_prefill_vs_peak %.3f ratio\n", 2.0 * (double)per_tok * best[0].prefill * 1e-9 / peak);
    printf("bench infer_decode_vs_dram_ceiling %.2f ratio\n", best[0].decode0 / ceiling);
    fprintf(stderr, "bench_infer: %s, %.2f M weights per token, DRAM-bound decode ceiling %.0f tok/s (bf16)\n",
            m->name, (double)per_tok / 1e6, ceiling);
    if (with_llama && lpp > 0 && ltg > 0 && lpg > 0) {
        /* llama.cpp's decode at context 512: pp512+tg128 takes 640/pg s, of which 512/pp prefill */
        double l512 = 128.0 / (640.0 / lpg - 512.0 / lpp);
        printf("bench infer_llama_prefill_t1 %.1f tok/s\n", lpp);
        printf("bench infer_llama_decode_ctx0_t1 %.1f tok/s\n", ltg);
        printf("bench infer_llama_decode_ctx512_t1 %.1f tok/s\n", l512);
        printf("bench infer_vs_llama_prefill %.2f ratio\n", best[0].prefill / lpp);
        printf("bench infer_vs_llama_decode_ctx0 %.2f ratio\n", best[0].decode0 / ltg);
        printf("bench infer_vs_llama_decode_ctx512 %.2f ratio\n", best[0].decode512 / l512);
    } else if (lb || lg) {
        fprintf(stderr, "bench_infer: MOESIM_LLAMA_BENCH and MOESIM_LLAMA_GGUF must both name existing files; "
                        "llama.cpp not run\n");
    }
    free(logits);
    moe_engine_free(e1);
    moe_engine_free(e2);
    moe_model_free(m);
    return 0;
}
