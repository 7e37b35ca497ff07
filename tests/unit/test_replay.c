/* test_replay.c: the replay engine's semantics on hand-worked traces (LRU),
 * and count_from against a hand-worked case and against a brute-force
 * difference of replays. */
#include "../../sim/replay.h"
#include "../../sim/replay_internal.h"
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

/* One layer, top-1, explicit positions: step i has n_tok[i] tokens; token
 * j is (seq[j], pos[j]) and chooses expert ex[j]. */
static moe_trace *pos_trace(uint32_t E, const uint32_t *n_tok, uint32_t n_steps, const uint32_t *seq,
                            const uint32_t *pos, const uint32_t *ex) {
    moe_error err = {{0}};
    moe_trace_builder *b = moe_tb_new(1, E, 1, 0, 0, 0);
    for (uint32_t s = 0, j = 0; s < n_steps; s++) {
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err)) goto bad;
        for (uint32_t i = 0; i < n_tok[s]; i++, j++)
            if (moe_tb_add_token(b, seq[j], pos[j], &err) < 0 || moe_tb_set(b, i, 0, 0, ex[j], NAN, &err)) goto bad;
    }
    moe_trace *t = moe_tb_finish(b, "test", "test_replay", NULL, &err);
    if (!t) printf("pos_trace: %s\n", err.msg);
    return t;
bad:
    printf("pos_trace: %s\n", err.msg);
    moe_tb_abort(b);
    return NULL;
}

/* LRU, capacity 1 layer x 2, cold per sequence; (seq, pos):expert per step
 *   s0 (0,0):0   s1 (0,1):1   s2 (0,2):0 (0,3):2   s3 (0,4):2 (0,5):1
 *   s4 (1,0):3   s5 (1,1):3
 * s0, s1 miss (compulsory) -> [0 1]; s2 {0,2}: 0 hits, 2 misses (compulsory)
 * and evicts 1 -> [0 2]; s3 {1,2}: 1 misses and evicts 0, 2 hits; s4 restart,
 * 3 misses; s5 3 hits. All: 8 activations, 3 hits, 4 compulsory, 2
 * evictions, 8 slots, 3 slot hits. From position 3: s2's 0 was chosen only
 * by position 2 and s4, s5 are positions 0, 1, so 3 activations count (s2's
 * 2: miss, compulsory, eviction; s3's 1: miss, eviction; s3's 2: hit), 3
 * slots with 1 hit. From position 2: s2 and s3 whole: 4 activations, 2 hits.
 * The same in both loops (the general one forced by a byte-free ext call). */
static void count_from_hand(void) {
    const uint32_t n_tok[] = {1, 1, 2, 2, 1, 1}, seq[] = {0, 0, 0, 0, 0, 0, 1, 1}, pos[] = {0, 1, 2, 3, 4, 5, 0, 1},
                   ex[] = {0, 1, 0, 2, 2, 1, 3, 3};
    moe_trace *t = pos_trace(4, n_tok, 6, seq, pos, ex);
    CHECK(t);
    struct { uint64_t from, acc, hits, comp, evict, slots, slot_hits; } want[] = {
        {0, 8, 3, 4, 2, 8, 3}, {2, 4, 2, 1, 2, 4, 2}, {3, 3, 1, 1, 2, 3, 1}, {6, 0, 0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        for (int general = 0; general < 2; general++) {
            moe_replay_config cfg = {.policy = "lru", .capacity = 2, .cold_per_seq = 1, .seed = 1,
                                     .count_from = want[i].from};
            moe_replay_result r;
            moe_error err;
            int rc = general ? moe_replay_engine_run(t, &cfg, &r, &err) : moe_replay(t, &cfg, &r, &err);
            if (rc) printf("%s\n", err.msg);
            CHECK(rc == 0);
            CHECK((r.ext != NULL) == general);
            CHECK_EQ_U(r.accesses, want[i].acc);
            CHECK_EQ_U(r.hits, want[i].hits);
            CHECK_EQ_U(r.compulsory_misses, want[i].comp);
            CHECK_EQ_U(r.evictions, want[i].evict);
            CHECK_EQ_U(r.bypasses, 0);
            CHECK_EQ_U(r.token_slots, want[i].slots);
            CHECK_EQ_U(r.token_slot_hits, want[i].slot_hits);
            CHECK_EQ_U(r.layer_accesses[0], want[i].acc);
            CHECK_EQ_U(r.layer_hits[0], want[i].hits);
            CHECK_EQ_U(r.restarts, 1);
            uint64_t wa = 0, wh = 0;
            for (uint32_t w = 0; w < r.n_windows; w++) wa += r.win_accesses[w], wh += r.win_hits[w];
            CHECK_EQ_U(wa, want[i].acc);
            CHECK_EQ_U(wh, want[i].hits);
            moe_replay_result_free(&r);
        }
    moe_trace_free(t);
}

/* Brute force: for an online policy (what it does at a step depends only on
 * the steps so far), counting from position N on a one-sequence decode
 * trace (position = step) gives the full replay's counts minus those of
 * the replay of its first N steps alone. Random 3-layer top-2 traces,
 * both scopes, both loops. */
static void count_from_is_full_minus_prefix(void) {
    const uint32_t L = 3, E = 9, K = 2, STEPS = 300, N = 117;
    uint64_t rs = 77;
    moe_trace *tr[2] = {0};
    for (int part = 0; part < 2; part++) { /* the whole trace, then its first N steps */
        moe_error err = {{0}};
        moe_trace_builder *b = moe_tb_new(L, E, K, 1, 0, 0);
        uint64_t r0 = rs;
        for (uint32_t s = 0; s < (part ? N : STEPS); s++) {
            CHECK(moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err) == 0 && moe_tb_add_token(b, 0, s, &err) == 0);
            for (uint32_t l = 0; l < L; l++) {
                uint32_t a = (uint32_t)(test_splitmix64(&r0) % E), c = (uint32_t)(test_splitmix64(&r0) % E);
                uint32_t e0 = a < c ? a : c, e1 = (e0 + 1 + (uint32_t)(test_splitmix64(&r0) % (E - 1))) % E;
                CHECK(moe_tb_set(b, 0, l, 0, e0, 0.7f, &err) == 0 && moe_tb_set(b, 0, l, 1, e1, 0.3f, &err) == 0);
            }
        }
        CHECK((tr[part] = moe_tb_finish(b, "test", "test_replay", NULL, &err)) != NULL);
    }
    const char *policies[] = {"lru", "fifo", "lfu", "random", "arc", "s3fifo", "sieve", "lcp", "moe-infinity"};
    for (size_t p = 0; p < sizeof policies / sizeof *policies; p++)
        for (int global = 0; global < 2; global++)
            for (int general = 0; general < 2; general++) {
                moe_replay_config cfg = {.policy = policies[p], .capacity = global ? 8 : 3, .seed = 5,
                                         .scope = global ? MOE_SCOPE_GLOBAL : MOE_SCOPE_PER_LAYER};
                moe_replay_result full, prefix, from;
                moe_error err;
                int (*run_fn)(const moe_trace *, const moe_replay_config *, moe_replay_result *, moe_error *) =
                    general ? moe_replay_engine_run : moe_replay;
                CHECK(run_fn(tr[0], &cfg, &full, &err) == 0);
                CHECK(run_fn(tr[1], &cfg, &prefix, &err) == 0);
                cfg.count_from = N;
                CHECK(run_fn(tr[0], &cfg, &from, &err) == 0);
                CHECK(prefix.accesses == N * L * K && prefix.hits > 0 && from.hits > 0); /* not vacuous */
                CHECK_EQ_U(from.accesses, full.accesses - prefix.accesses);
                CHECK_EQ_U(from.hits, full.hits - prefix.hits);
                CHECK_EQ_U(from.compulsory_misses, full.compulsory_misses - prefix.compulsory_misses);
                CHECK_EQ_U(from.evictions, full.evictions - prefix.evictions);
                CHECK_EQ_U(from.bypasses, full.bypasses - prefix.bypasses);
                CHECK_EQ_U(from.token_slot_hits, full.token_slot_hits - prefix.token_slot_hits);
                for (uint32_t l = 0; l < L; l++) {
                    CHECK_EQ_U(from.layer_accesses[l], full.layer_accesses[l] - prefix.layer_accesses[l]);
                    CHECK_EQ_U(from.layer_hits[l], full.layer_hits[l] - prefix.layer_hits[l]);
                }
                moe_replay_result_free(&full);
                moe_replay_result_free(&prefix);
                moe_replay_result_free(&from);
            }
    moe_trace_free(tr[0]);
    moe_trace_free(tr[1]);
}

/* moe_trace_token_steps: "0,1 ; 2,3 / 0,2" (top-2, LRU capacity 2). As
 * recorded, step 0's union {0,1,2,3} inserts 0 and 1 and cannot cache 2, 3
 * (2 not cached); step 1 {0,2}: 0 hits, 2 evicts 1: 6 activations, 1 hit,
 * 1 eviction. Token by token: {0,1} misses; {2,3} evicts 0 and 1; {0,2}: 0
 * evicts 3 (2 is protected), 2 hits: 6 activations, 1 hit, 3 evictions,
 * nothing bypassed. Sequences, positions and phases are kept. */
static void token_steps_serves_tokens_one_by_one(void) {
    moe_trace *t = make_trace(1, 4, 2, "0,1 ; 2,3 / 0,2");
    CHECK(t);
    t->step_phase[0] = MOE_PHASE_PREFILL;
    moe_error err;
    moe_trace *u = moe_trace_token_steps(t, &err);
    CHECK(u);
    CHECK(moe_trace_validate(u, &err) == 0);
    CHECK_EQ_U(u->n_steps, 3);
    CHECK_EQ_U(u->n_tokens, 3);
    CHECK(u->step_phase[0] == MOE_PHASE_PREFILL && u->step_phase[1] == MOE_PHASE_PREFILL &&
          u->step_phase[2] == MOE_PHASE_DECODE);
    CHECK(!memcmp(u->token_pos, t->token_pos, 3 * sizeof *u->token_pos));
    CHECK(!memcmp(u->experts, t->experts, 6 * sizeof *u->experts));
    moe_replay_result a = run(t, "lru", 2, MOE_SCOPE_PER_LAYER, 0), b = run(u, "lru", 2, MOE_SCOPE_PER_LAYER, 0);
    CHECK_EQ_U(a.accesses, 6);
    CHECK_EQ_U(a.hits, 1);
    CHECK_EQ_U(a.bypasses, 2);
    CHECK_EQ_U(a.evictions, 1);
    CHECK_EQ_U(b.accesses, 6);
    CHECK_EQ_U(b.hits, 1);
    CHECK_EQ_U(b.bypasses, 0);
    CHECK_EQ_U(b.evictions, 3);
    moe_replay_result_free(&a);
    moe_replay_result_free(&b);
    moe_trace_free(u);
    moe_trace_free(t);
}

/* Key sequences have no positions: count_from is refused, not ignored. */
static void count_from_refused_for_keys(void) {
    uint32_t *keys = malloc(3 * sizeof *keys);
    CHECK(keys);
    keys[0] = 0, keys[1] = 1, keys[2] = 0;
    moe_error err;
    moe_trace *t = moe_trace_from_keys(keys, 3, 2, "test", NULL, &err);
    CHECK(t);
    moe_replay_config cfg = {.policy = "lru", .capacity = 1, .count_from = 1};
    moe_replay_result r;
    CHECK(moe_replay(t, &cfg, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "--count-from");
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
    RUN(count_from_hand);
    RUN(count_from_is_full_minus_prefix);
    RUN(count_from_refused_for_keys);
    RUN(token_steps_serves_tokens_one_by_one);
    CHECK_EXIT();
}
