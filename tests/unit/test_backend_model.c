/* test_backend_model.c: the engine on tiny random Mixtrals written by
 * tests/tools/make_tiny_model.py: agreement with an independent pure-Python
 * forward (tests/tools/ref_forward.py), both expert layouts and all dtypes
 * bit-identical, thread count and batch/decode invariance, trace capture,
 * sampling. Skipped when python3 is missing. */
#include <cjson/cJSON.h>
#include <math.h>
#include <unistd.h>

#include "../../backend/capture.h"
#include "../../backend/engine.h"
#include "../../backend/sample.h"
#include "check.h"

static char tmpdir[64]; /* created by main, removed at the end */

static int sh(const char *fmt, const char *a, const char *b) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}

/* tmpdir/name made by make_tiny_model.py with extra args (once per name). */
static const char *tiny(const char *name, const char *args) {
    static char path[8][128];
    static int n;
    char *p = path[n++ % 8];
    snprintf(p, 128, "%s/%s", tmpdir, name);
    if (access(p, F_OK)) {
        char a[512];
        snprintf(a, sizeof a, "%s %s", p, args);
        if (sh("python3 tests/tools/make_tiny_model.py %s%s", a, "")) return NULL;
    }
    return p;
}

static const int prompt[] = {105, 110, 116, 32, 109, 97, 105, 110, 40, 118, 111, 105, 100};
#define NP ((int)(sizeof prompt / sizeof *prompt))

/* All-token logits of a model dir for `prompt`, threads t. */
static float *run_logits(const char *dir, int threads, int n) {
    moe_error err = {{0}};
    moe_model *m = moe_model_load(dir, &err);
    if (!m) { printf("info %s\n", err.msg); return NULL; }
    moe_engine *e = moe_engine_new(m, threads, 256, &err);
    float *lg = malloc((size_t)n * m->cfg.vocab * sizeof(float));
    int *tok = malloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) tok[i] = prompt[i % NP] + i / NP;
    if (!e || moe_engine_forward(e, tok, n, lg, 1, NULL, &err)) {
        printf("info %s\n", err.msg);
        free(lg);
        lg = NULL;
    }
    free(tok);
    moe_engine_free(e);
    moe_model_free(m);
    return lg;
}

static void matches_python_reference(void) {
    const char *d = tiny("ref", "--seed 3 --layers 2 --experts 8 --top-k 2");
    CHECK(d);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "python3 tests/tools/ref_forward.py %s 105,110,116,32,109,97,105,110,40", d);
    FILE *f = popen(cmd, "r");
    CHECK(f);
    size_t cap = 1 << 20, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    pclose(f);
    cJSON *j = cJSON_Parse(buf);
    free(buf);
    CHECK(j);
    moe_error err = {{0}};
    moe_model *m = moe_model_load(d, &err);
    CHECK(m);
    int T = 9, V = m->cfg.vocab, L = m->cfg.n_moe_layers, K = m->cfg.top_k;
    moe_engine *e = moe_engine_new(m, 2, 16, &err);
    float *lg = malloc((size_t)T * V * sizeof(float));
    moe_routing rt = {.experts = malloc((size_t)T * L * K * sizeof(int)), .weights = malloc((size_t)T * L * K * sizeof(float))};
    CHECK(moe_engine_forward(e, prompt, T, lg, 1, &rt, &err) == 0);
    double num = 0, den = 0, werr = 0;
    int mism = 0;
    for (int t = 0; t < T; t++) {
        const cJSON *row = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "logits"), t);
        for (int v = 0; v < V; v++) {
            double ref = cJSON_GetArrayItem(row, v)->valuedouble;
            num = fmax(num, fabs(lg[t * V + v] - ref));
            den = fmax(den, fabs(ref));
        }
        for (int l = 0; l < L; l++)
            for (int s = 0; s < K; s++) {
                int ex = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "experts"), t), l), s)->valueint;
                double w = cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "weights"), t), l), s)->valuedouble;
                mism += ex != rt.experts[(t * L + l) * K + s];
                werr = fmax(werr, fabs(w - rt.weights[(t * L + l) * K + s]));
            }
    }
    printf("info python reference: logits rel err %.3g, routing mismatches %d, weights max abs err %.3g\n", num / den,
           mism, werr);
    cJSON_Delete(j);
    free(lg); free(rt.experts); free(rt.weights);
    moe_engine_free(e);
    moe_model_free(m);
    CHECK(num / den < 1e-5);
    CHECK_EQ_U(mism, 0);
    CHECK(werr < 1e-5);
}

/* Same values in another layout or dtype widen exactly to the same f32, so
 * outputs must be bit-identical. */
static void layouts_and_dtypes_identical(void) {
    const char *fused = tiny("f32", "--seed 5");
    const char *per = tiny("f32pe", "--seed 5 --layout per-expert");
    CHECK(fused && per);
    float *a = run_logits(fused, 2, NP), *b = run_logits(per, 2, NP);
    CHECK(a && b);
    CHECK(!memcmp(a, b, (size_t)NP * 256 * 4));
    free(a); free(b);
    const char *dts[] = {"BF16", "F16"};
    for (int i = 0; i < 2; i++) {
        char name[16], args[64], conv[128];
        snprintf(name, sizeof name, "d%s", dts[i]);
        snprintf(args, sizeof args, "--seed 6 --dtype %s", dts[i]);
        const char *src = tiny(name, args);
        CHECK(src);
        snprintf(conv, sizeof conv, "%s.pe32", src);
        CHECK(sh("python3 tests/tools/convert_layout.py %s %s --to per-expert --f32", src, conv) == 0);
        a = run_logits(src, 2, NP);
        b = run_logits(conv, 1, NP);
        CHECK(a && b);
        int same = !memcmp(a, b, (size_t)NP * 256 * 4);
        free(a); free(b);
        CHECK(same);
    }
}

static void thread_count_invariant(void) {
    const char *d = tiny("f32", "--seed 5");
    float *a = run_logits(d, 1, 40), *b = run_logits(d, 2, 40), *c = run_logits(d, 3, 40);
    CHECK(a && b && c);
    int same = !memcmp(a, b, 40 * 256 * 4) && !memcmp(a, c, 40 * 256 * 4);
    free(a); free(b); free(c);
    CHECK(same);
}

/* 150 tokens in one call (internal chunks of 128 and 22) == 150 decode calls of one token. */
static void prefill_equals_decode(void) {
    const char *d = tiny("f32", "--seed 5");
    float *a = run_logits(d, 2, 150);
    CHECK(a);
    moe_error err = {{0}};
    moe_model *m = moe_model_load(d, &err);
    moe_engine *e = moe_engine_new(m, 2, 256, &err);
    float *b = malloc(150 * 256 * sizeof(float));
    int ok = 1;
    for (int i = 0; i < 150 && ok; i++) {
        int tok = prompt[i % NP] + i / NP;
        ok = moe_engine_forward(e, &tok, 1, b + i * 256, 0, NULL, &err) == 0;
    }
    int same = ok && !memcmp(a, b, 150 * 256 * 4);
    free(a); free(b);
    moe_engine_free(e);
    moe_model_free(m);
    CHECK(same);
}

static void tied_embeddings_load(void) {
    const char *d = tiny("tied", "--seed 7 --tie");
    CHECK(d);
    moe_error err = {{0}};
    moe_model *m = moe_model_load(d, &err);
    CHECK(m);
    int ok = m->lm_head.f32 == m->embed.f32 && m->lm_head.h16 == m->embed.h16;
    moe_model_free(m);
    CHECK(ok);
}

static void capture_builds_trace(void) {
    const char *d = tiny("cap", "--seed 8 --layers 3 --experts 8 --top-k 2");
    CHECK(d);
    moe_error err = {{0}};
    moe_model *m = moe_model_load(d, &err);
    CHECK(m);
    moe_engine *e = moe_engine_new(m, 2, 32, &err);
    moe_capture *cap = moe_capture_new(m, 1, 2, NP);
    CHECK(e && cap);
    moe_routing *r = moe_capture_routing(cap);
    float lg[256];
    CHECK(moe_engine_forward(e, prompt, NP, lg, 0, r, &err) == 0);
    CHECK(moe_capture_step(cap, MOE_PHASE_PREFILL, 0, 0, NP, &err) == 0);
    int first_expert = r->experts[0];
    for (int i = 0; i < 3; i++) {
        int tok = 65 + i, pos = moe_engine_pos(e);
        CHECK(moe_engine_forward(e, &tok, 1, lg, 0, r, &err) == 0);
        CHECK(moe_capture_step(cap, MOE_PHASE_DECODE, 0, pos, 1, &err) == 0);
    }
    moe_trace *t = moe_capture_finish(cap, "test", &err);
    if (!t) printf("info %s\n", err.msg);
    CHECK(t);
    CHECK_EQ_U(t->n_steps, 4);
    CHECK_EQ_U(t->n_tokens, NP + 3);
    CHECK_EQ_U(t->n_layers, 3);
    CHECK_EQ_U(t->lookahead_depth, 2);
    CHECK_EQ_U(t->step_phase[0], MOE_PHASE_PREFILL);
    CHECK_EQ_U(t->step_phase[3], MOE_PHASE_DECODE);
    CHECK_EQ_U(t->token_pos[NP + 2], NP + 2);
    CHECK_EQ_U(t->experts[0], first_expert);
    CHECK(t->router_logits && t->weights);
    /* layer 2 is the last: its lookahead is empty; layer 1 has d=1 only */
    uint16_t *la2 = t->lookahead + ((size_t)0 * 3 + 2) * 2 * 2;
    uint16_t *la1 = t->lookahead + ((size_t)0 * 3 + 1) * 2 * 2;
    CHECK(la2[0] == MOE_NO_EXPERT && la2[3] == MOE_NO_EXPERT);
    CHECK(la1[0] < 8 && la1[1] < 8 && la1[2] == MOE_NO_EXPERT);
    /* bytes per expert: 3 * H * I params (H 32, I 48); Q4 the packed blocks
     * (backend/quant.h): gate+up 96 rows of 32 inputs, 16 bytes each, one
     * group (bf16 scale + bias, 4 bytes) a row: 96 * 20 = 1920; down 32
     * rows of 48 inputs, 24 bytes + 4 a row: 32 * 28 = 896 */
    CHECK_EQ_U(t->expert_bytes[MOE_PREC_F32], 4 * 3 * 32 * 48);
    CHECK_EQ_U(t->expert_bytes[MOE_PREC_Q4], 96 * 20 + 32 * 28);
    moe_trace_free(t);
    moe_engine_free(e);
    moe_model_free(m);
}

static void sampling(void) {
    float lg[256];
    for (int i = 0; i < 256; i++) lg[i] = (float)((i * 37) % 101) / 10.0f;
    moe_sampler a, b, g, p;
    CHECK(moe_sampler_init(&a, 256, 0.8f, 0.9f, 42) == 0);
    CHECK(moe_sampler_init(&b, 256, 0.8f, 0.9f, 42) == 0);
    CHECK(moe_sampler_init(&g, 256, 0, 1, 1) == 0);
    CHECK(moe_sampler_init(&p, 256, 1.0f, 1e-6f, 3) == 0);
    int best = 0;
    for (int i = 1; i < 256; i++)
        if (lg[i] > lg[best]) best = i;
    int same = 1, argmax = 1, differs = 0;
    for (int i = 0; i < 50; i++) {
        int x = moe_sample(&a, lg), y = moe_sample(&b, lg);
        same &= x == y;
        differs |= x != best;
        argmax &= moe_sample(&g, lg) == best && moe_sample(&p, lg) == best;
    }
    moe_sampler_free(&a); moe_sampler_free(&b); moe_sampler_free(&g); moe_sampler_free(&p);
    CHECK(same);
    CHECK(argmax);
    CHECK(differs);
}

int main(void) {
    if (system("python3 -c 'import json' >/dev/null 2>&1")) {
        printf("SKIP test_backend_model: python3 not found\n");
        return 0;
    }
    snprintf(tmpdir, sizeof tmpdir, "/tmp/moesim-bm-XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(matches_python_reference);
    RUN(layouts_and_dtypes_identical);
    RUN(thread_count_invariant);
    RUN(prefill_equals_decode);
    RUN(tied_embeddings_load);
    RUN(capture_builds_trace);
    RUN(sampling);
    if (sh("rm -rf %s%s", tmpdir, "")) printf("info could not remove %s\n", tmpdir);
    CHECK_EXIT();
}
