/* test_trace_fit.c: the generator calibration (core/trace_fit.h). */
#include "../../core/lrc.h"
#include "../../core/trace_fit.h"
#include "check.h"

static moe_trace *gen(uint32_t L, uint32_t E, uint32_t K, uint32_t seqs, uint32_t seq_len, double z, double loc,
                      double cl, uint64_t te, uint64_t seed) {
    moe_fit_target tg = {.layers = L, .experts = E, .top_k = K};
    moe_fit_opts o;
    moe_fit_opts_defaults(&o);
    o.seq_len = seq_len, o.prefill = 8, o.seed = seed;
    moe_gen_params p;
    moe_fit_params(&tg, &o, seqs, z, loc, cl, te, &p);
    moe_error err = {{0}};
    return moe_trace_generate(&p, &err);
}

/* The one-pass LRU curve equals moe-lrc's heap-based LRU run at every
 * capacity, including capacities below a token's L*k keys and a chunk
 * length that cuts sequences. */
static void test_lru_one_pass_matches_lrc(void) {
    moe_trace *t = gen(5, 8, 2, 4, 100, 1.2, 0.4, 0.3, 16, 3);
    CHECK(t);
    double rho[8] = {0.1, 0.3, 0.5, 1, 1.5, 2, 3, 4}, lru[8];
    moe_error err = {{0}};
    for (uint32_t seq_len = 0; seq_len <= 40; seq_len += 40) {
        CHECK(moe_fit_curves(t, seq_len, rho, 8, lru, NULL, &err) == 0);
        for (int i = 0; i < 8; i++) {
            uint64_t h, a;
            uint32_t cap = (uint32_t)(rho[i] * 5 * 2 + 1e-9);
            CHECK(moe_lrc_cache_run(t, seq_len, 5, MOE_LRC_LRU, 0, cap, &h, &a, &err) == 0);
            CHECK_NEAR(lru[i], (double)h / (double)a, 1e-12);
        }
    }
    moe_trace_free(t);
}

/* Curves of known parameters (seed 7) are recovered by a fit that starts
 * from the defaults and uses another seed (1). */
static void test_fit_recovers_known_curves(void) {
    moe_trace *t = gen(8, 8, 2, 6, 128, 1.6, 0.15, 0.6, 24, 7);
    CHECK(t);
    moe_fit_target tg = {.layers = 8, .experts = 8, .top_k = 2, .n_rho = 4, .rho = {0.5, 1, 2, 3}};
    moe_error err = {{0}};
    CHECK(moe_fit_curves(t, 128, tg.rho, 4, tg.lru, tg.belady, &err) == 0);
    moe_trace_free(t);
    moe_fit_opts o;
    moe_fit_opts_defaults(&o);
    o.fit_seqs = 6, o.seq_len = 128, o.prefill = 8, o.max_iter = 60;
    moe_fit_result r;
    CHECK(moe_trace_fit(&tg, &o, &r, &err) == 0);
    for (int i = 0; i < 4; i++) {
        CHECK_NEAR(r.lru[i], tg.lru[i], 0.03);
        CHECK_NEAR(r.belady[i], tg.belady[i], 0.03);
    }
    CHECK(r.sse < 1e-3);
    CHECK(r.iterations <= 60);
    /* deterministic: the same fit gives the same point */
    moe_fit_result r2;
    CHECK(moe_trace_fit(&tg, &o, &r2, &err) == 0);
    CHECK(r2.params.zipf_s == r.params.zipf_s && r2.params.locality == r.params.locality);
    CHECK(r2.params.cross_layer == r.params.cross_layer && r2.params.topic_every == r.params.topic_every);
    CHECK(r2.sse == r.sse);
    /* parameters stay in their bounded ranges */
    CHECK(r.params.zipf_s >= 0 && r.params.zipf_s <= 4);
    CHECK(r.params.locality >= 0 && r.params.locality <= 0.98);
    CHECK(r.params.topic_every >= 2);
}

static void test_fit_rejects_bad_targets(void) {
    moe_fit_target tg = {.layers = 4, .experts = 8, .top_k = 2, .n_rho = 1, .rho = {1}, .lru = {1.5}, .belady = {NAN}};
    moe_fit_opts o;
    moe_fit_opts_defaults(&o);
    moe_fit_result r;
    moe_error err = {{0}};
    CHECK(moe_trace_fit(&tg, &o, &r, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "not in 0..1");
    tg.lru[0] = NAN;
    CHECK(moe_trace_fit(&tg, &o, &r, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "no target");
    tg.lru[0] = 0.5, tg.top_k = 9;
    CHECK(moe_trace_fit(&tg, &o, &r, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "top-k");
    tg.top_k = 2, tg.n_rho = 0;
    CHECK(moe_trace_fit(&tg, &o, &r, &err) != 0);
}

int main(void) {
    RUN(test_lru_one_pass_matches_lrc);
    RUN(test_fit_recovers_known_curves);
    RUN(test_fit_rejects_bad_targets);
    CHECK_EXIT();
}
