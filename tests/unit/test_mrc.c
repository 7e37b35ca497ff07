/* test_mrc.c: the one-pass LRU miss-ratio curve against the replay engine
 * (sim/replay.h, policy lru), and group stack distances worked by hand. */
#include "../../core/mrc.h"
#include "../../sim/replay.h"
#include "check.h"
#include "tracemaker.h"

static uint64_t replay_hits(const moe_trace *t, uint32_t cap, int scope, int cold) {
    moe_replay_config cfg = {.policy = "lru", .capacity = cap, .scope = scope, .cold_per_seq = cold, .seed = 1};
    moe_replay_result r;
    moe_error err;
    if (moe_replay(t, &cfg, &r, &err)) {
        printf("replay failed: %s\n", err.msg);
        return UINT64_MAX;
    }
    uint64_t h = r.hits;
    moe_replay_result_free(&r);
    return h;
}

/* Tiny deterministic generator (xorshift64*), so the test needs no GSL. */
static uint64_t rng_state;
static uint32_t rnd(uint32_t n) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 2685821657736338717ull) >> 33) % n;
}

/* Random trace: steps of 1..max_tok tokens, skewed expert choice, a few
 * sequence switches. */
static moe_trace *random_trace(uint32_t L, uint32_t E, uint32_t K, uint32_t steps, uint32_t max_tok) {
    moe_error err;
    moe_trace_builder *b = moe_tb_new(L, E, K, 0, 0, 0);
    uint32_t seq = 0;
    for (uint32_t s = 0; s < steps; s++) {
        if (rnd(10) == 0) seq++;
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err)) goto bad;
        uint32_t nt = 1 + rnd(max_tok);
        for (uint32_t i = 0; i < nt; i++) {
            int64_t tok = moe_tb_add_token(b, seq, i, &err);
            if (tok < 0) goto bad;
            for (uint32_t l = 0; l < L; l++) {
                uint32_t used[64] = {0}, n = 0;
                while (n < K) {
                    /* skew: half the time pick among the first E/3 experts */
                    uint32_t e = rnd(2) ? rnd(E / 3 + 1) : rnd(E);
                    int dup = 0;
                    for (uint32_t j = 0; j < n; j++) dup |= used[j] == e;
                    if (dup) continue;
                    used[n] = e;
                    if (moe_tb_set(b, (uint64_t)tok, l, n, e, NAN, &err)) goto bad;
                    n++;
                }
            }
        }
    }
    return moe_tb_finish(b, "rand", "test", NULL, &err);
bad:
    printf("random_trace: %s\n", err.msg);
    moe_tb_abort(b);
    return NULL;
}

/* One layer, E=4: steps {0,1} {2} {0} {1,3}.
 * step0: 0,1 cold. stack after: 1 0 (top first; ascending order served).
 * step1: 2 cold. stack: 2 1 0.
 * step2: 0 at distance 2 (2 and 1 more recent). stack: 0 2 1.
 * step3: group start stack 0 2 1: key 1 distance 2, key 3 cold.
 * Curve: hits(c) = #dist < c: c=0,1,2 -> 0; c=3,4 -> 2. */
static void hand_distances(void) {
    moe_trace *t = make_trace(1, 4, 2, "0,1 / 2 / 0 / 1,3");
    CHECK(t);
    moe_mrc m;
    moe_error err;
    CHECK(moe_mrc_compute(t, MOE_SCOPE_PER_LAYER, 0, &m, &err) == 0);
    CHECK_EQ_U(m.accesses, 6);
    CHECK_EQ_U(m.compulsory, 4);
    CHECK_EQ_U(m.layer_dist[2], 2);
    CHECK_EQ_U(m.exact_from, 2);
    CHECK_EQ_U(m.hits[2], 0);
    CHECK_EQ_U(m.hits[3], 2);
    CHECK_EQ_U(m.hits[4], 2);
    moe_mrc_free(&m);
    moe_trace_free(t);
}

/* The group rule: cache [a, b] with a least recent, then group {c, a} with
 * c < a. Experts: a=2, b=3, c=0. Steps: {2} {3} {0,2}. At the start of
 * step 2 the stack is 3 2, so 2 has distance 1 -> a hit at capacity 2, as
 * the replay (which protects 2 and evicts 3) says; a per-access distance
 * would have counted 0 and missed. */
static void group_rule(void) {
    moe_trace *t = make_trace(1, 4, 2, "2 / 3 / 0,2");
    CHECK(t);
    moe_mrc m;
    moe_error err;
    CHECK(moe_mrc_compute(t, MOE_SCOPE_PER_LAYER, 0, &m, &err) == 0);
    CHECK_EQ_U(m.hits[2], 1);
    CHECK_EQ_U(replay_hits(t, 2, MOE_SCOPE_PER_LAYER, 0), 1);
    moe_mrc_free(&m);
    moe_trace_free(t);
}

/* Compaction of the timestamp window: a long single-key-heavy trace. */
static void engine_compaction(void) {
    moe_sd s;
    moe_error err;
    CHECK(moe_sd_init(&s, 3, &err) == 0);
    for (int i = 0; i < 1000; i++) {
        moe_sd_reserve(&s, 1);
        moe_sd_touch(&s, (uint32_t)(i % 3));
        if (i >= 3) CHECK_EQ_U(moe_sd_query(&s, (uint32_t)((i + 1) % 3)), 2);
    }
    CHECK_EQ_U(moe_sd_query(&s, 999 % 3), 0);
    moe_sd_reset(&s);
    CHECK(moe_sd_query(&s, 0) == MOE_SD_INF);
    moe_sd_free(&s);
}

/* For every capacity from the largest set size to the number of keys, the
 * one-pass curve equals the replay's LRU hits: both scopes, warm and cold. */
static void matches_replay(void) {
    static const uint32_t geo[][5] = {
        /* L, E, K, steps, max tokens per step */
        {1, 8, 2, 300, 1}, {2, 8, 2, 200, 3}, {3, 16, 4, 150, 4}, {4, 6, 1, 200, 5}, {2, 32, 8, 100, 2},
    };
    for (size_t g = 0; g < sizeof geo / sizeof *geo; g++) {
        for (int rep = 0; rep < 3; rep++) {
            rng_state = 0x9E3779B97F4A7C15ull * (g * 7 + (size_t)rep + 1);
            moe_trace *t = random_trace(geo[g][0], geo[g][1], geo[g][2], geo[g][3], geo[g][4]);
            CHECK(t);
            for (int scope = 0; scope <= 1; scope++)
                for (int cold = 0; cold <= 1; cold++) {
                    moe_mrc m;
                    moe_error err;
                    CHECK(moe_mrc_compute(t, scope, cold, &m, &err) == 0);
                    CHECK(m.exact_from <= m.max_capacity);
                    for (uint32_t c = m.exact_from; c <= m.max_capacity; c++) {
                        uint64_t h = replay_hits(t, c, scope, cold);
                        if (h != m.hits[c])
                            printf("  geo %zu rep %d scope %d cold %d capacity %u: mrc %llu replay %llu\n", g,
                                   rep, scope, cold, c, (unsigned long long)m.hits[c], (unsigned long long)h);
                        CHECK_EQ_U(m.hits[c], h);
                    }
                    moe_mrc_free(&m);
                }
            moe_trace_free(t);
        }
    }
}

int main(void) {
    RUN(hand_distances);
    RUN(group_rule);
    RUN(engine_compaction);
    RUN(matches_replay);
    CHECK_EXIT();
}
