/* test_trace_stats.c: trace statistics and moe-lrc metrics on traces worked
 * by hand (definitions in core/trace_stats.h and core/lrc.h). */
#include "../../core/lrc.h"
#include "../../core/trace_stats.h"
#include "check.h"
#include "tracemaker.h"

/* Counts 4, 2, 1, 1 (E = 4, k = 2): p = 1/2, 1/4, 1/8, 1/8.
 * H = 1/2*1 + 1/4*2 + 2 * 1/8*3 = 1.75 bits; H / log2 4 = 0.875.
 * Gini: sorted 1 1 2 4, sum i*x = 1+2+6+16 = 25, G = 2*25/(4*8) - 5/4 = 0.3125
 * (mean absolute difference: ordered pairs sum 20, 20 / (2 * 16 * 2)).
 * top1 = 4/8, top2 = top-k = 6/8, top-E/4 (= top1) = 4/8. */
static void popularity(void) {
    moe_trace *t = make_trace(1, 4, 2, "0,1 / 0,1 / 0,2 / 0,3");
    CHECK(t);
    moe_trace_stats s;
    moe_error err;
    CHECK(moe_trace_stats_compute(t, &s, &err) == 0);
    CHECK_EQ_U(s.layer[0].activations, 8);
    CHECK_NEAR(s.layer[0].entropy_bits, 1.75, 1e-12);
    CHECK_NEAR(s.layer[0].entropy_norm, 0.875, 1e-12);
    CHECK_NEAR(s.layer[0].gini, 0.3125, 1e-12);
    CHECK_NEAR(s.layer[0].top1, 0.5, 1e-12);
    CHECK_NEAR(s.layer[0].top2, 0.75, 1e-12);
    CHECK_NEAR(s.layer[0].topk, 0.75, 1e-12);
    CHECK_NEAR(s.layer[0].topq, 0.5, 1e-12);
    CHECK(!s.has_lookahead);
    CHECK(isnan(s.la_recall));
    moe_trace_stats_free(&s);
    moe_trace_free(t);

    /* uniform: H = log2 E, Gini 0; one expert only: Gini (E-1)/E */
    uint64_t u[4] = {3, 3, 3, 3}, one[4] = {0, 0, 9, 0};
    moe_popularity p;
    moe_popularity_of(u, 4, 1, &p);
    CHECK_NEAR(p.entropy_bits, 2, 1e-12);
    CHECK_NEAR(p.entropy_norm, 1, 1e-12);
    CHECK_NEAR(p.gini, 0, 1e-12);
    moe_popularity_of(one, 4, 1, &p);
    CHECK_NEAR(p.entropy_bits, 0, 1e-12);
    CHECK_NEAR(p.gini, 0.75, 1e-12);
}

/* One layer, steps 0 / 1 / 2 / 0 / 0 / 3 / 1:
 * 0 at step 3: experts 1, 2 used since -> d = 2 (bucket 2: 2-3);
 * 0 at step 4: nothing since -> d = 0 (bucket 0);
 * 1 at step 6: 2, 0, 3 used since -> d = 3 (bucket 2); four first uses.
 * Group rule: steps {0,1} / {0,1}: 1 at step 1 has distance 1 (0 was used
 * after it in step 0), 0 has distance 0 (the experts of step 1 itself do
 * not count). */
static void reuse_distance(void) {
    moe_trace *t = make_trace(1, 8, 1, "0/1/2/0/0/3/1");
    CHECK(t);
    moe_trace_stats s;
    moe_error err;
    CHECK(moe_trace_stats_compute(t, &s, &err) == 0);
    CHECK_EQ_U(s.rd_cold[0], 4);
    CHECK_EQ_U(s.rd_hist[0], 1);
    CHECK_EQ_U(s.rd_hist[1], 0);
    CHECK_EQ_U(s.rd_hist[2], 2);
    CHECK_EQ_U(s.rd_hist[3], 0);
    CHECK_EQ_U(s.rd_buckets, 4); /* d <= 7: buckets 0, 1, 2-3, 4-7 */
    moe_trace_stats_free(&s);
    moe_trace_free(t);

    t = make_trace(1, 4, 2, "0,1 / 0,1");
    CHECK(t);
    CHECK(moe_trace_stats_compute(t, &s, &err) == 0);
    CHECK_EQ_U(s.rd_hist[0], 1);
    CHECK_EQ_U(s.rd_hist[1], 1);
    moe_trace_stats_free(&s);
    moe_trace_free(t);
    CHECK_EQ_U(moe_rd_bucket_of(0), 0);
    CHECK_EQ_U(moe_rd_bucket_of(1), 1);
    CHECK_EQ_U(moe_rd_bucket_of(3), 2);
    CHECK_EQ_U(moe_rd_bucket_of(4), 3);
    CHECK_EQ_U(moe_rd_bucket_lo(3), 4);
}

/* Two layers, top-2, lookahead depth 1.
 * token 0: layer 0 predicts {2,3} for layer 1, which chose {2,0}: 1 match.
 * token 1: layer 0 predicts {1} (one slot empty), layer 1 chose {1,3}: 1.
 * precision = 2 / 3, recall = 2 / 4. */
static void lookahead(void) {
    moe_error err;
    moe_trace_builder *b = moe_tb_new(2, 4, 2, 0, 0, 1);
    CHECK(b);
    CHECK(moe_tb_begin_step(b, 0, MOE_PHASE_DECODE, &err) == 0);
    static const uint32_t ex[2][2][2] = {{{0, 1}, {2, 0}}, {{0, 2}, {1, 3}}};
    static const uint16_t pred[2][2] = {{2, 3}, {1, MOE_NO_EXPERT}};
    for (int tk = 0; tk < 2; tk++) {
        CHECK(moe_tb_add_token(b, 0, (uint32_t)tk, &err) == tk);
        for (uint32_t l = 0; l < 2; l++)
            for (uint32_t s = 0; s < 2; s++) CHECK(moe_tb_set(b, (uint64_t)tk, l, s, ex[tk][l][s], NAN, &err) == 0);
        for (uint32_t l = 0; l < 2; l++) {
            uint16_t *la = moe_tb_lookahead(b, (uint64_t)tk, l);
            CHECK(la);
            la[0] = l == 0 ? pred[tk][0] : MOE_NO_EXPERT;
            la[1] = l == 0 ? pred[tk][1] : MOE_NO_EXPERT;
        }
    }
    moe_trace *t = moe_tb_finish(b, "t", "test", NULL, &err);
    if (!t) printf("finish: %s\n", err.msg);
    CHECK(t);
    moe_trace_stats s;
    CHECK(moe_trace_stats_compute(t, &s, &err) == 0);
    CHECK(s.has_lookahead);
    CHECK_EQ_U(s.la_pred[0], 3);
    CHECK_EQ_U(s.la_actual[0], 4);
    CHECK_EQ_U(s.la_match[0], 2);
    CHECK_NEAR(s.la_precision, 2.0 / 3.0, 1e-12);
    CHECK_NEAR(s.la_recall, 0.5, 1e-12);
    moe_trace_stats_free(&s);
    moe_trace_free(t);
}

/* SRP, one layer, E = 3, k = 1, tokens 0 0 1 0, m = 2.
 * Windows [0,0] [0,1] [1,0]: counts (2,0,0) (1,1,0) (1,1,0), so
 * S[0] = 4, S[1] = 4, S[2] = 1 pairs; acts = 4*1 + 1*2 = 6.
 *   c = 0: matches 6, preds 2*9 = 18, F1 = 12/24 = 0.5
 *   c = 1: matches 6, preds 2*5 = 10, F1 = 12/16 = 0.75   <- best
 *   c = 2: matches 2, preds 2*1 = 2,  F1 = 4/8 = 0.5
 * SRP(2) = 0.75, rho_hat = 10/6. m = 8 fits no window: NaN. */
static void srp(void) {
    moe_trace *t = make_trace(1, 3, 1, "0/0/1/0");
    CHECK(t);
    uint32_t m[2] = {2, 8};
    double rho[1] = {1};
    moe_lrc_config cfg = {.seq_len = 512, .m = m, .n_m = 2, .rho = rho, .n_rho = 1};
    moe_lrc r;
    moe_error err;
    CHECK(moe_lrc_compute(t, &cfg, &r, &err) == 0);
    CHECK_NEAR(r.srp[0], 0.75, 1e-12);
    CHECK_NEAR(r.srp_rho[0], 10.0 / 6.0, 1e-12);
    CHECK_EQ_U(r.srp_thr[0], 1);
    CHECK_NEAR(r.srp[1], 0.75, 1e-12); /* model level = the one layer */
    CHECK(isnan(r.srp[2]));
    moe_lrc_free(&r);
    moe_trace_free(t);
}

/* SCH and cache hit rates, one layer, E = 3, k = 1, tokens 0 1 2 0 1,
 * m = 2, rho = 2 -> a cache of 2.
 * FSF (future counts over the next 2 tokens, ties to least recent):
 *   t0: 0 first use, 0 experts seen before < 2 -> hit (the code's rule); cache {0}
 *   t1: 1 first use, 1 seen before < 2 -> hit; cache {0,1}
 *   t2: 2 first use, 2 seen -> miss; evict by future count: 0 occurs at t3
 *       (count 1), 1 only at t4, outside the window (count 0) -> evict 1
 *   t3: 0 hit.  t4: 1 miss.                    -> 3/5 = 0.6
 * LRU: t2 evicts 0 (least recent), t3 0 misses (evicts 1), t4 misses: 2/5.
 * LFU: 0 and 1 used once each, tie -> least recent 0: same as LRU, 2/5.
 * Belady: t2 evicts 1 (next use t4 after 0's t3): 3/5. */
static void sch_and_hit_rates(void) {
    moe_trace *t = make_trace(1, 3, 1, "0/1/2/0/1");
    CHECK(t);
    uint32_t m[1] = {2};
    double rho[1] = {2};
    moe_lrc_config cfg = {.seq_len = 512, .m = m, .n_m = 1, .rho = rho, .n_rho = 1};
    moe_lrc r;
    moe_error err;
    CHECK(moe_lrc_compute(t, &cfg, &r, &err) == 0);
    CHECK_EQ_U(r.cap[0], 2);
    CHECK_NEAR(r.sch[0], 0.6, 1e-12);
    CHECK_NEAR(r.chr[MOE_LRC_LRU * 2 + 1], 0.4, 1e-12);
    CHECK_NEAR(r.chr[MOE_LRC_LFU * 2 + 1], 0.4, 1e-12);
    CHECK_NEAR(r.chr[MOE_LRC_BELADY * 2 + 1], 0.6, 1e-12);
    moe_lrc_free(&r);
    moe_trace_free(t);
}

/* moe-lrc mode: a token's hits for all layers are decided before its
 * insertions. Two layers, one expert each per token, global cache of
 * rho*L*k = 0.5*2*1 = 1 key. Tokens (0|0) (0|0) -> keys (0,0) (1,0).
 *   t0: (0,0) first use, 0 seen < 1 -> hit; (1,0) first use -> miss;
 *       insert (0,0), then (1,0) evicts it: cache {(1,0)}
 *   t1: (0,0) miss; (1,0) resident at token start -> HIT (although
 *       inserting (0,0) evicts it before its turn)        -> 2/4
 * Cold per sequence: with seq_len 1 every token starts empty, and each
 * token's first key is a first use with nothing seen -> 2/4 too, from
 * different accesses; the chunk count shows the cut. */
static void lrc_token_snapshot_and_cold(void) {
    moe_trace *t = make_trace(2, 2, 1, "0|0 / 0|0");
    CHECK(t);
    uint64_t h, a;
    moe_error err;
    CHECK(moe_lrc_cache_run(t, 512, 2, MOE_LRC_LRU, 0, 1, &h, &a, &err) == 0);
    CHECK_EQ_U(a, 4);
    CHECK_EQ_U(h, 2);
    uint32_t m[1] = {1};
    double rho[1] = {0.5};
    moe_lrc_config cfg = {.seq_len = 1, .m = m, .n_m = 1, .rho = rho, .n_rho = 1};
    moe_lrc r;
    CHECK(moe_lrc_compute(t, &cfg, &r, &err) == 0);
    CHECK_EQ_U(r.n_chunks, 2);
    CHECK_EQ_U(r.cap[2], 1);
    CHECK_NEAR(r.chr[MOE_LRC_LRU * 3 + 2], 0.5, 1e-12);
    moe_lrc_free(&r);
    moe_trace_free(t);

    /* a sequence switch also cuts: "0 / s1: 0" is two sequences */
    t = make_trace(1, 2, 1, "0 / s1: 0");
    CHECK(t);
    cfg.seq_len = 512;
    CHECK(moe_lrc_compute(t, &cfg, &r, &err) == 0);
    CHECK_EQ_U(r.n_chunks, 2);
    moe_lrc_free(&r);
    moe_trace_free(t);
}

static void bad_config(void) {
    moe_trace *t = make_trace(1, 2, 1, "0/1");
    CHECK(t);
    uint32_t m[1] = {0};
    double rho[1] = {1};
    moe_lrc_config cfg = {.seq_len = 512, .m = m, .n_m = 1, .rho = rho, .n_rho = 1};
    moe_lrc r;
    moe_error err;
    CHECK(moe_lrc_compute(t, &cfg, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "m must be >= 1");
    moe_trace_free(t);
}

int main(void) {
    RUN(popularity);
    RUN(reuse_distance);
    RUN(lookahead);
    RUN(srp);
    RUN(sch_and_hit_rates);
    RUN(lrc_token_snapshot_and_cold);
    RUN(bad_config);
    CHECK_EXIT();
}
