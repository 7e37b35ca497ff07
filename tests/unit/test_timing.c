/* test_timing.c: the timing model on hand-worked timelines, and invariants
 * on random traces. Times in the comments are in microseconds.
 *
 * Test device "unit" (written to a temporary devices file): one channel,
 * 100 us latency, 1e6 B/s (a 1000-byte f16 expert reads in 1000 us, so a read
 * takes 1100 us); memory 1e7 B/s, no FLOP term, so an f16 expert computes in
 * 100 us; no overheads. Test model "m": attention + router 50 us per token
 * per layer (attn_us), no LM head. */
#include <math.h>
#include <unistd.h>

#include "../../core/timing.h"
#include "../../sim/replay.h"
#include "../../sim/replay_ext.h"
#include "check.h"
#include "tracemaker.h"

static char dev_path[64], model_path[64];

static void write_profiles(void) {
    snprintf(dev_path, sizeof dev_path, "/tmp/moesim_test_dev_%d.ini", (int)getpid());
    snprintf(model_path, sizeof model_path, "/tmp/moesim_test_model_%d.ini", (int)getpid());
    FILE *f = fopen(dev_path, "w");
    fputs("[unit]\nio_channels = 1\nio_latency_us = 100\nio_bandwidth_GBps = 0.001\n"
          "mem_bandwidth_GBps = 0.01\npeak_tflops = 0\n"
          "[zero-io]\nio_latency_us = 0\nio_bandwidth_GBps = 1e9\nmem_bandwidth_GBps = 0.01\n", f);
    fclose(f);
    f = fopen(model_path, "w");
    for (int e = 4; e <= 16; e *= 2)
        for (int L = 1; L <= 4; L++)
            fprintf(f, "[m%dx%d]\nlayers = %d\nexperts = %d\ntop_k = 2\nexpert_params = 500\nattn_us = 50\n"
                       "bytes_f16 = 1000\nbytes_q2 = 250\n", L, e, L, e);
    fclose(f);
}

static moe_replay_config tcfg(const char *model, uint32_t cap) {
    moe_replay_config c = {.policy = "lru", .capacity = cap, .seed = 1, .device = "unit", .model = model,
                           .devices_path = dev_path, .models_path = model_path};
    return c;
}

static int replay(moe_trace *t, const moe_replay_config *c, moe_replay_result *r) {
    moe_error err;
    if (moe_replay(t, c, r, &err)) {
        printf("replay failed: %s\n", err.msg);
        return -1;
    }
    return 0;
}

#define US 1e-6
#define TOL 1e-9

/* timeline primitives: FIFO on 2 channels */
static void timeline_fifo(void) {
    moe_timeline tl;
    moe_error err;
    CHECK(moe_tl_init(&tl, 2, 1.0, 10.0, &err) == 0);
    CHECK_NEAR(moe_tl_read(&tl, 10, 0, 0), 2.0, TOL);  /* ch0 [0,2] */
    CHECK_NEAR(moe_tl_read(&tl, 20, 0, 0), 3.0, TOL);  /* ch1 [0,3] */
    CHECK_NEAR(moe_tl_read(&tl, 0, 0.5, 1), 3.0, TOL); /* ch0 free at 2: [2,3] */
    CHECK_NEAR(moe_tl_read(&tl, 0, 5, 1), 6.0, TOL);   /* idle channel: [5,6] */
    CHECK_NEAR(moe_tl_wait(&tl, 3.0, MOE_STALL_MISS), 3.0, TOL);
    CHECK_NEAR(moe_tl_compute(&tl, 1.0, MOE_COMPUTE_EXPERT), 4.0, TOL);
    CHECK_NEAR(moe_tl_wait(&tl, 2.0, MOE_STALL_MISS), 0.0, TOL);
    CHECK_NEAR(tl.io_busy_s, 7.0, TOL);
    CHECK_EQ_U(tl.bytes_read, 30);
    CHECK_NEAR(moe_tl_io_utilisation(&tl, 7.0), 0.5, TOL);
    moe_tl_free(&tl);
    double v[] = {5, 1, 4, 2, 3};
    moe_time_stats s = moe_time_stats_of(v, 5);
    CHECK_NEAR(s.mean, 3, TOL);
    CHECK_NEAR(s.p50, 3, TOL);
    CHECK_NEAR(s.p99, 5, TOL);
}

/* One layer, two tokens (decode steps) both choosing expert 0, capacity 1.
 * step 0: attn [0,50]; miss: read [50,1150]; stall 1100; expert [1150,1250]
 * step 1: attn [1250,1300]; hit (arrived at 1150); expert [1300,1400]
 * total 1400, TPOT 1250 and 150 (mean 700, p50 150, p99 1250),
 * tok/s = 2 / 1400 us, TTFT = 1250, I/O busy 1100 of 1400. */
static void one_layer_miss_then_hit(void) {
    moe_trace *t = make_trace(1, 4, 1, "0 / 0");
    CHECK(t);
    moe_replay_config c = tcfg("m1x4", 1);
    moe_replay_result r;
    CHECK(replay(t, &c, &r) == 0);
    moe_replay_ext *x = r.ext;
    CHECK(x && x->timing);
    CHECK_EQ_U(r.hits, 1);
    CHECK_NEAR(x->total_s, 1400 * US, TOL);
    CHECK_NEAR(x->stall_miss_s, 1100 * US, TOL);
    CHECK_NEAR(x->stall_late_s, 0, TOL);
    CHECK_NEAR(x->dense_s, 100 * US, TOL);
    CHECK_NEAR(x->expert_s, 200 * US, TOL);
    CHECK_NEAR(x->tpot_mean_s, 700 * US, TOL);
    CHECK_NEAR(x->tpot_p50_s, 150 * US, TOL);
    CHECK_NEAR(x->tpot_p99_s, 1250 * US, TOL);
    CHECK_NEAR(x->tok_s, 2 / (1400 * US), 1e-6);
    CHECK_NEAR(x->ttft_mean_s, 1250 * US, TOL);
    CHECK_EQ_U(x->bytes_read, 1000);
    CHECK_NEAR(x->io_util, 1100.0 / 1400.0, 1e-12);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Two layers, top-1, capacity 1 per layer. Steps: (L0 e0, L1 e1), (L0 e0, L1 e2).
 * Without prefetch:
 *  s0 L0: attn [0,50], miss e0 read [50,1150], stall 1100, run [1150,1250]
 *     L1: attn [1250,1300], miss e1 read [1300,2400], stall 1100, run [2400,2500]
 *  s1 L0: attn [2500,2550], hit, run [2550,2650]
 *     L1: attn [2650,2700], miss e2 read [2700,3800], stall 1100, run [3800,3900]
 * With oracle prefetch one layer ahead (issued after L0's router, behind L0's
 * demand read):
 *  s0 L0: attn [0,50]; miss e0 read [50,1150]; prefetch e1 read [1150,2250];
 *         stall 1100; run [1150,1250]
 *     L1: attn [1250,1300]; e1 resident (hit) but arrives at 2250: late
 *         prefetch stall 950; run [2250,2350]
 *  s1 L0: attn [2350,2400]; hit e0; prefetch e2 (evicts e1) read [2400,3500];
 *         run [2400,2500]
 *     L1: attn [2500,2550]; e2 hit, late: stall 950; run [3500,3600]
 *  total 3600 = compute 600 + miss stall 1100 + late stall 1900. */
static void two_layers_late_prefetch(void) {
    moe_trace *t = make_trace(2, 4, 1, "0|1 / 0|2");
    CHECK(t);
    moe_replay_config c = tcfg("m2x4", 1);
    moe_replay_result r;
    CHECK(replay(t, &c, &r) == 0);
    CHECK_NEAR(r.ext->total_s, 3900 * US, TOL);
    CHECK_NEAR(r.ext->stall_miss_s, 3300 * US, TOL);
    CHECK_EQ_U(r.hits, 1);
    moe_replay_result_free(&r);
    c.prefetch = "oracle";
    CHECK(replay(t, &c, &r) == 0);
    moe_replay_ext *x = r.ext;
    CHECK_EQ_U(r.hits, 3);
    CHECK_EQ_U(r.compulsory_misses, 1);
    CHECK_NEAR(x->total_s, 3600 * US, TOL);
    CHECK_NEAR(x->stall_miss_s, 1100 * US, TOL);
    CHECK_NEAR(x->stall_late_s, 1900 * US, TOL);
    CHECK_NEAR(x->compute_s, 600 * US, TOL);
    CHECK_EQ_U(x->pf_issued, 2);
    CHECK_EQ_U(x->pf_useful, 2);
    CHECK_EQ_U(x->pf_late, 2);
    CHECK_EQ_U(x->bytes_prefetch, 2000);
    CHECK_EQ_U(x->bytes_demand, 1000);
    CHECK_NEAR(x->pf_precision, 1.0, TOL);
    CHECK_NEAR(x->pf_recall, 1.0, TOL);
    CHECK_NEAR(x->tpot_p99_s, 2350 * US, TOL);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Two layers, 4 experts, top-2, capacity 2 per layer, gate:ahead=1 from a
 * hand-written lookahead, --speculate.
 *  step 0: L0 {0,1}, L1 {2,3}, lookahead at L0 says {2,3}
 *  step 1: L0 {0,2}, L1 {1,3}, lookahead at L0 says {2,3} (2 is wrong)
 * s0 L0: attn [0,50]; misses e0 [50,1150], e1 [1150,2250]; prefetch e2
 *        [2250,3350], e3 [3350,4450]. Speculation candidates 2, 3 have not
 *        arrived when the lane first idles (at 50): none run. stall to 1150,
 *        run e0 [1150,1250]; stall to 2250, run e1 [2250,2350]
 *    L1: attn [2350,2400]; e2, e3 hits (prefetched, late): stall to 3350,
 *        run [3350,3450]; stall to 4450, run [4450,4550]
 * s1 L0: attn [4550,4600]; e0 hit; e2 miss evicts e1 (LRU), read
 *        [4600,5700]; prefetch: 2 and 3 already resident at L1. Run e0
 *        [4600,4700]; e2 not there: speculate L1's e2 [4700,4800] and e3
 *        [4800,4900] (both arrived); stall to 5700; run e2 [5700,5800]
 *    L1: attn [5800,5850]; speculation settles: e3 chosen (hit, 100 hidden),
 *        e2 not (100 wasted). e1 miss evicts e2, read [5850,6950]; e3 hit,
 *        already computed; stall to 6950; run e1 [6950,7050]
 * total 7050 = dense 200 + experts 700 + speculative 200 + miss stall 4000
 *        + late stall 1950. Hits: 2 (s0 L1) + 2 (s1) = 4 of 8. */
static void speculation_hit_and_miss(void) {
    moe_error err;
    moe_trace_builder *b = moe_tb_new(2, 4, 2, 1, 0, 1);
    static const int ex[2][2][2] = {{{0, 1}, {2, 3}}, {{0, 2}, {1, 3}}};
    for (int s = 0; s < 2; s++) {
        CHECK(moe_tb_begin_step(b, (uint64_t)s, MOE_PHASE_DECODE, &err) == 0);
        CHECK(moe_tb_add_token(b, 0, (uint32_t)s, &err) == 0);
        for (int l = 0; l < 2; l++)
            for (int k = 0; k < 2; k++) CHECK(moe_tb_set(b, 0, (uint32_t)l, (uint32_t)k, (uint32_t)ex[s][l][k], k ? 0.4f : 0.6f, &err) == 0);
        uint16_t *la = moe_tb_lookahead(b, 0, 0);
        la[0] = 2;
        la[1] = 3;
    }
    moe_trace *t = moe_tb_finish(b, "test", "test", NULL, &err);
    CHECK(t);
    moe_replay_config c = tcfg("m2x4", 2);
    c.prefetch = "gate:ahead=1";
    c.speculate = 1;
    moe_replay_result r;
    CHECK(replay(t, &c, &r) == 0);
    moe_replay_ext *x = r.ext;
    CHECK_EQ_U(r.hits, 4);
    CHECK_NEAR(x->total_s, 7050 * US, TOL);
    CHECK_NEAR(x->dense_s, 200 * US, TOL);
    CHECK_NEAR(x->expert_s, 700 * US, TOL);
    CHECK_NEAR(x->spec_compute_s, 200 * US, TOL);
    CHECK_NEAR(x->stall_miss_s, 4000 * US, TOL);
    CHECK_NEAR(x->stall_late_s, 1950 * US, TOL);
    CHECK_EQ_U(x->spec_executed, 2);
    CHECK_EQ_U(x->spec_hits, 1);
    CHECK_EQ_U(x->spec_wasted, 1);
    CHECK_NEAR(x->spec_hidden_s, 100 * US, TOL);
    CHECK_NEAR(x->spec_wasted_s, 100 * US, TOL);
    /* predictions: step 0 {2,3} vs {2,3}; step 1 {2,3} vs {1,3} */
    CHECK_EQ_U(x->pf_predicted, 4);
    CHECK_EQ_U(x->pf_correct, 3);
    CHECK_NEAR(x->pf_recall_k, 0.75, TOL);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* ---- invariants on random traces ---- */

static uint64_t rng;
static uint32_t rnd(uint32_t n) {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng >> 33) % n);
}

/* Skewed random routing with weights and a 1-deep lookahead that is right
 * about 70% of the time; sequences of 20 steps, the first step of each a
 * 4-token prefill. */
static moe_trace *random_trace(uint32_t L, uint32_t E, uint32_t K, uint32_t steps, uint64_t seed) {
    moe_error err;
    rng = seed;
    moe_trace_builder *b = moe_tb_new(L, E, K, 1, 0, 1);
    for (uint32_t s = 0; s < steps; s++) {
        int prefill = s % 20 == 0;
        if (moe_tb_begin_step(b, s, prefill ? MOE_PHASE_PREFILL : MOE_PHASE_DECODE, &err)) return NULL;
        for (uint32_t tk = 0; tk < (prefill ? 4u : 1u); tk++) {
            int64_t tok = moe_tb_add_token(b, s / 20, s % 20 + tk, &err);
            for (uint32_t l = 0; l < L; l++) {
                uint32_t used = 0;
                for (uint32_t k = 0; k < K; k++) {
                    uint32_t e;
                    do e = rnd(2) ? rnd(E < 4 ? E : 4) : rnd(E); while (used & (1u << e));
                    used |= 1u << e;
                    moe_tb_set(b, (uint64_t)tok, l, k, e, (float)(K - k) / (float)K, &err);
                }
            }
        }
    }
    /* lookahead: layer l predicts l+1's slots, each right with p = 0.7 */
    moe_trace *t = moe_tb_finish(b, "rand", "test", NULL, &err);
    if (!t) return NULL;
    for (uint64_t tok = 0; tok < t->n_tokens; tok++)
        for (uint32_t l = 0; l + 1 < L; l++)
            for (uint32_t k = 0; k < K; k++) {
                uint16_t truth = t->experts[moe_trace_rec(t, tok, l + 1) + k];
                t->lookahead[(tok * L + l) * K + k] = rnd(10) < 7 ? truth : (uint16_t)rnd(E);
            }
    /* duplicates within a record are harmless for the replay (a union) */
    return t;
}

static void invariant_zero_io_is_compute_only(void) {
    moe_trace *t = random_trace(3, 8, 2, 200, 11);
    CHECK(t);
    double first = -1;
    for (uint32_t cap = 1; cap <= 8; cap += 3) {
        moe_replay_config c = tcfg("m3x8", cap);
        c.device = "zero-io";
        moe_replay_result r;
        CHECK(replay(t, &c, &r) == 0);
        CHECK(r.ext->stall_s < 1e-9);
        CHECK_NEAR(r.ext->total_s, r.ext->compute_s, 1e-9);
        if (first < 0) first = r.ext->total_s;
        CHECK_NEAR(r.ext->total_s, first, 1e-9); /* capacity cannot matter */
        moe_replay_result_free(&r);
    }
    moe_trace_free(t);
}

static void invariant_infinite_capacity_compulsory_only(void) {
    moe_trace *t = random_trace(4, 16, 2, 300, 5);
    CHECK(t);
    moe_replay_config c = tcfg("m4x16", 1000);
    moe_replay_result r;
    CHECK(replay(t, &c, &r) == 0);
    CHECK_EQ_U(r.accesses - r.hits, r.compulsory_misses);
    CHECK_EQ_U(r.ext->reads_demand, r.compulsory_misses);
    moe_replay_result_free(&r);
    c.scope = MOE_SCOPE_GLOBAL;
    c.prefetch = "transition";
    CHECK(replay(t, &c, &r) == 0);
    CHECK(r.accesses - r.hits <= r.compulsory_misses);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* The extended engine with no-op extensions counts exactly like the plain one. */
static void ext_matches_plain(void) {
    moe_trace *t = random_trace(4, 16, 2, 300, 9);
    CHECK(t);
    for (int scope = 0; scope < 2; scope++)
        for (uint32_t cap = 1; cap <= 9; cap += 4) {
            moe_replay_config p = {.policy = "lru", .capacity = cap * (scope ? 4 : 1), .scope = scope,
                                   .cold_per_seq = cap == 5, .seed = 1};
            moe_replay_config c = tcfg("m4x16", p.capacity);
            c.scope = scope;
            c.cold_per_seq = p.cold_per_seq;
            c.prefetch = "none";
            moe_replay_result a, b;
            CHECK(replay(t, &p, &a) == 0);
            CHECK(a.ext == NULL);
            CHECK(replay(t, &c, &b) == 0);
            CHECK_EQ_U(a.accesses, b.accesses);
            CHECK_EQ_U(a.hits, b.hits);
            CHECK_EQ_U(a.compulsory_misses, b.compulsory_misses);
            CHECK_EQ_U(a.bypasses, b.bypasses);
            CHECK_EQ_U(a.evictions, b.evictions);
            CHECK_EQ_U(a.restarts, b.restarts);
            CHECK_EQ_U(a.token_slots, b.token_slots);
            CHECK_EQ_U(a.token_slot_hits, b.token_slot_hits);
            for (uint32_t l = 0; l < 4; l++) CHECK_EQ_U(a.layer_hits[l], b.layer_hits[l]);
            moe_replay_result_free(&a);
            moe_replay_result_free(&b);
        }
    moe_trace_free(t);
}

static void invariant_oracle_prefetch_is_best(void) {
    static const char *const others[] = {"none", "gate:ahead=1", "transition:hops=1", "history", "topn:n=2",
                                         "topn:n=4", "transition:n=3"};
    for (uint64_t seed = 1; seed <= 3; seed++) {
        moe_trace *t = random_trace(4, 8, 2, 300, seed);
        CHECK(t);
        for (uint32_t cap = 1; cap <= 6; cap++) {
            moe_replay_config c = tcfg("m4x8", cap);
            c.prefetch = "oracle";
            moe_replay_result o;
            CHECK(replay(t, &c, &o) == 0);
            for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
                moe_replay_result r;
                c.prefetch = others[i];
                CHECK(replay(t, &c, &r) == 0);
                if (r.hits > o.hits) printf("  %s cap %u: %llu hits > oracle %llu\n", others[i], cap,
                                            (unsigned long long)r.hits, (unsigned long long)o.hits);
                CHECK(o.hits >= r.hits);
                moe_replay_result_free(&r);
            }
            moe_replay_result_free(&o);
        }
        moe_trace_free(t);
    }
}

static void invariant_q2_reads_no_more_than_f16(void) {
    moe_trace *t = random_trace(4, 8, 2, 300, 21);
    CHECK(t);
    for (int bytes_mode = 0; bytes_mode < 2; bytes_mode++)
        for (uint32_t cap = 1; cap <= 8; cap += 2) {
            moe_replay_config c = tcfg("m4x8", cap);
            if (bytes_mode) c.capacity_bytes = (uint64_t)cap * 4 * 1000; /* cap f16 experts per layer */
            c.precision = "uniform:bits=16";
            moe_replay_result f, q;
            CHECK(replay(t, &c, &f) == 0);
            c.precision = "uniform:bits=2";
            CHECK(replay(t, &c, &q) == 0);
            CHECK(q.ext->bytes_read <= f.ext->bytes_read);
            CHECK(q.ext->total_s <= f.ext->total_s + 1e-12);
            if (bytes_mode) CHECK(q.hits >= f.hits); /* q2 experts are 4x smaller */
            CHECK_NEAR(q.ext->eff_bits_active, 2, TOL);
            moe_replay_result_free(&f);
            moe_replay_result_free(&q);
        }
    moe_trace_free(t);
}

/* Errors say what is missing. */
static void timing_errors(void) {
    moe_trace *t = make_trace(1, 4, 1, "0 / 1");
    CHECK(t);
    moe_replay_config c = {.policy = "lru", .capacity = 1, .device = "unit", .devices_path = dev_path};
    moe_replay_result r;
    moe_error err;
    CHECK(moe_replay(t, &c, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "needs bytes per expert");
    c.model = "m2x4";
    c.models_path = model_path;
    CHECK(moe_replay(t, &c, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "2 layers x 4 experts but the trace has 1 x 4");
    c.model = "m1x4";
    c.device = "nosuch";
    CHECK(moe_replay(t, &c, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "unknown device 'nosuch' (known: unit, zero-io)");
    c.device = "unit";
    c.prefetch = "gate";
    CHECK(moe_replay(t, &c, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "no lookahead");
    c.prefetch = "oracle:ahead=2";
    c.speculate = 1;
    CHECK(moe_replay(t, &c, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "one layer ahead");
    moe_trace_free(t);
}

/* Contention worked by hand. Idle: 1 s per read (latency 1, infinite
 * bandwidth); busy: 2 s. Read A issued at 0 while the lane computes [0, 1]:
 * half done at 1, the other half idle: ends at 1.5. Read B, queued behind A
 * at 0, starts at 1.5 with the lane idle: ends at 2.5, unless the lane
 * computes again, [1.5, 2.5] after a wait: then half of B is done at 2.5 (the
 * busy rate) and the other half idle: ends at 3.0. */
static void timeline_contention(void) {
    moe_timeline tl;
    moe_error err;
    CHECK(moe_tl_init(&tl, 1, 1.0, INFINITY, &err) == 0);
    CHECK(moe_tl_set_contention(&tl, 2.0, INFINITY, &err) == 0);
    CHECK_NEAR(moe_tl_read(&tl, 100, 0, 0), 1.0, TOL); /* estimated with the lane idle from now (0) */
    int64_t a = tl.last_id;
    CHECK_NEAR(moe_tl_read(&tl, 100, 0, 0), 2.0, TOL);
    int64_t b = tl.last_id;
    moe_tl_compute(&tl, 1.0, MOE_COMPUTE_EXPERT); /* lane busy [0, 1] */
    CHECK_NEAR(moe_tl_ready(&tl, a), 1.5, TOL);
    CHECK_NEAR(moe_tl_ready(&tl, b), 2.5, TOL);
    CHECK_NEAR(moe_tl_wait(&tl, moe_tl_ready(&tl, a), MOE_STALL_MISS), 0.5, TOL);
    moe_tl_compute(&tl, 1.0, MOE_COMPUTE_EXPERT); /* busy [1.5, 2.5] */
    CHECK_NEAR(moe_tl_ready(&tl, b), 3.0, TOL);
    CHECK_NEAR(moe_tl_wait(&tl, moe_tl_ready(&tl, b), MOE_STALL_MISS), 0.5, TOL);
    CHECK_NEAR(moe_tl_ready(&tl, a), 1.5, TOL); /* final: unchanged by later compute */
    moe_tl_settle(&tl);
    CHECK_NEAR(moe_tl_io_utilisation(&tl, 4.0), 3.0 / 4.0, TOL); /* A [0, 1.5] + B [1.5, 3.0] */
    CHECK_EQ_U(tl.reads_kind[0], 2);
    moe_tl_free(&tl);
    /* bandwidth term: 10 bytes at 10 B/s idle, 5 B/s busy, no latency; the
     * lane busy [0, 1] does half of it (1 s of a 2 s read), the rest idle */
    CHECK(moe_tl_init(&tl, 1, 0.0, 10.0, &err) == 0);
    CHECK(moe_tl_set_contention(&tl, 0.0, 5.0, &err) == 0);
    moe_tl_read(&tl, 10, 0, 1);
    a = tl.last_id;
    moe_tl_compute(&tl, 1.0, MOE_COMPUTE_DENSE);
    CHECK_NEAR(moe_tl_ready(&tl, a), 1.5, TOL);
    CHECK(moe_tl_set_contention(&tl, -1, 5.0, &err) == -1);
    moe_tl_free(&tl);
}

int main(void) {
    write_profiles();
    RUN(timeline_fifo);
    RUN(timeline_contention);
    RUN(one_layer_miss_then_hit);
    RUN(two_layers_late_prefetch);
    RUN(speculation_hit_and_miss);
    RUN(invariant_zero_io_is_compute_only);
    RUN(invariant_infinite_capacity_compulsory_only);
    RUN(ext_matches_plain);
    RUN(invariant_oracle_prefetch_is_best);
    RUN(invariant_q2_reads_no_more_than_f16);
    RUN(timing_errors);
    unlink(dev_path);
    unlink(model_path);
    CHECK_EXIT();
}
