/* test_policies_ext.c: the issue-4 policies (moe-infinity, hobbit, learned)
 * against hand-worked answers, reductions to simpler policies, and random
 * invariants (learned: deterministic, never above belady, train=PATH).
 *
 * Notation as in test_policies.c: tracemaker specs, one step per '/', layers
 * by '|', slots by ','. Tracemaker weights are 1/(slot+1), so in a top-2
 * token slot 0 has normalised weight 2/3 and slot 1 has c = 2/3 >= 0.6
 * before it: slot 0 is HOBBIT high precision, slot 1 is not. Global keys are
 * layer * E + expert. Cache states in the comments list resident keys. */
#include "../../core/cache.h"
#include "../../core/policies/util.h"
#include "../../sim/replay.h"
#include "check.h"
#include "tracemaker.h"

#include <unistd.h>

static uint64_t hits_of(const moe_trace *t, const char *policy, uint32_t cap, int scope, int cold) {
    moe_replay_config cfg = {.policy = policy, .capacity = cap, .scope = scope, .cold_per_seq = cold, .seed = 1};
    moe_replay_result r;
    moe_error err;
    if (moe_replay(t, &cfg, &r, &err)) {
        printf("replay %s failed: %s\n", policy, err.msg);
        return UINT64_MAX;
    }
    uint64_t h = r.hits;
    moe_replay_result_free(&r);
    return h;
}

/* Final resident set of a replay with one layer-0 cache (per-layer scope)
 * or the global cache, as a bitmask: replays the trace through moe_cache
 * directly with the replay's rules (ascending experts, set protected). */
static uint64_t final_mask(const moe_trace *t, const char *policy, uint32_t cap, int global, uint64_t *hits) {
    uint32_t L = t->n_layers, E = t->n_experts;
    moe_policy_env env = {.n_keys = global ? L * E : E, .capacity = cap, .n_layers = L, .n_experts = E,
                          .fixed_layer = global ? -1 : 0, .seed = 1, .trace = t};
    moe_error err;
    moe_cache *c = moe_cache_new(policy, &env, &err);
    if (!c) { printf("%s: %s\n", policy, err.msg); return UINT64_MAX; }
    uint64_t time = 0;
    *hits = 0;
    for (uint64_t s = 0; s < t->n_steps; s++) {
        if (c->ops->on_step) c->ops->on_step(c->st, s);
        for (uint32_t l = 0; l < (global ? L : 1); l++) {
            uint8_t need[64] = {0};
            for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++)
                for (uint32_t k = 0; k < t->top_k; k++) {
                    uint16_t e = t->experts[moe_trace_rec(t, tok, l) + k];
                    if (e != MOE_NO_EXPERT) need[e] = 1;
                }
            moe_cache_begin_group(c);
            for (uint32_t e = 0; e < E; e++)
                if (need[e]) moe_cache_protect(c, (global ? l * E : 0) + e);
            for (uint32_t e = 0; e < E; e++) {
                if (!need[e]) continue;
                moe_access a = {.time = time++, .next_use = MOE_NEVER, .step = s, .layer = l, .expert = e, .weight = NAN};
                int64_t v;
                *hits += moe_cache_access(c, (global ? l * E : 0) + e, &a, &v) == MOE_HIT;
            }
        }
    }
    uint64_t m = 0;
    for (uint32_t k = 0; k < c->n_keys; k++)
        if (moe_cache_resident(c, k)) m |= 1ull << k;
    moe_cache_free(c);
    return m;
}
#define M(...) mask_of((int[]){__VA_ARGS__, -1})
static uint64_t mask_of(const int *k) {
    uint64_t m = 0;
    for (; *k >= 0; k++) m |= 1ull << *k;
    return m;
}

/* Random trace: L layers, E experts, top-k distinct experts per token with
 * random weights in slot order descending, 1..3 tokens per step (mostly 1),
 * a new sequence every few steps. */
static moe_trace *random_trace(uint32_t L, uint32_t E, uint32_t k, uint32_t steps, uint64_t seed) {
    moe_error err;
    moe_trace_builder *b = moe_tb_new(L, E, k, 1, 0, 0);
    uint64_t st = seed;
    uint32_t seq = 0;
    for (uint32_t s = 0; s < steps; s++) {
        if (s && moe_rand_below(&st, 5) == 0) seq++;
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err)) goto bad;
        uint32_t ntok = moe_rand_below(&st, 4) == 0 ? 2 + (uint32_t)moe_rand_below(&st, 2) : 1;
        for (uint32_t tk = 0; tk < ntok; tk++) {
            int64_t tok = moe_tb_add_token(b, seq, s * 4 + tk, &err);
            if (tok < 0) goto bad;
            for (uint32_t l = 0; l < L; l++) {
                uint32_t used = 0;
                float w = 1.0f;
                for (uint32_t j = 0; j < k; j++) {
                    uint32_t e;
                    do e = (uint32_t)moe_rand_below(&st, E);
                    while (used & (1u << e));
                    used |= 1u << e;
                    w *= 0.3f + 0.7f * (float)moe_rand_below(&st, 1000) / 1000.0f;
                    if (moe_tb_set(b, (uint64_t)tok, l, j, e, w, &err)) goto bad;
                }
            }
        }
    }
    moe_trace *t = moe_tb_finish(b, "rand", "test", NULL, &err);
    if (!t) printf("random_trace: %s\n", err.msg);
    return t;
bad:
    printf("random_trace: %s\n", err.msg);
    moe_tb_abort(b);
    return NULL;
}

/* ---------------- moe-infinity ---------------- */

/* One layer, E=4, cap 2, keys 0 0 1 2 1 3 (visits v = hits since insertion):
 * 0m [0:v0]; 0h v0=1; 1m [0:1, 1:0]; 2m: min v is 1 (0) -> evict 1 [0:1, 2:0];
 * 1m: evict 2 (v0 < v1) [0:1, 1:0]; 3m: evict 1 -> {0,3}, 1 hit.
 * (lru: 0m 0h 1m, 2m evicts 0, 1h, 3m evicts 2 -> 2 hits, {1,3}.)
 * Tie: keys 0 1 2, cap 2: 0 and 1 both v0 at 2's miss, least recent 0 goes
 * -> {1,2}. */
static void hand_moe_infinity(void) {
    uint64_t h;
    moe_trace *t = make_trace(1, 4, 1, "0/0/1/2/1/3");
    CHECK(t);
    CHECK_EQ_U(final_mask(t, "moe-infinity", 2, 0, &h), M(0, 3));
    CHECK_EQ_U(h, 1);
    CHECK_EQ_U(final_mask(t, "lru", 2, 0, &h), M(1, 3));
    CHECK_EQ_U(h, 2);
    moe_trace_free(t);
    t = make_trace(1, 4, 1, "0/1/2");
    CHECK(t);
    CHECK_EQ_U(final_mask(t, "moe-infinity", 2, 0, &h), M(1, 2));
    moe_trace_free(t);
}

/* Sequence clearing, one layer, E=4, cap 2: "s0: 0/0/0/1 / s1: 2/1/3".
 * clear=1: 0m, 0h, 0h (v0=2), 1m [0:2, 1:0]; step 4 starts sequence 1:
 *   counts zeroed [0:0 last 3, 1:0 last 4]; 2m evicts the least recent, 0
 *   [1:0, 2:0]; 1h (v1=1); 3m evicts 2 -> {1,3}, hits 3 (steps 1, 2, 5).
 * clear=0: 2m evicts 1 (v0 < v2) [0:2, 2:0]; 1m evicts 2 [0:2, 1:0]; 3m
 *   evicts 1 -> {0,3}, hits 2. */
static void hand_moe_infinity_clear(void) {
    uint64_t h;
    moe_trace *t = make_trace(1, 4, 1, "s0: 0/0/0/1/ s1: 2/1/3");
    CHECK(t);
    CHECK_EQ_U(final_mask(t, "moe-infinity", 2, 0, &h), M(1, 3));
    CHECK_EQ_U(h, 3);
    CHECK_EQ_U(final_mask(t, "moe-infinity:clear=0", 2, 0, &h), M(0, 3));
    CHECK_EQ_U(h, 2);
    CHECK_EQ_U(hits_of(t, "moe-infinity", 2, MOE_SCOPE_PER_LAYER, 0), 3);
    CHECK_EQ_U(hits_of(t, "moe-infinity:clear=0", 2, MOE_SCOPE_PER_LAYER, 0), 2);
    moe_trace_free(t);
}

/* Global, 2 layers x E=2, top-1, cap 2: "0|0 / 0|1 / 1|0 / 1|1" = keys
 * 0 2 | 0 3 | 1 2 | 1 3. 0m 2m [0:0, 2:0]; 0h (v0=1); 3m evicts 2 [0:1, 3:0];
 * 1m evicts 3; 2m evicts 1; 1m evicts 2; 3m evicts 1 -> {0,3}, 1 hit.
 * Per layer, cap 2, "0|0 / 0|1 / 1|0 / 2|2 / 1|1 / 3|0" (E=4): layer 0 is
 * the 0 0 1 2 1 3 above (1 hit); layer 1 is 0 1 0 2 1 0: 0m 1m, 0h (v0=1),
 * 2m evicts 1, 1m evicts 2, 0h -> 2 hits; 3 in all. */
static void hand_moe_infinity_scopes(void) {
    uint64_t h;
    moe_trace *t = make_trace(2, 2, 1, "0|0 / 0|1 / 1|0 / 1|1");
    CHECK(t);
    CHECK_EQ_U(final_mask(t, "moe-infinity", 2, 1, &h), M(0, 3));
    CHECK_EQ_U(h, 1);
    CHECK_EQ_U(hits_of(t, "moe-infinity", 2, MOE_SCOPE_GLOBAL, 0), 1);
    CHECK_EQ_U(hits_of(t, "lru", 2, MOE_SCOPE_GLOBAL, 0), 2);
    moe_trace_free(t);
    t = make_trace(2, 4, 1, "0|0 / 0|1 / 1|0 / 2|2 / 1|1 / 3|0");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "moe-infinity", 2, MOE_SCOPE_PER_LAYER, 0), 3);
    moe_trace_free(t);
}

/* ---------------- hobbit ---------------- */

/* One layer, E=4, top-1 (every access high precision, so H = F), cap 2,
 * defaults (0.25 each; per-layer so the layer term is 0):
 * keys 0 0 1 2: clock T: 0 ins T1; 0 hit T2 (cnt 2, hp 2); 1 ins T3 (cnt 1,
 * hp 1). 2's miss at T=3: max cnt 2, max hp 2.
 *   P(0) = .25/(1+1) + .25*2/2 + .25*2/2 = .625
 *   P(1) = .25/(1+0) + .25*1/2 + .25*1/2 = .5   -> evict 1: {0,2}
 * (lru would evict 0.) */
static void hand_hobbit_defaults(void) {
    uint64_t h;
    moe_trace *t = make_trace(1, 4, 1, "0/0/1/2");
    CHECK(t);
    CHECK_EQ_U(final_mask(t, "hobbit", 2, 0, &h), M(0, 2));
    CHECK_EQ_U(h, 1);
    CHECK_EQ_U(final_mask(t, "lru", 2, 0, &h), M(1, 2));
    moe_trace_free(t);
}

/* High-precision use alone (hp=1, others 0), one layer, E=4, top-2, cap 3:
 * "0,1 / 0,2 / 3,1 / 2 / 1".
 * s0: 0 (slot 0, high) ins hp0=1; 1 (slot 1, low) ins hp1=0.
 * s1: 0 hit (slot 0, high) hp0=2; 2 (slot 1, low) ins hp2=0. {0,1,2}
 * s2: 1 hit (slot 1, low); 3 miss (slot 0, high), {1,3} protected: H(0)=2/2,
 *     H(2)=0 -> evict 2; hp3=1. {0,1,3}
 * s3: 2 miss (slot 0, high, hp2=1): H(0)=1, H(1)=0, H(3)=.5 -> evict 1.
 *     {0,2,3}
 * s4: 1 miss: H(0)=1, H(2)=.5, H(3)=.5, tie to the least recent, 3 ->
 *     {0,1,2}; 2 hits in all.
 * lru: s2's miss evicts 0 (least recent of {0,2}), s3 2 hit, s4 1 hit -> 4. */
static void hand_hobbit_hp(void) {
    uint64_t h;
    moe_trace *t = make_trace(1, 4, 2, "0,1 / 0,2 / 3,1 / 2 / 1");
    CHECK(t);
    CHECK_EQ_U(final_mask(t, "hobbit:recency=0,freq=0,hp=1,dist=0", 3, 0, &h), M(0, 1, 2));
    CHECK_EQ_U(h, 2);
    CHECK_EQ_U(hits_of(t, "hobbit:recency=0,freq=0,hp=1,dist=0", 3, MOE_SCOPE_PER_LAYER, 0), 2);
    CHECK_EQ_U(hits_of(t, "lru", 3, MOE_SCOPE_PER_LAYER, 0), 4);
    moe_trace_free(t);
}

/* Layer nearness alone (dist=1), global, 3 layers x E=2, top-1, cap 2:
 * "0|0|0 / 1|1|1 / 1|1|1" = keys 0 2 4 | 1 3 5 | 1 3 5. With lc the layer
 * being served, d = ((l - lc - 1) mod 3) + 1 and D = (3 - d) / 2.
 * s0: 0m 2m; 4m (lc 2): key 0 d=1 D=1, key 2 d=2 D=.5 -> evict 2. {0,4}
 * s1: 1m (lc 0): 0 d=3 D=0, 4 d=2 D=.5 -> evict 0 {4,1};
 *     3m (lc 1): 4 d=1 D=1, 1 d=2 D=.5 -> evict 1 {4,3};
 *     5m (lc 2): 4 d=3 D=0, 3 d=2 -> evict 4 {3,5}.
 * s2: 1m (lc 0): 3 d=1 D=1, 5 d=2 -> evict 5 {3,1}; 3 hit;
 *     5m (lc 2): 3 d=2 D=.5, 1 d=1 D=1 -> evict 3 -> {1,5}, 1 hit.
 * lru: every access misses (0 hits). Per-layer scope: the layer term is the
 * constant 0, every P ties and the tie-break is lru. */
static void hand_hobbit_dist(void) {
    uint64_t h;
    moe_trace *t = make_trace(3, 2, 1, "0|0|0 / 1|1|1 / 1|1|1");
    CHECK(t);
    const char *p = "hobbit:recency=0,freq=0,hp=0,dist=1";
    CHECK_EQ_U(final_mask(t, p, 2, 1, &h), M(1, 5));
    CHECK_EQ_U(h, 1);
    CHECK_EQ_U(hits_of(t, p, 2, MOE_SCOPE_GLOBAL, 0), 1);
    CHECK_EQ_U(hits_of(t, "lru", 2, MOE_SCOPE_GLOBAL, 0), 0);
    CHECK_EQ_U(hits_of(t, p, 1, MOE_SCOPE_PER_LAYER, 0), hits_of(t, "lru", 1, MOE_SCOPE_PER_LAYER, 0));
    moe_trace_free(t);
}

/* Reductions on random traces, both scopes, with and without cold restarts:
 * hobbit with only the recency weight orders exactly like lru (1/(1+age) is
 * strictly decreasing in age); with only the frequency weight like lfu
 * (count since insertion, ties to least recent); moe-infinity:clear=0 like
 * lfu (hits since insertion = lfu's count - 1). */
static void reductions_random(void) {
    for (int trial = 0; trial < 40; trial++) {
        moe_trace *t = random_trace(2 + trial % 3, 6, 2, 40, 1000 + (uint64_t)trial);
        CHECK(t);
        for (uint32_t cap = 2; cap <= 7; cap++)
            for (int scope = 0; scope < 2; scope++)
                for (int cold = 0; cold < 2; cold++) {
                    uint64_t lru = hits_of(t, "lru", cap, scope, cold), lfu = hits_of(t, "lfu", cap, scope, cold);
                    CHECK_EQ_U(hits_of(t, "hobbit:recency=1,freq=0,hp=0,dist=0", cap, scope, cold), lru);
                    CHECK_EQ_U(hits_of(t, "hobbit:recency=0,freq=1,hp=0,dist=0", cap, scope, cold), lfu);
                    CHECK_EQ_U(hits_of(t, "moe-infinity:clear=0", cap, scope, cold), lfu);
                }
        moe_trace_free(t);
    }
}

/* Without a trace in the env the high-precision test falls back to the
 * access's weight: w >= 1 - hi (0.4) or NaN is high. With hp=1 only, a key
 * whose one access had w = 0.3 is evicted before one with w = 0.5. */
static void hobbit_weight_fallback(void) {
    moe_policy_env env = {.n_keys = 4, .capacity = 2, .n_layers = 1, .n_experts = 4, .fixed_layer = 0, .seed = 1};
    moe_error err;
    moe_cache *c = moe_cache_new("hobbit:recency=0,freq=0,hp=1,dist=0", &env, &err);
    CHECK(c);
    float w[3] = {0.5f, 0.3f, 0.9f};
    int64_t v = -1;
    for (uint32_t k = 0; k < 3; k++) {
        moe_access a = {.time = k, .next_use = MOE_NEVER, .step = k, .layer = 0, .expert = k, .weight = w[k]};
        moe_cache_begin_group(c);
        moe_cache_protect(c, k);
        moe_cache_access(c, k, &a, &v);
    }
    CHECK_EQ_U(v, 1);
    CHECK(moe_cache_resident(c, 0) && moe_cache_resident(c, 2));
    moe_cache_free(c);
}


/* ---------------- learned ---------------- */

/* On random traces whose every (step, layer) set fits the cache (top-1, at
 * most 3 tokens a step, capacity >= 3): learned is deterministic (two runs,
 * same hits) and never beats belady, both scopes, with and without cold
 * restarts (which refit the model). */
static void learned_random(void) {
    for (int trial = 0; trial < 25; trial++) {
        moe_trace *t = random_trace(2 + trial % 2, 6, 1, 60, 500 + (uint64_t)trial);
        CHECK(t);
        for (uint32_t cap = 3; cap <= 5; cap++)
            for (int scope = 0; scope < 2; scope++)
                for (int cold = 0; cold < 2; cold++) {
                    uint64_t h1 = hits_of(t, "learned", cap, scope, cold);
                    uint64_t h2 = hits_of(t, "learned", cap, scope, cold);
                    CHECK(h1 != UINT64_MAX);
                    CHECK_EQ_U(h1, h2);
                    CHECK(h1 <= hits_of(t, "belady", cap, scope, cold));
                }
        moe_trace_free(t);
    }
}

/* train=PATH with a trace holding exactly the replayed trace's first half
 * fits the same model as the default oracle-half: same hits. A training
 * trace of another geometry is refused; the canonical name states the
 * default. */
static void learned_train_path(void) {
    const char *half = "0|1 / 0|2 / 1|1 / 0|3 / 2|1 / 0|2 / 3|1 / 0|3";
    const char *full = "0|1 / 0|2 / 1|1 / 0|3 / 2|1 / 0|2 / 3|1 / 0|3 / "
                       "1|1 / 0|2 / 2|3 / 0|1 / 3|2 / 0|1 / 1|3 / 0|2";
    moe_trace *th = make_trace(2, 4, 1, half), *tf = make_trace(2, 4, 1, full);
    CHECK(th && tf);
    char path[] = "/tmp/moesim_learned_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    moe_error err;
    CHECK(moe_trace_save(th, path, &err) == 0);
    char spec[128];
    snprintf(spec, sizeof spec, "learned:train=%s", path);
    for (int scope = 0; scope < 2; scope++)
        for (uint32_t cap = 1; cap <= 3; cap++)
            CHECK_EQ_U(hits_of(tf, spec, cap, scope, 0), hits_of(tf, "learned", cap, scope, 0));
    moe_trace *t3 = make_trace(3, 4, 1, "0|0|0");
    CHECK(t3);
    moe_replay_config cfg = {.policy = spec, .capacity = 2, .seed = 1};
    moe_replay_result r;
    CHECK(moe_replay(t3, &cfg, &r, &err) != 0);
    CHECK_STR_CONTAINS(err.msg, "layers");
    cfg.policy = "learned";
    CHECK(moe_replay(tf, &cfg, &r, &err) == 0);
    CHECK_STR_CONTAINS(r.policy, "train=oracle-half");
    moe_replay_result_free(&r);
    unlink(path);
    moe_trace_free(t3);
    moe_trace_free(th);
    moe_trace_free(tf);
}

int main(void) {
    RUN(hand_moe_infinity);
    RUN(hand_moe_infinity_clear);
    RUN(hand_moe_infinity_scopes);
    RUN(hand_hobbit_defaults);
    RUN(hand_hobbit_hp);
    RUN(hand_hobbit_dist);
    RUN(reductions_random);
    RUN(hobbit_weight_fallback);
    RUN(learned_random);
    RUN(learned_train_path);
    CHECK_EXIT();
}
