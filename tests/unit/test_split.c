/* test_split.c: per-layer capacity splits (core/split.h, --split).
 *
 * adapmoe's DP is checked against brute force over every split on small
 * random traces, and against the replay itself (LRU with the DP's
 * capacities hits exactly what the curves promised when every group has one
 * expert, where the stack model is exact); fate's apportionment and the DP's
 * tie rule are worked by hand; "uniform" changes nothing, results or run
 * identity. */
#include "../../core/mrc.h"
#include "../../core/policies/util.h"
#include "../../core/split.h"
#include "../../sim/replay.h"
#include "../../sim/runrec.h"
#include "check.h"
#include "tracemaker.h"

static int replay(const moe_trace *t, const char *policy, uint32_t cap, const char *split, const char *prefetch,
                  moe_replay_result *r) {
    moe_replay_config cfg = {.policy = policy, .capacity = cap, .seed = 1, .split = split, .prefetch = prefetch};
    moe_error err;
    if (moe_replay(t, &cfg, r, &err)) {
        printf("replay %s split %s: %s\n", policy, split ? split : "-", err.msg);
        return -1;
    }
    return 0;
}

/* One expert per (step, layer), random, L layers x E experts: groups of
 * size 1, so the per-layer LRU curves are exact at every capacity. */
static moe_trace *random_top1(uint32_t L, uint32_t E, uint32_t steps, uint64_t seed) {
    moe_error err;
    moe_trace_builder *b = moe_tb_new(L, E, 1, 1, 0, 0);
    uint64_t st = seed;
    for (uint32_t s = 0; s < steps; s++) {
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err)) goto bad;
        if (moe_tb_add_token(b, 0, s, &err) < 0) goto bad;
        for (uint32_t l = 0; l < L; l++) {
            /* skewed: half the time one of the first two experts */
            uint32_t e = moe_rand_below(&st, 2) ? (uint32_t)moe_rand_below(&st, 2) : (uint32_t)moe_rand_below(&st, E);
            if (moe_tb_set(b, 0, l, 0, e, 1.0f, &err)) goto bad;
        }
    }
    return moe_tb_finish(b, "rand", "test", NULL, &err);
bad:
    printf("random_top1: %s\n", err.msg);
    moe_tb_abort(b);
    return NULL;
}

static uint64_t *curves(const moe_trace *t) {
    moe_mrc m;
    moe_error err;
    if (moe_mrc_compute(t, 0, 0, &m, &err)) return NULL;
    uint32_t L = t->n_layers, E = t->n_experts;
    uint64_t *h = calloc((size_t)L * (E + 1), sizeof *h);
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t c = 1; c <= E; c++)
            h[l * (E + 1) + c] = h[l * (E + 1) + c - 1] + m.layer_dist[(size_t)l * m.max_capacity + c - 1];
    moe_mrc_free(&m);
    return h;
}

/* Brute force: best total over every (c_0..c_{L-1}) in [0,E]^L summing to B. */
static uint64_t brute(const uint64_t *h, uint32_t L, uint32_t E, uint32_t B, uint32_t l) {
    if (l == L) return B == 0 ? 0 : UINT64_MAX;
    uint64_t best = UINT64_MAX;
    for (uint32_t c = 0; c <= E && c <= B; c++) {
        uint64_t r = brute(h, L, E, B - c, l + 1);
        if (r == UINT64_MAX) continue;
        r += h[l * (E + 1) + c];
        if (best == UINT64_MAX || r > best) best = r;
    }
    return best;
}

static void dp_matches_brute_force(void) {
    for (int trial = 0; trial < 30; trial++) {
        uint32_t L = 2 + trial % 3, E = 3 + trial % 3;
        moe_trace *t = random_top1(L, E, 30 + (uint32_t)trial, 77 + (uint64_t)trial);
        CHECK(t);
        uint64_t *h = curves(t);
        CHECK(h);
        uint32_t caps[8];
        for (uint32_t cap = 0; cap <= E; cap++) {
            uint32_t B = cap * L;
            uint64_t dp = moe_split_dp(h, L, E, B, caps);
            CHECK_EQ_U(dp, brute(h, L, E, B, 0));
            uint64_t sum = 0, got = 0;
            for (uint32_t l = 0; l < L; l++) {
                CHECK(caps[l] <= E);
                sum += caps[l];
                got += h[l * (E + 1) + caps[l]];
            }
            CHECK_EQ_U(sum, B);
            CHECK_EQ_U(got, dp);
            /* the replay at those capacities hits what the curves said, and
             * never less than the uniform split */
            moe_replay_result r, u;
            CHECK(replay(t, "lru", cap, "adapmoe", NULL, &r) == 0);
            CHECK_EQ_U(r.hits, dp);
            CHECK(replay(t, "lru", cap, NULL, NULL, &u) == 0);
            CHECK(r.hits >= u.hits);
            moe_replay_result_free(&r);
            moe_replay_result_free(&u);
        }
        free(h);
        moe_trace_free(t);
    }
}

/* Hand-worked DP, L=2, E=3, budget 3:
 *   layer 0 hits at c=0..3: 0 5 6 6; layer 1: 0 2 4 9
 *   (0,3)=9 (1,2)=5+4=9 (2,1)=8 (3,0)=6: best 9, two optima; the rule gives
 *   the deeper layer the smaller capacity: (1,2).
 * Budget 10 > L*E clips to 6: (3,3) = 15. */
static void dp_hand(void) {
    const uint64_t h[] = {0, 5, 6, 6, 0, 2, 4, 9};
    uint32_t caps[2];
    CHECK_EQ_U(moe_split_dp(h, 2, 3, 3, caps), 9);
    CHECK_EQ_U(caps[0], 1);
    CHECK_EQ_U(caps[1], 2);
    CHECK_EQ_U(moe_split_dp(h, 2, 3, 10, caps), 15);
    CHECK_EQ_U(caps[0], 3);
    CHECK_EQ_U(caps[1], 3);
}

/* fate, weights w_l = 1 + (S-1)(L-1-l)/(L-1):
 *  L=4, E=8, capacity 2 (budget 8), S=3: w = 3, 7/3, 5/3, 1 (sum 8), shares
 *  3, 2.33, 1.67, 1 -> floors 3 2 1 1 (7), one left to the largest fraction
 *  (layer 2, .67) -> 3 2 2 1.
 *  S=1.5: w = 1.5 1.33 1.17 1 (sum 5), shares 2.4 2.13 1.87 1.6 -> floors
 *  2 2 1 1, two left to layers 2 (.87) and 3 (.6) -> 2 2 2 2.
 *  L=3, E=3, capacity 2 (budget 6), S=10: w = 10, 5.5, 1 (sum 16.5), layer 0's
 *  share 3.64 > E -> pinned at 3; the other 3 over w 5.5, 1: 2.54, .46 ->
 *  floors 2 0, one left to layer 1 -> 3 3 0. */
static void fate_hand(void) {
    uint32_t c[4];
    moe_split_fate(4, 8, 8, 3.0, c);
    CHECK(c[0] == 3 && c[1] == 2 && c[2] == 2 && c[3] == 1);
    moe_split_fate(4, 8, 8, 1.5, c);
    CHECK(c[0] == 2 && c[1] == 2 && c[2] == 2 && c[3] == 2);
    moe_split_fate(3, 3, 6, 10.0, c);
    CHECK(c[0] == 3 && c[1] == 3 && c[2] == 0);
    /* through the replay: 4 layers x 8 experts, capacity 2, fate:shallow=3
     * -> capacities 3 2 2 1. Layer 0 sees 0 1 2 0 1 2: with 3 slots the last
     * three hit, with 2 (uniform) LRU never hits. Layers 1..3 see
     * 0 1 2 3 0 1: no hits at capacity <= 2. */
    moe_trace *t = make_trace(4, 8, 1, "0|0|0|0 / 1|1|1|1 / 2|2|2|2 / 0|3|3|3 / 1|0|0|0 / 2|1|1|1");
    CHECK(t);
    moe_replay_result r;
    CHECK(replay(t, "lru", 2, "fate:shallow=3", NULL, &r) == 0);
    CHECK_EQ_U(r.hits, 3); /* layer 0, steps 3..5 */
    CHECK_EQ_U(r.layer_hits[0], 3);
    moe_replay_result_free(&r);
    CHECK(replay(t, "lru", 2, NULL, NULL, &r) == 0);
    CHECK_EQ_U(r.hits, 0);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* "uniform" (any spelling of it) = no --split: same numbers, same config
 * text; a real split adds exactly one line. Global scope refuses a
 * non-uniform split. The extended engine applies the split too. */
static void uniform_changes_nothing(void) {
    moe_trace *t = random_top1(3, 5, 50, 5);
    CHECK(t);
    moe_replay_result a, b;
    for (uint32_t cap = 0; cap <= 5; cap++) {
        CHECK(replay(t, "lfu", cap, NULL, NULL, &a) == 0);
        CHECK(replay(t, "lfu", cap, "uniform", NULL, &b) == 0);
        CHECK_EQ_U(a.hits, b.hits);
        CHECK_EQ_U(a.evictions, b.evictions);
        CHECK_EQ_U(a.bypasses, b.bypasses);
        for (uint32_t l = 0; l < 3; l++) CHECK_EQ_U(a.layer_hits[l], b.layer_hits[l]);
        moe_replay_result_free(&a);
        moe_replay_result_free(&b);
    }
    moe_replay_config c0 = {.policy = "lru", .capacity = 2, .seed = 1};
    moe_replay_config c1 = c0, c2 = c0;
    c1.split = "uniform";
    c2.split = "adapmoe";
    char t0[2048], t1[2048], t2[2048];
    CHECK(moe_run_config_text(&c0, "lru", t0, sizeof t0) == 0);
    CHECK(moe_run_config_text(&c1, "lru", t1, sizeof t1) == 0);
    CHECK(moe_run_config_text(&c2, "lru", t2, sizeof t2) == 0);
    CHECK(!strcmp(t0, t1));
    CHECK(!strstr(t0, "split"));
    CHECK_STR_CONTAINS(t2, "split=adapmoe:profile=oracle\n");
    CHECK_EQ_U(strlen(t2), strlen(t0) + strlen("split=adapmoe:profile=oracle\n"));
    /* global scope */
    moe_replay_config g = {.policy = "lru", .capacity = 2, .seed = 1, .scope = MOE_SCOPE_GLOBAL, .split = "fate"};
    moe_error err;
    CHECK(moe_replay(t, &g, &a, &err) != 0);
    g.split = "uniform";
    CHECK(moe_replay(t, &g, &a, &err) == 0);
    moe_replay_result_free(&a);
    /* bad specs */
    char canon[256];
    CHECK(moe_split_canonical("fate:shallow=0.5", canon, sizeof canon, &err) != 0);
    CHECK(moe_split_canonical("nope", canon, sizeof canon, &err) != 0);
    CHECK(moe_split_canonical("fate", canon, sizeof canon, &err) == 0);
    CHECK(!strcmp(canon, "fate:shallow=1.5"));
    /* extended engine (prefetch none) gives the plain replay's hits */
    CHECK(replay(t, "lru", 2, "adapmoe", NULL, &a) == 0);
    CHECK(replay(t, "lru", 2, "adapmoe", "none", &b) == 0);
    CHECK(b.ext != NULL);
    CHECK_EQ_U(a.hits, b.hits);
    moe_replay_result_free(&a);
    moe_replay_result_free(&b);
    moe_trace_free(t);
}

int main(void) {
    RUN(dp_hand);
    RUN(dp_matches_brute_force);
    RUN(fate_hand);
    RUN(uniform_changes_nothing);
    CHECK_EXIT();
}
