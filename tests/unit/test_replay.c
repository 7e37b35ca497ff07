/* test_replay.c: the replay engine's semantics on hand-worked traces (LRU). */
#include "../../sim/replay.h"
#include "check.h"
#include "tracemaker.h"

static moe_replay_result run(moe_trace *t, const char *policy, uint32_t cap, int scope, int cold) {
    moe_replay_config cfg = {.policy = policy, .capacity = cap, .scope = scope, .cold_per_seq = cold, .seed = 1};
    moe_replay_result r;
    moe_error err;
    if (moe_replay(t, &cfg, &r, &err)) {
        printf("replay failed: %s\n", err.msg);
        memset(&r, 0, sizeof r);
    }
    return r;
}

/* 0 1 0 2 1 0, capacity 2: miss miss hit miss(evict 1) miss(evict 0) miss(evict 2). */
static void lru_single_layer(void) {
    moe_trace *t = make_trace(1, 4, 1, "0/1/0/2/1/0");
    CHECK(t);
    moe_replay_result r = run(t, "lru", 2, MOE_SCOPE_PER_LAYER, 0);
    CHECK_EQ_U(r.accesses, 6);
    CHECK_EQ_U(r.hits, 1);
    CHECK_EQ_U(r.compulsory_misses, 3);
    CHECK_EQ_U(r.evictions, 3);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Two tokens per step, top-2, capacity 2.
 * step0 {0,1}: miss miss -> [0,1]
 * step1 {2,3}: 2 evicts 0, 3 evicts 1 -> [2,3]
 * step2 tokens {0,2},{1,0}: set {0,1,2}; 0 misses and evicts 3 (2 is needed
 *   now, protected); 1 misses, every resident is protected -> not cached;
 *   2 hits. Token slots: 4, of which 1 hit (expert 2). */
static void protection_and_bypass(void) {
    moe_trace *t = make_trace(1, 4, 2, "0,1 / 2,3 / 0,2 ; 1,0");
    CHECK(t);
    moe_replay_result r = run(t, "lru", 2, MOE_SCOPE_PER_LAYER, 0);
    CHECK_EQ_U(r.accesses, 7);
    CHECK_EQ_U(r.hits, 1);
    CHECK_EQ_U(r.bypasses, 1);
    CHECK_EQ_U(r.compulsory_misses, 4);
    CHECK_EQ_U(r.evictions, 3);
    CHECK_EQ_U(r.token_slots, 8);
    CHECK_EQ_U(r.token_slot_hits, 1);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Two layers, top-1. Per-layer capacity 1: layer 0 sees 0 0 1 0 (1 hit),
 * layer 1 sees 2 3 2 3 (0 hits). Global capacity 2 over keys (l, e): the
 * access order is (0,0)(1,2) (0,0)(1,3) (0,1)(1,2) (0,0)(1,3):
 *  (0,0)m (1,2)m | (0,0)h (1,3)m ev(1,2) | (0,1)m ev(0,0) (1,2)m ev(1,3) |
 *  (0,0)m ev(0,1) (1,3)m ev(1,2)  -> 1 hit. */
static void scopes(void) {
    moe_trace *t = make_trace(2, 4, 1, "0|2 / 0|3 / 1|2 / 0|3");
    CHECK(t);
    moe_replay_result r = run(t, "lru", 1, MOE_SCOPE_PER_LAYER, 0);
    CHECK_EQ_U(r.hits, 1);
    CHECK_EQ_U(r.layer_hits[0], 1);
    CHECK_EQ_U(r.layer_hits[1], 0);
    moe_replay_result_free(&r);
    r = run(t, "lru", 2, MOE_SCOPE_GLOBAL, 0);
    CHECK_EQ_U(r.accesses, 8);
    CHECK_EQ_U(r.hits, 1);
    CHECK_EQ_U(r.compulsory_misses, 4);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Cold per sequence: "0/0/s1:0/0" warm = 3 hits; cold = 2 hits, 2 compulsory. */
static void cold_per_sequence(void) {
    moe_trace *t = make_trace(1, 2, 1, "0 / 0 / s1: 0 / 0");
    CHECK(t);
    moe_replay_result r = run(t, "lru", 1, MOE_SCOPE_PER_LAYER, 0);
    CHECK_EQ_U(r.hits, 3);
    CHECK_EQ_U(r.compulsory_misses, 1);
    moe_replay_result_free(&r);
    r = run(t, "lru", 1, MOE_SCOPE_PER_LAYER, 1);
    CHECK_EQ_U(r.hits, 2);
    CHECK_EQ_U(r.compulsory_misses, 2);
    CHECK_EQ_U(r.restarts, 1);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

/* Recovery curve: "0 / 1 / s1: 0 / 0 / 1 / s2: 1 / 1", one layer, capacity 1.
 * Warm LRU: miss miss | miss hit miss | hit hit; the first sequence is not
 * counted, so offset 0 = steps 2 and 5 (1 hit of 2), offset 1 = steps 3 and
 * 6 (2 of 2), offset 2 = step 4 (0 of 1). Cold per sequence: steps 2 and 5
 * miss after the restart (0 of 2 at offset 0), the rest as warm. The
 * extended engine (a prefetcher given, even none) counts the same. */
static void recovery_curve(void) {
    moe_trace *t = make_trace(1, 2, 1, "0 / 1 / s1: 0 / 0 / 1 / s2: 1 / 1");
    CHECK(t);
    for (int ext = 0; ext < 2; ext++)
        for (int cold = 0; cold < 2; cold++) {
            moe_replay_config cfg = {.policy = "lru", .capacity = 1, .cold_per_seq = cold, .seed = 1,
                                     .prefetch = ext ? "none" : NULL};
            moe_replay_result r;
            moe_error err;
            if (moe_replay(t, &cfg, &r, &err)) {
                printf("replay failed: %s\n", err.msg);
                CHECK(0);
                continue;
            }
            CHECK_EQ_U(r.since_start_seqs, 2);
            CHECK_EQ_U(r.since_start_accesses[0], 2);
            CHECK_EQ_U(r.since_start_hits[0], cold ? 0 : 1);
            CHECK_EQ_U(r.since_start_accesses[1], 2);
            CHECK_EQ_U(r.since_start_hits[1], 2);
            CHECK_EQ_U(r.since_start_accesses[2], 1);
            CHECK_EQ_U(r.since_start_hits[2], 0);
            CHECK_EQ_U(r.since_start_accesses[3], 0);
            moe_replay_result_free(&r);
        }
    moe_trace_free(t);
}

/* Capacity 0 caches nothing; capacity >= experts gives compulsory misses only. */
static void capacity_edges(void) {
    moe_trace *t = make_trace(1, 3, 1, "0/1/2/0/1/2");
    CHECK(t);
    moe_replay_result r = run(t, "lru", 0, MOE_SCOPE_PER_LAYER, 0);
    CHECK_EQ_U(r.hits, 0);
    CHECK_EQ_U(r.bypasses, 6);
    moe_replay_result_free(&r);
    r = run(t, "lru", 100, MOE_SCOPE_PER_LAYER, 0);
    CHECK_EQ_U(r.hits, 3);
    CHECK_EQ_U(r.compulsory_misses, 3);
    moe_replay_result_free(&r);
    moe_trace_free(t);
}

static void unknown_policy(void) {
    moe_trace *t = make_trace(1, 3, 1, "0");
    CHECK(t);
    moe_replay_config cfg = {.policy = "nosuch", .capacity = 1};
    moe_replay_result r;
    moe_error err;
    CHECK(moe_replay(t, &cfg, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "unknown policy 'nosuch'");
    cfg.policy = "lru:x=1";
    CHECK(moe_replay(t, &cfg, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "unknown option 'x'");
    moe_trace_free(t);
}

int main(void) {
    RUN(lru_single_layer);
    RUN(protection_and_bypass);
    RUN(scopes);
    RUN(cold_per_sequence);
    RUN(recovery_curve);
    RUN(capacity_edges);
    RUN(unknown_policy);
    CHECK_EXIT();
}
