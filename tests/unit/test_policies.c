/* test_policies.c: every eviction policy against hand-worked answers, an
 * independent reference replay (lru, fifo, lfu, belady), a brute-force
 * optimum (belady), and edge cases.
 *
 * Hand-worked traces: written as key sequences with the cache state after
 * each access in the comment (list notation newest-first where order
 * matters); the numbers were worked out on paper from each policy's header
 * rule. Global-scope traces use 2 layers x E experts, top-1, so the global
 * key of (layer l, expert e) is l*E+e and the access order is step by step,
 * layer 0 then layer 1. */
#include "../../core/cache.h"
#include "../../sim/replay.h"
#include "check.h"
#include "tracemaker.h"

static moe_replay_result run(const moe_trace *t, const char *policy, uint32_t cap, int scope, int cold) {
    moe_replay_config cfg = {.policy = policy, .capacity = cap, .scope = scope, .cold_per_seq = cold, .seed = 1};
    moe_replay_result r;
    moe_error err;
    if (moe_replay(t, &cfg, &r, &err)) {
        printf("replay %s failed: %s\n", policy, err.msg);
        memset(&r, 0, sizeof r);
        r.accesses = UINT64_MAX; /* makes any count check fail */
    }
    return r;
}

static uint64_t hits_of(const moe_trace *t, const char *policy, uint32_t cap, int scope, int cold) {
    moe_replay_result r = run(t, policy, cap, scope, cold);
    uint64_t h = r.accesses == UINT64_MAX ? UINT64_MAX : r.hits;
    moe_replay_result_free(&r);
    return h;
}

/* Drive one cache directly over a single-layer trace of groups ("0,1/2/..."
 * is not needed: one key per step) so the final resident set can be read.
 * Returns hits; *res_mask receives the resident keys as a bitmask. */
static long drive(const char *policy, uint32_t cap, uint32_t n_keys, const char *keys, uint64_t *res_mask) {
    moe_trace *t = make_trace(1, n_keys, 1, keys);
    if (!t) return -1;
    moe_policy_env env = {.n_keys = n_keys, .capacity = cap, .n_layers = 1, .n_experts = n_keys,
                          .fixed_layer = 0, .seed = 1, .trace = t};
    moe_error err;
    moe_cache *c = moe_cache_new(policy, &env, &err);
    if (!c) {
        printf("drive %s: %s\n", policy, err.msg);
        moe_trace_free(t);
        return -1;
    }
    /* Belady's next use, computed here from the key list. */
    long hits = 0;
    for (uint64_t s = 0; s < t->n_steps; s++) {
        uint32_t k = t->experts[s];
        moe_access a = {.time = s, .next_use = MOE_NEVER, .step = s, .layer = 0, .expert = k, .weight = 1};
        for (uint64_t j = s + 1; j < t->n_steps; j++)
            if (t->experts[j] == k) { a.next_use = j; break; }
        if (c->ops->on_step) c->ops->on_step(c->st, s);
        moe_cache_begin_group(c);
        moe_cache_protect(c, k);
        int64_t v;
        hits += moe_cache_access(c, k, &a, &v) == MOE_HIT;
    }
    *res_mask = 0;
    for (uint32_t k = 0; k < n_keys; k++)
        if (moe_cache_resident(c, k)) *res_mask |= 1ull << k;
    moe_cache_free(c);
    moe_trace_free(t);
    return hits;
}
#define M(...) mask_of((int[]){__VA_ARGS__, -1})
static uint64_t mask_of(const int *k) {
    uint64_t m = 0;
    for (; *k >= 0; k++) m |= 1ull << *k;
    return m;
}

/* ---------------- hand-worked answers ---------------- */

/* fifo, cap 2: 0m [0]; 1m [1,0]; 0h (no reorder); 2m evicts 0 [2,1];
 * 0m evicts 1 [0,2]; 1m evicts 2 [1,0] -> 1 hit, {0,1}. (lru: 2 hits.)
 * Global, E=4, "0|0 / 0|1 / 1|0" = keys 0 4 0 5 1 4, cap 2: 0m 4m [4,0];
 * 0h; 5m ev 0 [5,4]; 1m ev 4 [1,5]; 4m ev 5 [4,1] -> 1 hit. Per-layer cap 1:
 * layer 0 sees 0 0 1 (1 hit), layer 1 sees 0 1 0 (0 hits). */
static void hand_fifo(void) {
    uint64_t m;
    CHECK_EQ_U(drive("fifo", 2, 4, "0/1/0/2/0/1", &m), 1);
    CHECK_EQ_U(m, M(0, 1));
    CHECK_EQ_U(drive("lru", 2, 4, "0/1/0/2/0/1", &m), 2);
    moe_trace *t = make_trace(2, 4, 1, "0|0 / 0|1 / 1|0");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "fifo", 2, MOE_SCOPE_GLOBAL, 0), 1);
    CHECK_EQ_U(hits_of(t, "fifo", 1, MOE_SCOPE_PER_LAYER, 0), 1);
    moe_trace_free(t);
}

/* lfu, cap 2: 0 0 1 2 1 2 0: 0m(1) 0h(2) 1m(1); 2m evicts 1 (count 1 < 2);
 * 1m evicts 2; 2m evicts 1; 0h -> 2 hits, {0,2}.
 * Ties to LRU: 0 1 2 1 0: 0m 1m; 2m: both count 1, 0 older -> ev 0; 1h (2);
 * 0m evicts 2 (count 1) -> 1 hit, {0,1}.
 * Count since last insertion: 0 0 0 1 2 0 1 2 1 2 with cap 2 ... kept to
 * the reference comparison below.
 * Global, E=4, "0|0 / 0|1 / 0|0 / 1|1" = 0 4 0 5 0 4 1 5, cap 2: 0m 4m; 0h(2);
 * 5m ev 4; 0h(3); 4m ev 5; 1m ev 4 (1 < 3); 5m ev 1 -> 2 hits.
 * Per-layer cap 1: layer 0: 0 0 0 1 (2 hits); layer 1: 0 1 0 1 (0). */
static void hand_lfu(void) {
    uint64_t m;
    CHECK_EQ_U(drive("lfu", 2, 4, "0/0/1/2/1/2/0", &m), 2);
    CHECK_EQ_U(m, M(0, 2));
    CHECK_EQ_U(drive("lfu", 2, 4, "0/1/2/1/0", &m), 1);
    CHECK_EQ_U(m, M(0, 1));
    moe_trace *t = make_trace(2, 4, 1, "0|0 / 0|1 / 0|0 / 1|1");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "lfu", 2, MOE_SCOPE_GLOBAL, 0), 2);
    CHECK_EQ_U(hits_of(t, "lfu", 1, MOE_SCOPE_PER_LAYER, 0), 2);
    moe_trace_free(t);
}

/* random: with one unprotected candidate the draw is forced.
 * "0,1 / 0,2 / 1,2", cap 2: {0,1}; step 1: 0h, 2m: 0 protected -> ev 1;
 * step 2: 1m: 2 protected -> ev 0; 2h -> 2 hits, {1,2}.
 * Global, E=2, "0|1 / 0|1 / 1|0" = keys 0 3 0 3 1 2, cap 1: 0 hits, 6
 * compulsory... keys 0,3 are each seen twice: 4 compulsory, 0 hits. */
static void hand_random(void) {
    moe_trace *t = make_trace(1, 4, 2, "0,1 / 0,2 / 1,2");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "random", 2, MOE_SCOPE_PER_LAYER, 0), 2);
    CHECK_EQ_U(hits_of(t, "random:seed=77", 2, MOE_SCOPE_GLOBAL, 0), 2); /* 1 layer: same */
    moe_trace_free(t);
    t = make_trace(2, 2, 1, "0|1 / 0|1 / 1|0");
    CHECK(t);
    moe_replay_result r = run(t, "random", 1, MOE_SCOPE_GLOBAL, 0);
    CHECK_EQ_U(r.hits, 0);
    CHECK_EQ_U(r.compulsory_misses, 4);
    moe_replay_result_free(&r);
    /* per-layer cap 1: layer 0 sees 0 0 1 (1 hit), layer 1 sees 1 1 0 (1 hit) */
    CHECK_EQ_U(hits_of(t, "random", 1, MOE_SCOPE_PER_LAYER, 0), 2);
    moe_trace_free(t);
}

/* belady, cap 2: 0 1 2 0 1: 2m: next 0 @3, 1 @4 -> ev 1; 0h; 1m: 0 and 2
 * never again -> either; 1 hit.
 * Cap 3, cyclic 0123 x3: 3m ev 2 (0@4 1@5 2@6) {0,1,3}; 0h 1h; 2m ev 1
 * (3@7 0@8 1@9) {0,3,2}; 3h 0h; 1m ev 0 (2@10 3@11 0 never) {3,2,1}; 2h 3h
 * -> 6 hits, final {1,2,3}. lru and fifo get 0.
 * Global, E=4, "0|0 / 1|1 / 0|0 / 1|1" = 0 4 1 5 0 4 1 5, cap 2:
 * 0m 4m; 1m: next 0@4, 4@5 -> ev 4 {0,1}; 5m: 0@4, 1@6 -> ev 1 {0,5};
 * 0h; 4m: 0@never, 5@7 -> ev 0 {5,4}; 1m: 5@7, 4 never -> ev 4 {5,1};
 * 5h -> 2 hits. Per-layer cap 1: layer 0: 0 1 0 1 -> 0 hits, same layer 1. */
static void hand_belady(void) {
    uint64_t m;
    CHECK_EQ_U(drive("belady", 2, 4, "0/1/2/0/1", &m), 1);
    CHECK_EQ_U(drive("belady", 3, 4, "0/1/2/3/0/1/2/3/0/1/2/3", &m), 6);
    CHECK_EQ_U(m, M(1, 2, 3));
    CHECK_EQ_U(drive("lru", 3, 4, "0/1/2/3/0/1/2/3/0/1/2/3", &m), 0);
    CHECK_EQ_U(drive("fifo", 3, 4, "0/1/2/3/0/1/2/3/0/1/2/3", &m), 0);
    moe_trace *t = make_trace(2, 4, 1, "0|0 / 1|1 / 0|0 / 1|1");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "belady", 2, MOE_SCOPE_GLOBAL, 0), 2);
    CHECK_EQ_U(hits_of(t, "belady", 1, MOE_SCOPE_PER_LAYER, 0), 0);
    CHECK_EQ_U(hits_of(t, "belady", 2, MOE_SCOPE_PER_LAYER, 0), 4);
    moe_trace_free(t);
}

/* arc, cap 2 (c = 2, p = 0): 0 0 1 2 0 1
 *  0m T1=[0]; 0h T2=[0]; 1m T1=[1] (not full);
 *  2m case IV, |T1|+|B1| = 1: REPLACE p=0: |T1|=1 > 0 -> 1 to B1; T1=[2];
 *  0h T2=[0];
 *  1m in B1: p = 0 + max(1, 0/1) = 1; REPLACE: |T1|=1 not > 1 -> LRU of T2
 *     (0) to B2; 1 to T2 -> T1=[2], T2=[1]: 2 hits, final {1,2}.
 *  (lru: 0m 0h 1m 2m ev0 0m ev1 1m ev2 -> 1 hit, final {0,1}.)
 * Global, E=2, "0|0 / 0|1 / 0|0" = keys 0 2 0 3 0 2, cap 2:
 *  0m T1=[0]; 2m T1=[2,0]; 0h T2=[0] T1=[2]; 3m: REPLACE p=0 -> 2 to B1,
 *  T1=[3]; 0h; 2m in B1: p=1, REPLACE: |T1|=1 not > 1 -> 0 to B2; 2 to T2
 *  -> 2 hits, resident {3,2} (lru ends with {0,2}).
 * Per-layer cap 1: layer 0: 0 0 0 (2 hits); layer 1: 0 1 0 (0 hits). */
static void hand_arc(void) {
    uint64_t m;
    CHECK_EQ_U(drive("arc", 2, 4, "0/0/1/2/0/1", &m), 2);
    CHECK_EQ_U(m, M(1, 2));
    CHECK_EQ_U(drive("lru", 2, 4, "0/0/1/2/0/1", &m), 1);
    CHECK_EQ_U(m, M(0, 1));
    moe_trace *t = make_trace(2, 2, 1, "0|0 / 0|1 / 0|0");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "arc", 2, MOE_SCOPE_GLOBAL, 0), 2);
    CHECK_EQ_U(hits_of(t, "arc", 1, MOE_SCOPE_PER_LAYER, 0), 2);
    moe_trace_free(t);
    CHECK_EQ_U(drive("arc", 2, 4, "0/2/0/3/0/2", &m), 2); /* the global keys as one sequence */
    CHECK_EQ_U(m, M(2, 3));
}

/* s3fifo:variant=moe (small=0.1, threshold=1): S gets 1 slot at capacities
 * 1, 2, 3 (these cases predate variant=lcs, the default, and were worked out
 * for this rule; s3fifo_lcs below works the default one).
 * cap 1 (G holds 1): 0 0 1 0: 0m S=[0]; 0h f=1; 1m: S tail 0 has f>=1 ->
 *  to M; S empty -> M tail 0 f=1 -> f=0, reinserted; 0 f=0 -> evicted (no
 *  ghost); S=[1]; 0m: S tail 1 f=0 -> evicted to G=[1]; S=[0] -> 1 hit, {0}.
 * cap 2 (G 1): 0 1 0 2 1 3 0: 0m 1m S=[1,0]; 0h f0=1; 2m: S tail 0 -> M;
 *  S tail 1 f=0 -> G=[1]; S=[2] M=[0]; 1m: 1 in G -> ghost hit; S tail 2
 *  -> G=[2]; 1 enters M=[1,0]; 3m: |S|=0 < 1 -> M tail 0 f=1 -> f=0,
 *  M=[0,1]; M tail 1 f=0 -> evicted; S=[3]; 0h -> 2 hits, {0,3}.
 * cap 3 (G 2): 0 1 2 0 3 4 0 1: S=[2,1,0]; 0h f=1; 3m: 0 -> M, 1 -> G;
 *  4m: S=[4,3,2]... |S|=2>=1: S tail 2 f=0 -> G=[2,1]; 0h f=2; 1m: in G
 *  (G=[2]); S tail 3 -> G=[3,2]; 1 to M=[1,0]; S=[4] -> 2 hits, {0,1,4}.
 * Global, E=2, cap 2, "0|0 / 0|1 / 0|0 / 1|1" = keys 0 2 0 3 0 2 1 3:
 *  0m 2m S=[2,0]; 0h f=1; 3m: 0 -> M, 2 -> G=[2], S=[3]; 0h f=2;
 *  2m ghost hit: S tail 3 f=0 -> G=[3]; 2 to M=[2,0];
 *  1m: |S|=0 -> M tail 0 f=2 -> f=1, M=[0,2]; tail 2 f=0 -> evicted; S=[1];
 *  3m: ghost hit; S tail 1 f=0 -> G=[1]; 3 to M=[3,0] -> 2 hits.
 * Per-layer cap 1: layer 0: 0 0 0 1 -> 2 hits; layer 1: 0 1 0 1 -> 0. */
static void hand_s3fifo(void) {
    uint64_t m;
    CHECK_EQ_U(drive("s3fifo:variant=moe", 1, 4, "0/0/1/0", &m), 1);
    CHECK_EQ_U(m, M(0));
    CHECK_EQ_U(drive("s3fifo:variant=moe", 2, 4, "0/1/0/2/1/3/0", &m), 2);
    CHECK_EQ_U(m, M(0, 3));
    CHECK_EQ_U(drive("s3fifo:variant=moe", 3, 5, "0/1/2/0/3/4/0/1", &m), 2);
    CHECK_EQ_U(m, M(0, 1, 4));
    CHECK_EQ_U(drive("s3fifo:variant=moe", 2, 4, "0/2/0/3/0/2/1/3", &m), 2);
    CHECK_EQ_U(m, M(0, 3));
    moe_trace *t = make_trace(2, 2, 1, "0|0 / 0|1 / 0|0 / 1|1");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "s3fifo:variant=moe", 2, MOE_SCOPE_GLOBAL, 0), 2);
    CHECK_EQ_U(hits_of(t, "s3fifo:variant=moe", 1, MOE_SCOPE_PER_LAYER, 0), 2);
    moe_trace_free(t);
    /* canonical name and parameter checks */
    char canon[256];
    moe_error err;
    moe_policy_env env = {.n_keys = 4, .capacity = 2, .n_layers = 1, .n_experts = 4};
    CHECK(moe_policy_canonical("s3fifo:small=0.10", &env, canon, sizeof canon, &err) == 0);
    CHECK(!strcmp(canon, "s3fifo:variant=lcs,small=0.1,threshold=2,ghost=0.9"));
    CHECK(moe_policy_canonical("s3fifo", &env, canon, sizeof canon, &err) == 0);
    CHECK(!strcmp(canon, "s3fifo:variant=lcs,small=0.1,threshold=2,ghost=0.9"));
    CHECK(moe_policy_canonical("s3fifo:variant=moe", &env, canon, sizeof canon, &err) == 0);
    CHECK(!strcmp(canon, "s3fifo:variant=moe,small=0.1,threshold=1"));
    CHECK(moe_policy_canonical("s3fifo:threshold=3,variant=moe", &env, canon, sizeof canon, &err) == 0);
    CHECK(!strcmp(canon, "s3fifo:variant=moe,small=0.1,threshold=3"));
    CHECK(moe_policy_canonical("s3fifo:threshold=4", &env, canon, sizeof canon, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "out of range");
    CHECK(moe_policy_canonical("s3fifo:variant=paper", &env, canon, sizeof canon, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "variant=paper");
    CHECK(moe_policy_canonical("s3fifo:variant=moe,ghost=0.5", &env, canon, sizeof canon, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "ghost");
}

/* s3fifo (variant=lcs, libCacheSim's rule) with small=0.5, ghost=0.5 at
 * cap 4: S has floor(0.5*4) = 2 slots, M the other 2, G holds 2, promotion
 * needs freq >= 2. Keys 3 6 3 1 1 3 4 4 0 6 4 1 0 (S, M, G newest first):
 *  3m 6m 3h(f3=1) 1m 1h(f1=1) 3h(f3=2) 4m 4h(f4=1): S=[4,1,6,3], M=[]
 *   (S may exceed its 2 slots while M is below its share);
 *  0m full, |S|=4 >= 2: S tail 3 f=2 -> M=[3] with f=0; the search stays in
 *   S: tail 6 f=0 -> evicted into G=[6]; S=[0,4,1];
 *  6m in G: leaves G; |S|=3: tail 1 f=1 < 2 -> G=[1]; 6 enters M=[6,3];
 *  4h f4=2;
 *  1m in G (G=[]): |S|=2: tail 4 f=2 -> M=[4,6,3], f=0; S=[0] is now below
 *   its 2 slots but the search stays in S: 0 f=0 -> G=[0]; M=[1,4,6,3];
 *  0m in G: S empty -> M tail 3 f=0 -> evicted; M=[0,1,4,6].
 *  -> 5 hits, {0,1,4,6}; libCacheSim's cachesim at aa0fc40 says the same
 *  (13 requests, 8 misses; fifo-size-ratio=0.5,ghost-size-ratio=0.5).
 * Going back to M after 4's promotion (variant=moe's search) would evict 3
 * instead of 0 and hit 0 at the end (6 hits); threshold=1 promotes 4 and 1
 * at the 6m and keeps 6 hits too (libCacheSim: 7 misses). Keeping f on
 * promotion leaves 3 with f=2 in M: 3 survives and 6 is evicted at the end
 * ({0,1,3,4}). */
static void s3fifo_lcs(void) {
    uint64_t m;
    const char *keys = "3/6/3/1/1/3/4/4/0/6/4/1/0";
    CHECK_EQ_U(drive("s3fifo:small=0.5,ghost=0.5", 4, 7, keys, &m), 5);
    CHECK_EQ_U(m, M(0, 1, 4, 6));
    CHECK_EQ_U(drive("s3fifo:small=0.5,ghost=0.5,threshold=1", 4, 7, keys, &m), 6);
    CHECK_EQ_U(m, M(0, 1, 4, 6));
}



/* sieve, cap 3: 0 1 2 0 3 1 4 0 5
 *  q (new..old) [2,1,0]; 0h v0=1; 3m: hand at tail 0: visited -> clear,
 *  move newer to 1: v=0 -> evict 1, hand -> 2; q=[3,2,0]; 1m: hand 2 v=0
 *  -> evict 2, hand -> 3; q=[1,3,0]; 4m: hand 3 -> evict 3, hand -> 1;
 *  q=[4,1,0]; 0h v0=1; 5m: hand 1 v=0 -> evict 1 -> 2 hits, {0,4,5}.
 * Global, E=4, cap 2, "0|0 / 1|0 / 2|1" = keys 0 4 1 4 2 5:
 *  0m 4m q=[4,0]; 1m: hand at 0 v=0 -> evict 0, hand -> 4; q=[1,4];
 *  4h v=1; 2m: hand 4 visited -> clear, newer: none -> wrap to tail 4?
 *  (tail is 4: q=[1,4]) 4 now v=0 -> evict 4, hand -> 1; q=[2,1];
 *  5m: hand 1 v=0 -> evict 1 -> 1 hit, {2,5}.
 * Per-layer cap 1: layer 0: 0 1 2 (0), layer 1: 0 0 1 (1 hit). */
static void hand_sieve(void) {
    uint64_t m;
    CHECK_EQ_U(drive("sieve", 3, 6, "0/1/2/0/3/1/4/0/5", &m), 2);
    CHECK_EQ_U(m, M(0, 4, 5));
    CHECK_EQ_U(drive("sieve", 2, 6, "0/4/1/4/2/5", &m), 1);
    CHECK_EQ_U(m, M(2, 5));
    moe_trace *t = make_trace(2, 4, 1, "0|0 / 1|0 / 2|1");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "sieve", 2, MOE_SCOPE_GLOBAL, 0), 1);
    CHECK_EQ_U(hits_of(t, "sieve", 1, MOE_SCOPE_PER_LAYER, 0), 1);
    moe_trace_free(t);
}

/* lcp. Per-layer with decay=1, freq=1 it orders exactly like lfu (header):
 * the lfu example gives 2 hits, {0,2}. Global with freq=0, decay=1,
 * bias=10: layer-0 keys get +10, so deep (layer 1) keys go first, LRU among
 * equals. E=4, cap 3, "0|0 / 1|1 / 0|2" = keys 0 4 1 5 0 6:
 *  0m 4m 1m; 5m: candidates 0 (L0), 4 (L1), 1 (L0) -> evict 4; 0h;
 *  6m: only layer-1 candidate 5 -> evict 5 -> 1 hit (lru: 0 hits).
 * Per-layer cap 1: layer 0: 0 1 0 (0); layer 1: 0 1 2 (0). */
static void hand_lcp(void) {
    uint64_t m;
    CHECK_EQ_U(drive("lcp:decay=1,freq=1", 2, 4, "0/0/1/2/1/2/0", &m), 2);
    CHECK_EQ_U(m, M(0, 2));
    moe_trace *t = make_trace(2, 4, 1, "0|0 / 1|1 / 0|2");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "lcp:freq=0,decay=1,bias=10", 3, MOE_SCOPE_GLOBAL, 0), 1);
    CHECK_EQ_U(hits_of(t, "lru", 3, MOE_SCOPE_GLOBAL, 0), 0);
    CHECK_EQ_U(hits_of(t, "lcp", 1, MOE_SCOPE_PER_LAYER, 0), 0);
    moe_trace_free(t);
}

/* least-stale, global, E=4, cap 2, "0|0 / 0|1 / 0|0" = keys 0 4 | 0 5 | 0 4:
 *  step 0: 0m 4m; step 1: 0h (current); 5m: 4 is stale, 0 current -> ev 4;
 *  step 2: 0h; 4m: 5 stale -> ev 5 -> 2 hits, {0,4}.
 *  fifo: step 1: 0h, 5m ev 0; step 2: 0m ev 4, 4m ev 5 -> 1 hit.
 * Per-layer it is fifo (header): layer 0 0 0 0 (2 hits at cap 1), layer 1
 * 0 1 0 (0 hits at cap 1, 1 hit at cap 2). */
static void hand_least_stale(void) {
    moe_trace *t = make_trace(2, 4, 1, "0|0 / 0|1 / 0|0");
    CHECK(t);
    CHECK_EQ_U(hits_of(t, "least-stale", 2, MOE_SCOPE_GLOBAL, 0), 2);
    CHECK_EQ_U(hits_of(t, "fifo", 2, MOE_SCOPE_GLOBAL, 0), 1);
    CHECK_EQ_U(hits_of(t, "least-stale", 1, MOE_SCOPE_PER_LAYER, 0), 2);
    CHECK_EQ_U(hits_of(t, "least-stale", 2, MOE_SCOPE_PER_LAYER, 0), 3);
    moe_trace_free(t);
}

/* pin, n=1, profile=self, cap 2, 0 1 2 0 1 2 0 (counts 0:3 1:2 2:2 -> pin 0):
 *  0m 1m; 2m ev 1 (LRU unpinned); 0h; 1m ev 2; 2m ev 1; 0h -> 2 hits, {0,2}
 *  (lru: 0 hits). Global, E=2, cap 2, n=1, "0|1 / 1|1 / 1|0 / 1|1":
 *  counts layer 0: e1=3 -> key 1; layer 1: e1=3 -> key 3; pinned {1,3} fills
 *  the cache. keys 0 3 1 3 1 2 1 3: 0m 3m; 1m ev 0; 3h 1h; 2m: only pinned
 *  residents -> bypass; 1h 3h -> 4 hits, 1 bypass. */
static void hand_pin(void) {
    uint64_t m;
    CHECK_EQ_U(drive("pin:n=1", 2, 4, "0/1/2/0/1/2/0", &m), 2);
    CHECK_EQ_U(m, M(0, 2));
    CHECK_EQ_U(drive("lru", 2, 4, "0/1/2/0/1/2/0", &m), 0);
    moe_trace *t = make_trace(2, 2, 1, "0|1 / 1|1 / 1|0 / 1|1");
    CHECK(t);
    moe_replay_result r = run(t, "pin:n=1", 2, MOE_SCOPE_GLOBAL, 0);
    CHECK_EQ_U(r.hits, 4);
    CHECK_EQ_U(r.bypasses, 1);
    CHECK(!strcmp(r.policy, "pin:n=1,profile=self"));
    moe_replay_result_free(&r);
    /* per-layer cap 1, n=1: each layer pins its expert 1: layer 0 sees
     * 0 1 1 1 (0m, 1m ev 0, 1h 1h: 2 hits), layer 1 sees 1 1 0 1 (1m 1h,
     * 0 bypassed, 1h: 2 hits) */
    CHECK_EQ_U(hits_of(t, "pin:n=1", 1, MOE_SCOPE_PER_LAYER, 0), 4);
    moe_replay_config cfg = {.policy = "pin:profile=/nonexistent/x.moetrace", .capacity = 1};
    moe_error err;
    CHECK(moe_replay(t, &cfg, &r, &err) == -1);
    CHECK_STR_CONTAINS(err.msg, "pin: profile");
    moe_trace_free(t);
}

/* ---------------- random traces ---------------- */

static uint64_t rng_next(uint64_t *s) { return test_splitmix64(s); }
static uint32_t rng_below(uint64_t *s, uint32_t n) { return (uint32_t)(rng_next(s) % n); }

/* A small random trace: 1-3 layers, 2-6 experts, top 1-3, 1-3 tokens per
 * step, sequence changes now and then, skewed expert choice. */
static moe_trace *random_trace(uint64_t *rs, uint32_t max_steps) {
    uint32_t L = 1 + rng_below(rs, 3), E = 2 + rng_below(rs, 5), K = 1 + rng_below(rs, 3);
    if (K > E) K = E;
    moe_error err;
    moe_trace_builder *b = moe_tb_new(L, E, K, 0, 0, 0);
    uint32_t steps = 1 + rng_below(rs, max_steps), seq = 0;
    for (uint32_t s = 0; s < steps; s++) {
        if (rng_below(rs, 8) == 0) seq++;
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err)) goto bad;
        uint32_t toks = 1 + rng_below(rs, 3);
        for (uint32_t t = 0; t < toks; t++) {
            int64_t tok = moe_tb_add_token(b, seq, s, &err);
            if (tok < 0) goto bad;
            for (uint32_t l = 0; l < L; l++) {
                uint32_t used = 0; /* bitmask: distinct experts per token */
                for (uint32_t k = 0; k < K; k++) {
                    uint32_t e;
                    do e = rng_below(rs, 2) ? rng_below(rs, (E + 1) / 2) : rng_below(rs, E);
                    while (used >> e & 1);
                    used |= 1u << e;
                    if (moe_tb_set(b, (uint64_t)tok, l, k, e, NAN, &err)) goto bad;
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

/* The access list under the replay semantics, computed independently:
 * step by step, layer by layer, the sorted union of the step's experts. */
typedef struct acc { uint32_t layer, expert, group; int reset; } acc;

static uint32_t access_list(const moe_trace *t, int cold, acc *out) {
    uint32_t n = 0, group = 0;
    for (uint64_t s = 0; s < t->n_steps; s++) {
        int reset = cold && s > 0 &&
                    t->token_seq[t->step_first_token[s]] != t->token_seq[t->step_first_token[s - 1]];
        for (uint32_t l = 0; l < t->n_layers; l++, group++) {
            for (uint32_t e = 0; e < t->n_experts; e++) {
                int used = 0;
                for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++)
                    for (uint32_t k = 0; k < t->top_k; k++)
                        used |= t->experts[(tok * t->n_layers + l) * t->top_k + k] == e;
                if (used) {
                    out[n] = (acc){l, e, group, reset};
                    reset = 0;
                    n++;
                }
            }
        }
    }
    return n;
}

/* Largest (step, layer) set of an access list. */
static uint32_t max_group(const acc *a, uint32_t n) {
    uint32_t best = 0, run = 0;
    for (uint32_t i = 0; i < n; i++) {
        run = i && a[i].group == a[i - 1].group ? run + 1 : 1;
        if (run > best) best = run;
    }
    return best;
}

/* Reference replay of lru / fifo / lfu / belady with plain arrays,
 * O(n * capacity): one cache per layer or one global cache. */
enum { R_LRU, R_FIFO, R_LFU, R_BELADY };
static uint64_t ref_replay(const moe_trace *t, int pol, uint32_t cap, int global, int cold) {
    static acc a[4096];
    uint32_t n = access_list(t, cold, a);
    uint32_t L = t->n_layers, E = t->n_experts, NK = L * E;
    /* per key: resident, last use, insertion time, count; cache of a key */
    int res[64] = {0};
    uint64_t last[64], ins[64], cnt[64];
    uint32_t used[8] = {0};
    uint64_t hits = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (a[i].reset) {
            memset(res, 0, sizeof res);
            memset(used, 0, sizeof used);
        }
        uint32_t key = a[i].layer * E + a[i].expert, ci = global ? 0 : a[i].layer;
        if (res[key]) {
            hits++;
            last[key] = i;
            cnt[key]++;
            continue;
        }
        uint32_t ccap = cap < (global ? NK : E) ? cap : (global ? NK : E);
        if (used[ci] >= ccap) {
            int victim = -1;
            uint64_t best = 0;
            for (uint32_t k = 0; k < NK; k++) {
                if (!res[k] || (global ? 0 : k / E) != ci) continue;
                int prot = 0; /* in the current group? */
                for (uint32_t j = i; j-- > 0 && a[j].group == a[i].group;)
                    prot |= a[j].layer * E + a[j].expert == k;
                for (uint32_t j = i; j < n && a[j].group == a[i].group; j++)
                    prot |= a[j].layer * E + a[j].expert == k;
                if (prot) continue;
                uint64_t score; /* smaller = evict first */
                if (pol == R_LRU) score = last[k];
                else if (pol == R_FIFO) score = ins[k];
                else if (pol == R_LFU) score = cnt[k] * 100000 + last[k];
                else {
                    uint64_t nu = UINT64_MAX;
                    for (uint32_t j = i + 1; j < n; j++)
                        if (a[j].layer * E + a[j].expert == k) { nu = j; break; }
                    score = UINT64_MAX - nu;
                }
                if (victim < 0 || score < best) { victim = (int)k; best = score; }
            }
            if (victim < 0) continue; /* bypass (also capacity 0) */
            res[victim] = 0;
            used[ci]--;
        }
        res[key] = 1;
        used[ci]++;
        last[key] = ins[key] = i;
        cnt[key] = 1;
    }
    return hits;
}

static void reference_comparison(void) {
    static const char *names[] = {"lru", "fifo", "lfu", "belady"};
    uint64_t rs = 12345;
    int compared = 0;
    for (int trial = 0; trial < 300; trial++) {
        moe_trace *t = random_trace(&rs, 40);
        CHECK(t);
        uint32_t cap = rng_below(&rs, 6);
        for (int scope = 0; scope < 2; scope++)
            for (int cold = 0; cold < 2; cold++)
                for (int p = 0; p < 4; p++) {
                    uint64_t want = ref_replay(t, p, cap, scope, cold);
                    uint64_t got = hits_of(t, names[p], cap, scope, cold);
                    if (want != got)
                        printf("trial %d %s cap %u scope %d cold %d: ref %llu replay %llu\n", trial,
                               names[p], cap, scope, cold, (unsigned long long)want,
                               (unsigned long long)got);
                    CHECK_EQ_U(got, want);
                    compared++;
                }
        moe_trace_free(t);
    }
    CHECK(compared == 300 * 16);
}

/* Belady is never beaten by any registered policy that, like the replay
 * rule says, always evicts when an unprotected resident exists. pin is the
 * exception by design: it never evicts a pinned expert, so it may decline to
 * cache (bypass) where MIN must insert, and that can beat MIN's count (seen
 * at capacity 1: the one slot pinned to the hottest expert). */
static void belady_never_beaten(void) {
    uint64_t rs = 999;
    for (int trial = 0; trial < 200; trial++) {
        moe_trace *t = random_trace(&rs, 40);
        CHECK(t);
        static acc a[4096];
        uint32_t n = access_list(t, 0, a);
        for (uint32_t cap = 1; cap <= 4; cap++)
            for (int scope = 0; scope < 2; scope++)
                for (int cold = 0; cold < 2; cold++) {
                    if (max_group(a, n) > cap) continue; /* see belady_loses_to_bypass */
                    uint64_t opt = hits_of(t, "belady", cap, scope, cold);
                    for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) {
                        if (!strcmp((*p)->name, "pin")) continue;
                        uint64_t h = hits_of(t, (*p)->name, cap, scope, cold);
                        if (h > opt)
                            printf("trial %d: %s %llu > belady %llu (cap %u scope %d cold %d)\n", trial,
                                   (*p)->name, (unsigned long long)h, (unsigned long long)opt, cap, scope, cold);
                        CHECK(h <= opt);
                    }
                }
        moe_trace_free(t);
    }
}

/* Brute force: the best hit count over every allowed victim choice. */
typedef struct bf { const acc *a; uint32_t n, E, cap; int global; } bf;
static uint64_t dfs(const bf *b, uint32_t i, uint64_t *mask) {
    if (i == b->n) return 0;
    const acc *x = &b->a[i];
    uint64_t saved[8];
    memcpy(saved, mask, sizeof saved);
    if (x->reset) memset(mask, 0, 8 * sizeof *mask);
    uint32_t key = x->layer * b->E + x->expert, ci = b->global ? 0 : x->layer;
    uint64_t bit = 1ull << key, best;
    if (mask[ci] & bit) {
        best = 1 + dfs(b, i + 1, mask);
    } else if ((uint32_t)__builtin_popcountll(mask[ci]) < b->cap) {
        mask[ci] |= bit;
        best = dfs(b, i + 1, mask);
        mask[ci] &= ~bit;
    } else {
        uint64_t group = 0;
        for (uint32_t j = 0; j < b->n; j++)
            if (b->a[j].group == x->group) group |= 1ull << (b->a[j].layer * b->E + b->a[j].expert);
        uint64_t cand = mask[ci] & ~group;
        if (!cand) {
            best = dfs(b, i + 1, mask);
        } else {
            best = 0;
            for (uint32_t k = 0; k < 64; k++) {
                if (!(cand >> k & 1)) continue;
                mask[ci] = (mask[ci] & ~(1ull << k)) | bit;
                uint64_t h = dfs(b, i + 1, mask);
                mask[ci] = (mask[ci] | (1ull << k)) & ~bit;
                if (h > best) best = h;
            }
        }
    }
    memcpy(mask, saved, sizeof saved);
    return best;
}

static void belady_equals_brute_force(void) {
    uint64_t rs = 4242;
    static acc a[4096];
    int done = 0;
    for (int trial = 0; trial < 400 && done < 150; trial++) {
        moe_trace *t = random_trace(&rs, 8);
        CHECK(t);
        if (t->n_layers * t->n_experts > 64) { moe_trace_free(t); continue; }
        for (int cold = 0; cold < 2; cold++) {
            uint32_t n = access_list(t, cold, a);
            if (n > 16) continue;
            for (uint32_t cap = 1; cap <= 3; cap++)
                for (int scope = 0; scope < 2; scope++) {
                    if (max_group(a, n) > cap) continue; /* see belady_loses_to_bypass */
                    bf b = {a, n, t->n_experts, cap, scope};
                    uint64_t mask[8] = {0};
                    uint64_t opt = dfs(&b, 0, mask);
                    uint64_t got = hits_of(t, "belady", cap, scope, cold);
                    if (got != opt)
                        printf("trial %d cap %u scope %d cold %d: belady %llu brute %llu\n", trial, cap,
                               scope, cold, (unsigned long long)got, (unsigned long long)opt);
                    CHECK_EQ_U(got, opt);
                    done++;
                }
        }
        moe_trace_free(t);
    }
    CHECK(done >= 100);
}

/* MIN is not optimal when a (step, layer) set is larger than the cache:
 * the forced bypass lets another policy keep a key MIN evicted. Global, E=5,
 * cap 2, keys (layer-1 keys are 5+e):
 *   g0 {1,2} g1 {6,8} g2 {4} g3 {9} g4 {1} g5 {7} g6 {0} g7 {5,7,9} g8 {2} g9 {6,9}
 * belady: [1,2]; 6 ev 2; 8 ev 1 (6 protected) [6,8]; 4 ev 8 (never);
 *   9 ev 4 [6,9]; 1 ev 6 [9,1]; 7 ev 1 [9,7]; 0: 9 (next @11) farther than
 *   7 (@10) -> ev 9 [7,0]; g7: 5 ev 0, 7 hit, 9 bypassed; 2 ev 5 or 7;
 *   g9: 6, 9 miss -> 1 hit.
 * Better: at g6 evict 7 instead [9,0]; g7: 5 ev 0, 7 bypassed, 9 hit;
 *   2 ev 5 [9,2]; g9: 6 ev 2, 9 hit -> 2 hits, which the brute force finds. */
static void belady_loses_to_bypass(void) {
    moe_trace *t = make_trace(2, 5, 3, "1,2|1,3 / 4|4 / 1|2 / 0|0,2,4 / 2|1,4");
    CHECK(t);
    static acc a[64];
    uint32_t n = access_list(t, 0, a);
    CHECK_EQ_U(n, 15);
    bf b = {a, n, 5, 2, 1};
    uint64_t mask[8] = {0};
    CHECK_EQ_U(dfs(&b, 0, mask), 2);
    CHECK_EQ_U(hits_of(t, "belady", 2, MOE_SCOPE_GLOBAL, 0), 1);
    moe_trace_free(t);
}

/* lcp with decay=1 equals lfu in per-layer scope; least-stale equals fifo in
 * per-layer scope (both stated in the headers). */
static void stated_equivalences(void) {
    uint64_t rs = 77;
    for (int trial = 0; trial < 100; trial++) {
        moe_trace *t = random_trace(&rs, 40);
        CHECK(t);
        for (uint32_t cap = 0; cap <= 5; cap++) {
            CHECK_EQ_U(hits_of(t, "lcp:decay=1,freq=1", cap, MOE_SCOPE_PER_LAYER, 0),
                       hits_of(t, "lfu", cap, MOE_SCOPE_PER_LAYER, 0));
            CHECK_EQ_U(hits_of(t, "least-stale", cap, MOE_SCOPE_PER_LAYER, 1),
                       hits_of(t, "fifo", cap, MOE_SCOPE_PER_LAYER, 1));
        }
        moe_trace_free(t);
    }
}

static void random_determinism(void) {
    uint64_t rs = 5;
    moe_trace *t = NULL;
    for (int i = 0; i < 20; i++) { /* a trace long enough for many evictions */
        moe_trace_free(t);
        t = random_trace(&rs, 40);
        CHECK(t);
        if (t->n_steps > 30 && t->n_experts >= 5) break;
    }
    int differ = 0;
    uint64_t first = hits_of(t, "random", 2, MOE_SCOPE_GLOBAL, 0);
    CHECK_EQ_U(hits_of(t, "random", 2, MOE_SCOPE_GLOBAL, 0), first);
    for (int s = 1; s <= 20; s++) {
        char spec[64];
        snprintf(spec, sizeof spec, "random:seed=%d", s);
        uint64_t a = hits_of(t, spec, 2, MOE_SCOPE_GLOBAL, 0);
        CHECK_EQ_U(hits_of(t, spec, 2, MOE_SCOPE_GLOBAL, 0), a);
        differ |= a != first;
    }
    moe_trace_free(t);
    CHECK(differ);
}

/* Edge cases for every policy: capacity 0 caches nothing; capacity >= the
 * key space misses only compulsorily; capacity 1 never beats belady; a
 * working set larger than the cache (cyclic 0..4, cap 2) gives lru/fifo 0. */
static void edges_all_policies(void) {
    moe_trace *t = make_trace(2, 5, 1, "0|4 / 1|3 / 2|2 / 3|1 / 4|0 / 0|4 / 1|3 / 2|2 / 3|1 / 4|0");
    CHECK(t);
    for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) {
        for (int scope = 0; scope < 2; scope++) {
            moe_replay_result r = run(t, (*p)->name, 0, scope, 0);
            CHECK_EQ_U(r.hits, 0);
            CHECK_EQ_U(r.bypasses, 20);
            moe_replay_result_free(&r);
            r = run(t, (*p)->name, 1000, scope, 0);
            CHECK_EQ_U(r.hits, 10);
            CHECK_EQ_U(r.compulsory_misses, 10);
            CHECK_EQ_U(r.evictions, 0);
            moe_replay_result_free(&r);
            if (!strcmp((*p)->name, "pin")) continue; /* see belady_never_beaten */
            CHECK(hits_of(t, (*p)->name, 1, scope, 0) <= hits_of(t, "belady", 1, scope, 0));
            CHECK(hits_of(t, (*p)->name, 2, scope, 0) <= hits_of(t, "belady", 2, scope, 0));
        }
    }
    /* per layer: layer 0 is 0 1 2 3 4 0 1 2 3 4 with cap 2 */
    CHECK_EQ_U(hits_of(t, "lru", 2, MOE_SCOPE_PER_LAYER, 0), 0);
    CHECK_EQ_U(hits_of(t, "fifo", 2, MOE_SCOPE_PER_LAYER, 0), 0);
    /* belady, per layer 0 1 2 3 4 0 1 2 3 4, cap 2: 2 ev 1 {0,2}; 3 ev 2
     * {0,3}; 4 ev 3 {0,4}; 0h; 1 ev 0 {4,1}... (4 @9 vs 0 never) ev 0;
     * 2 ev 1? {4,1}: 1 never, 4@9 -> ev 1 {4,2}; 3 ev 2 {4,3}; 4h -> 2 hits per
     * layer, 4 in all. */
    CHECK_EQ_U(hits_of(t, "belady", 2, MOE_SCOPE_PER_LAYER, 0), 4);
    moe_trace_free(t);
}

int main(void) {
    RUN(hand_fifo);
    RUN(hand_lfu);
    RUN(hand_random);
    RUN(hand_belady);
    RUN(hand_arc);
    RUN(hand_s3fifo);
    RUN(s3fifo_lcs);
    RUN(hand_sieve);
    RUN(hand_lcp);
    RUN(hand_least_stale);
    RUN(hand_pin);
    RUN(reference_comparison);
    RUN(belady_never_beaten);
    RUN(belady_equals_brute_force);
    RUN(belady_loses_to_bypass);
    RUN(stated_equivalences);
    RUN(random_determinism);
    RUN(edges_all_policies);
    CHECK_EXIT();
}
