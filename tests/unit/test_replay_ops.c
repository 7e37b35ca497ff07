/* test_replay_ops.c: the optional fast paths give the same results as the
 * generic ones, for every policy.
 *
 *  - cache level: two caches of each policy side by side, one with the
 *    policy's ops as registered, one with the optional `replace` and `reset`
 *    ops removed
 *    (the generic choose_victim + on_evict + on_insert), fed the same random
 *    groups; every access result, victim, eviction count, eviction-hook call
 *    and the resident set after every access must match;
 *  - replay level: moe_replay (its decode fast path, the policy's replace op)
 *    against a plain reference replay written here from README "Replay
 *    semantics" on caches with the replace op removed, on random traces that
 *    mix one-token and multi-token steps, partly filled slots, weights or
 *    none, both scopes, cold restarts; every count, per-layer and curve
 *    value must match;
 *  - loop level: on demand-only configs the general loop
 *    (sim/replay_engine.c, the one that also prefetches and prices time)
 *    gives exactly what moe_replay's fast path gives, on the same traces,
 *    for every policy that does not need the future, counting everything
 *    or from a token position that falls inside multi-token steps. */
#include <math.h>

#include "../../core/cache.h"
#include "../../sim/replay.h"
#include "../../sim/replay_internal.h"
#include "check.h"

static uint64_t sm64(uint64_t *s) { return test_splitmix64(s); }

/* Skewed draw in [0, n): small ids far more often, so caches see hits. */
static uint32_t draw(uint64_t *rs, uint32_t n) {
    uint32_t a = (uint32_t)(sm64(rs) % n), b = (uint32_t)(sm64(rs) % n);
    return a < b ? a : b;
}

/* The same ops without the optional replace op (generic path). */
#define MAX_POLICIES 64
static moe_policy_ops generic_ops[MAX_POLICIES];
static const moe_policy_ops *generic_of(const moe_policy_ops *ops) {
    int i = 0;
    for (const moe_policy_ops *const *p = moe_policy_list(); *p && i < MAX_POLICIES; p++, i++)
        if (*p == ops) {
            generic_ops[i] = *ops;
            generic_ops[i].replace = NULL;
            generic_ops[i].reset = NULL; /* cold restart by destroy + create */
            return &generic_ops[i];
        }
    return NULL;
}

/* ---------------- cache level ---------------- */

typedef struct hook_log {
    uint32_t keys[4096];
    uint32_t n;
} hook_log;

static void log_evict(void *ctx, const moe_cache *c, uint32_t key) {
    hook_log *h = ctx;
    (void)c;
    if (h->n < 4096) h->keys[h->n] = key;
    h->n++;
}

/* A one-layer trace of random groups (one token per step, up to 4 experts,
 * possibly more than the capacity, so bypasses happen). */
static moe_trace *group_trace(uint32_t E, uint64_t seed, uint32_t steps) {
    moe_error err;
    moe_trace_builder *b = moe_tb_new(1, E, 4, 1, 0, 0);
    uint64_t rs = seed;
    for (uint32_t s = 0; s < steps; s++) {
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err) || moe_tb_add_token(b, s / 50, s % 50, &err) < 0)
            goto bad;
        uint32_t m = 1 + (uint32_t)(sm64(&rs) % 4), n = 0, got[4];
        while (n < m) {
            uint32_t e = draw(&rs, E), dup = 0;
            for (uint32_t i = 0; i < n; i++) dup |= got[i] == e;
            if (dup) continue;
            if (moe_tb_set(b, 0, 0, n, e, (float)(sm64(&rs) % 1000) / 1000.0f, &err)) goto bad;
            got[n++] = e;
        }
    }
    moe_trace *t = moe_tb_finish(b, "test", "test_replay_ops", NULL, &err);
    if (!t) printf("group_trace: %s\n", err.msg);
    return t;
bad:
    printf("group_trace: %s\n", err.msg);
    moe_tb_abort(b);
    return NULL;
}

static void cache_side_by_side(const moe_policy_ops *ops, uint32_t E, uint32_t cap, uint64_t seed,
                               int hook, uint64_t *replaced) {
    moe_trace *t = group_trace(E, seed, 400);
    CHECK(t);
    if (!t) return;
    moe_policy_env env = {.n_keys = E, .capacity = cap, .n_layers = 1, .n_experts = E,
                          .fixed_layer = 0, .seed = seed, .trace = t};
    moe_error err;
    moe_cache *c[2] = {moe_cache_new(ops->name, &env, &err), NULL};
    if (c[0]) c[1] = moe_cache_new(ops->name, &env, &err);
    CHECK(c[0] && c[1]);
    if (!c[0] || !c[1]) {
        printf("%s: %s\n", ops->name, err.msg);
        moe_cache_free(c[0]);
        moe_trace_free(t);
        return;
    }
    c[1]->ops = generic_of(ops);
    CHECK(c[1]->ops);
    static hook_log logs[2];
    logs[0].n = logs[1].n = 0;
    if (hook)
        for (int i = 0; i < 2; i++) moe_cache_set_evict_hook(c[i], log_evict, &logs[i]);
    /* next use over the flattened (sorted) accesses, for offline policies */
    uint64_t n_acc = 0, time = 0;
    uint32_t keys[4 * 400], set[4];
    uint32_t sets[400][5];
    for (uint64_t s = 0; s < t->n_steps; s++) {
        uint32_t m = 0;
        for (uint32_t k = 0; k < 4; k++)
            if (t->experts[s * 4 + k] != MOE_NO_EXPERT) set[m++] = t->experts[s * 4 + k];
        for (uint32_t i = 1; i < m; i++) /* ascending, as the replay serves them */
            for (uint32_t j = i; j > 0 && set[j - 1] > set[j]; j--) {
                uint32_t x = set[j];
                set[j] = set[j - 1];
                set[j - 1] = x;
            }
        sets[s][0] = m;
        for (uint32_t i = 0; i < m; i++) keys[n_acc++] = sets[s][1 + i] = set[i];
    }
    int mismatch = 0;
    for (uint64_t s = 0; s < t->n_steps && !mismatch; s++) {
        for (int i = 0; i < 2; i++) {
            if (c[i]->ops->on_step) c[i]->ops->on_step(c[i]->st, s);
            moe_cache_begin_group(c[i]);
            for (uint32_t j = 0; j < sets[s][0]; j++) moe_cache_protect(c[i], sets[s][1 + j]);
        }
        for (uint32_t j = 0; j < sets[s][0]; j++, time++) {
            uint32_t k = sets[s][1 + j];
            moe_access a = {.time = time, .next_use = MOE_NEVER, .step = s, .layer = 0, .expert = k,
                            .weight = (float)((s * 7 + j) % 10) / 10.0f};
            for (uint64_t q = time + 1; q < n_acc; q++)
                if (keys[q] == k) { a.next_use = q; break; }
            int full = c[0]->used >= c[0]->capacity && c[0]->capacity && !c[0]->resident[k];
            int64_t v[2];
            enum moe_access_result r[2];
            for (int i = 0; i < 2; i++) r[i] = moe_cache_access(c[i], k, &a, &v[i]);
            if (full && ops->replace) ++*replaced;
            mismatch |= r[0] != r[1] || v[0] != v[1] || c[0]->last_evictions != c[1]->last_evictions ||
                        c[0]->used != c[1]->used || memcmp(c[0]->resident, c[1]->resident, E) != 0 ||
                        logs[0].n != logs[1].n;
            if (mismatch)
                printf("%s E=%u cap=%u hook=%d: step %llu key %u: result %d/%d victim %lld/%lld\n", ops->name,
                       E, cap, hook, (unsigned long long)s, k, r[0], r[1], (long long)v[0], (long long)v[1]);
        }
    }
    CHECK(!mismatch);
    CHECK(logs[0].n == logs[1].n &&
          !memcmp(logs[0].keys, logs[1].keys, (logs[0].n < 4096 ? logs[0].n : 4096) * sizeof(uint32_t)));
    moe_cache_free(c[0]);
    moe_cache_free(c[1]);
    moe_trace_free(t);
}

static void replace_op_matches_generic(void) {
    static const uint32_t caps[] = {0, 1, 2, 3, 5, 12};
    for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) {
        uint64_t replaced = 0;
        for (size_t ci = 0; ci < sizeof caps / sizeof *caps; ci++)
            for (int hook = 0; hook < 2; hook++)
                cache_side_by_side(*p, 12, caps[ci], 7 + ci, hook, &replaced);
        /* the fast path really ran for the policies that have it */
        if ((*p)->replace) CHECK(replaced > 1000);
    }
    CHECK(moe_policy_find("lru")->replace && moe_policy_find("fifo")->replace);
}

/* ---------------- replay level ---------------- */

/* Random trace: `multi_pct` percent of steps carry 2-3 tokens, the rest one;
 * a token uses 1..K of its K slots (mostly all); sequences change every 30
 * to 60 steps. */
static moe_trace *random_trace(uint32_t L, uint32_t E, uint32_t K, int weights, uint32_t multi_pct,
                               uint32_t steps, uint64_t seed) {
    moe_error err;
    moe_trace_builder *b = moe_tb_new(L, E, K, weights, 0, 0);
    uint64_t rs = seed;
    uint32_t seq = 0, left = 30;
    for (uint32_t s = 0; s < steps; s++) {
        if (!left--) {
            seq++;
            left = 30 + (uint32_t)(sm64(&rs) % 30);
        }
        if (moe_tb_begin_step(b, s, MOE_PHASE_DECODE, &err)) goto bad;
        uint32_t n_tok = sm64(&rs) % 100 < multi_pct ? 2 + (uint32_t)(sm64(&rs) % 2) : 1;
        for (uint32_t tk = 0; tk < n_tok; tk++) {
            if (moe_tb_add_token(b, seq, s * 4 + tk, &err) < 0) goto bad;
            for (uint32_t l = 0; l < L; l++) {
                uint32_t m = sm64(&rs) % 8 ? K : 1 + (uint32_t)(sm64(&rs) % K), n = 0, got[8];
                while (n < m) {
                    uint32_t e = draw(&rs, E), dup = 0;
                    for (uint32_t i = 0; i < n; i++) dup |= got[i] == e;
                    if (dup) continue;
                    float w = (float)(sm64(&rs) % 1000) / 1000.0f;
                    if (moe_tb_set(b, tk, l, n, e, w, &err)) goto bad;
                    got[n++] = e;
                }
            }
        }
    }
    moe_trace *t = moe_tb_finish(b, "test", "test_replay_ops", NULL, &err);
    if (!t) printf("random_trace: %s\n", err.msg);
    return t;
bad:
    printf("random_trace: %s\n", err.msg);
    moe_tb_abort(b);
    return NULL;
}

/* The union of step s's experts at layer l, ascending, with the highest
 * weight any token gave each (NaN if unknown). Returns its size. */
static uint32_t union_at(const moe_trace *t, uint64_t s, uint32_t l, uint32_t *set, float *wt) {
    uint32_t m = 0;
    for (uint32_t e = 0; e < t->n_experts; e++) {
        int found = 0;
        float w = NAN;
        for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++)
            for (uint32_t k = 0; k < t->top_k; k++) {
                size_t r = moe_trace_rec(t, tok, l) + k;
                if (t->experts[r] != e) continue;
                float x = t->weights ? t->weights[r] : NAN;
                if (!found) w = x;
                else if (x > w || isnan(w)) w = x;
                found = 1;
            }
        if (found) {
            set[m] = e;
            wt[m++] = w;
        }
    }
    return m;
}

/* The reference's recovery curve (replay.h), counted here by its own rule
 * rather than through the result's per-step offsets. */
static uint64_t ref_since_acc[MOE_SINCE_START_STEPS], ref_since_hits[MOE_SINCE_START_STEPS];

/* Reference replay (README "Replay semantics") on generic-path caches. */
static int ref_replay(const moe_trace *t, const char *policy, uint32_t cap, int global, int cold,
                      moe_replay_result *res) {
    const uint32_t L = t->n_layers, E = t->n_experts, n_caches = global ? 1 : L;
    memset(res, 0, sizeof *res);
    if (moe_replay_result_alloc(res, t, 0)) return -1;
    moe_cache *caches[16] = {0};
    moe_error err;
    for (uint32_t i = 0; i < n_caches; i++) {
        moe_policy_env env = {.n_keys = global ? L * E : E, .capacity = cap, .n_layers = L, .n_experts = E,
                              .fixed_layer = global ? -1 : (int32_t)i, .seed = 1 * 1000003u + i, .trace = t};
        if (!(caches[i] = moe_cache_new(policy, &env, &err))) return -1;
        caches[i]->ops = generic_of(caches[i]->ops);
    }
    snprintf(res->policy, sizeof res->policy, "%s", caches[0]->canonical);
    /* flattened keys for next use */
    uint32_t set[64];
    float wt[64];
    uint64_t n_acc = 0;
    for (uint64_t s = 0; s < t->n_steps; s++)
        for (uint32_t l = 0; l < L; l++) n_acc += union_at(t, s, l, set, wt);
    uint32_t *keys = malloc((n_acc + 1) * sizeof *keys);
    uint64_t *next = malloc((n_acc + 1) * sizeof *next);
    n_acc = 0;
    for (uint64_t s = 0; s < t->n_steps; s++)
        for (uint32_t l = 0; l < L; l++) {
            uint32_t m = union_at(t, s, l, set, wt);
            for (uint32_t i = 0; i < m; i++) keys[n_acc++] = l * E + set[i];
        }
    for (uint64_t i = 0; i < n_acc; i++) {
        next[i] = MOE_NEVER;
        for (uint64_t j = i + 1; j < n_acc; j++)
            if (keys[j] == keys[i]) { next[i] = j; break; }
    }
    int needs_future = (caches[0]->ops->flags & MOE_POLICY_NEEDS_FUTURE) != 0;
    uint8_t *seen = calloc((size_t)L * E, 1);
    uint64_t time = 0, seq_start = 0;
    int after_first = 0; /* the recovery curve counts every sequence but the first */
    memset(ref_since_acc, 0, sizeof ref_since_acc);
    memset(ref_since_hits, 0, sizeof ref_since_hits);
    for (uint64_t s = 0; s < t->n_steps; s++) {
        if (s > 0 && t->token_seq[t->step_first_token[s]] != t->token_seq[t->step_first_token[s - 1]])
            seq_start = s, after_first = 1;
        if (cold && s > 0 && t->token_seq[t->step_first_token[s]] != t->token_seq[t->step_first_token[s - 1]]) {
            for (uint32_t i = 0; i < n_caches; i++) moe_cache_reset(caches[i], &err);
            memset(seen, 0, (size_t)L * E);
            res->restarts++;
        }
        for (uint32_t i = 0; i < n_caches; i++)
            if (caches[i]->ops->on_step) caches[i]->ops->on_step(caches[i]->st, s);
        uint64_t win = s / res->win_steps;
        for (uint32_t l = 0; l < L; l++) {
            moe_cache *c = caches[global ? 0 : l];
            uint32_t base = global ? l * E : 0, m = union_at(t, s, l, set, wt);
            uint8_t hitflag[64] = {0};
            moe_cache_begin_group(c);
            for (uint32_t i = 0; i < m; i++) moe_cache_protect(c, base + set[i]);
            for (uint32_t i = 0; i < m; i++, time++) {
                moe_access a = {.time = time, .next_use = needs_future ? next[time] : MOE_NEVER, .step = s,
                                .layer = l, .expert = set[i], .weight = wt[i]};
                int64_t v;
                enum moe_access_result r = moe_cache_access(c, base + set[i], &a, &v);
                int hit = r == MOE_HIT;
                hitflag[set[i]] = (uint8_t)hit;
                res->accesses++;
                res->hits += hit;
                res->compulsory_misses += !hit && !seen[l * E + set[i]];
                seen[l * E + set[i]] = 1;
                res->bypasses += r == MOE_MISS_BYPASSED;
                res->evictions += v >= 0;
                res->layer_accesses[l]++;
                res->layer_hits[l] += hit;
                res->win_accesses[win]++;
                res->win_hits[win] += hit;
                if (after_first && s - seq_start < MOE_SINCE_START_STEPS) {
                    ref_since_acc[s - seq_start]++;
                    ref_since_hits[s - seq_start] += hit;
                }
            }
            for (uint64_t tok = t->step_first_token[s]; tok < t->step_first_token[s + 1]; tok++)
                for (uint32_t k = 0; k < t->top_k; k++) {
                    uint16_t e = t->experts[moe_trace_rec(t, tok, l) + k];
                    if (e == MOE_NO_EXPERT) break;
                    res->token_slots++;
                    res->token_slot_hits += hitflag[e];
                }
        }
    }
    for (uint32_t i = 0; i < n_caches; i++) moe_cache_free(caches[i]);
    free(seen);
    free(keys);
    free(next);
    return 0;
}

/* seqs: also the per-sequence counts (two engine results; the reference
 * replay does not count sequences) */
static int same_result(const moe_replay_result *a, const moe_replay_result *b, int seqs) {
    int ok = !strcmp(a->policy, b->policy) && a->accesses == b->accesses && a->hits == b->hits &&
             a->compulsory_misses == b->compulsory_misses && a->bypasses == b->bypasses &&
             a->evictions == b->evictions && a->restarts == b->restarts && a->token_slots == b->token_slots &&
             a->token_slot_hits == b->token_slot_hits && a->n_layers == b->n_layers &&
             a->n_windows == b->n_windows && a->win_steps == b->win_steps;
    for (uint32_t l = 0; ok && l < a->n_layers; l++)
        ok = a->layer_accesses[l] == b->layer_accesses[l] && a->layer_hits[l] == b->layer_hits[l];
    for (uint32_t w = 0; ok && w < a->n_windows; w++)
        ok = a->win_accesses[w] == b->win_accesses[w] && a->win_hits[w] == b->win_hits[w];
    for (uint32_t o = 0; ok && o < MOE_SINCE_START_STEPS; o++)
        ok = a->since_start_accesses[o] == b->since_start_accesses[o] && a->since_start_hits[o] == b->since_start_hits[o];
    if (ok && seqs)
        for (uint32_t q = 0; ok && q < a->n_seqs; q++)
            ok = a->n_seqs == b->n_seqs && a->seq_accesses[q] == b->seq_accesses[q] && a->seq_hits[q] == b->seq_hits[q];
    return ok;
}

static void replay_matches_generic_reference(void) {
    struct { uint32_t L, E, K; int weights; uint32_t multi_pct; } shapes[] = {
        {3, 10, 2, 1, 0},  /* decode only, top-2: the fast path throughout */
        {3, 10, 2, 0, 20}, /* no weights, some multi-token steps */
        {2, 12, 3, 1, 10}, /* top-3: the rank-sort decode path */
        {4, 8, 1, 1, 15},  /* top-1 */
    };
    uint64_t compared = 0, since_counted = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        moe_trace *t = random_trace(shapes[si].L, shapes[si].E, shapes[si].K, shapes[si].weights,
                                    shapes[si].multi_pct, 240, 1000 + si);
        CHECK(t);
        if (!t) continue;
        uint32_t LE = shapes[si].L * shapes[si].E;
        for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++)
            for (int global = 0; global < 2; global++)
                for (int cold = 0; cold < 2; cold++) {
                    uint32_t caps[] = {0, 1, 3, global ? LE / 3 : shapes[si].E};
                    for (size_t ci = 0; ci < 4; ci++) {
                        moe_replay_config cfg = {.policy = (*p)->name, .capacity = caps[ci],
                                                 .scope = global ? MOE_SCOPE_GLOBAL : MOE_SCOPE_PER_LAYER,
                                                 .cold_per_seq = cold, .seed = 1};
                        moe_replay_result r, ref;
                        moe_error err;
                        if (moe_replay(t, &cfg, &r, &err)) {
                            printf("%s: %s\n", (*p)->name, err.msg);
                            CHECK(0);
                            continue;
                        }
                        int rc = ref_replay(t, (*p)->name, caps[ci], global, cold, &ref);
                        CHECK(rc == 0);
                        if (rc == 0) { /* the reference's recovery curve, counted on its own */
                            memcpy(ref.since_start_accesses, ref_since_acc, sizeof ref.since_start_accesses);
                            memcpy(ref.since_start_hits, ref_since_hits, sizeof ref.since_start_hits);
                            int ok = same_result(&r, &ref, 0);
                            if (!ok)
                                printf("%s shape %zu global %d cold %d cap %u: hits %llu/%llu evictions %llu/%llu\n",
                                       (*p)->name, si, global, cold, caps[ci], (unsigned long long)r.hits,
                                       (unsigned long long)ref.hits, (unsigned long long)r.evictions,
                                       (unsigned long long)ref.evictions);
                            CHECK(ok);
                            compared++;
                            since_counted += r.since_start_accesses[0];
                        }
                        moe_replay_result_free(&r);
                        moe_replay_result_free(&ref);
                    }
                }
        moe_trace_free(t);
    }
    CHECK(compared > 100);
    CHECK(since_counted > 0); /* the traces have several sequences: the recovery curve was compared */
}

static void engine_matches_fast_path(void) {
    struct { uint32_t L, E, K; int weights; uint32_t multi_pct; } shapes[] = {
        {3, 10, 2, 1, 0}, {3, 10, 2, 0, 20}, {2, 12, 3, 1, 10}, {4, 8, 1, 1, 15},
    };
    uint64_t compared = 0;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++) {
        moe_trace *t = random_trace(shapes[si].L, shapes[si].E, shapes[si].K, shapes[si].weights,
                                    shapes[si].multi_pct, 240, 2000 + si);
        CHECK(t);
        uint32_t LE = shapes[si].L * shapes[si].E;
        /* count from the second token of the first multi-token step past step 50 (a
         * step partly counted), or from position 401 in a trace without one */
        uint64_t cut = 401;
        for (uint64_t s = 50; s < t->n_steps; s++)
            if (t->step_first_token[s + 1] - t->step_first_token[s] > 1) {
                cut = t->token_pos[t->step_first_token[s]] + 1;
                break;
            }
        for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) {
            if ((*p)->flags & MOE_POLICY_NEEDS_FUTURE) continue; /* the general loop refuses them */
            for (int global = 0; global < 2; global++)
                for (int cold = 0; cold < 2; cold++) {
                    uint32_t caps[] = {0, 1, 3, global ? LE / 3 : shapes[si].E};
                    for (size_t ci = 0; ci < 8; ci++) {
                        moe_replay_config cfg = {.policy = (*p)->name, .capacity = caps[ci % 4],
                                                 .scope = global ? MOE_SCOPE_GLOBAL : MOE_SCOPE_PER_LAYER,
                                                 .cold_per_seq = cold, .seed = 7, .count_from = ci < 4 ? 0 : cut + ci % 2};
                        moe_replay_result fast, gen;
                        moe_error err;
                        int rf = moe_replay(t, &cfg, &fast, &err), rg = rf ? -1 : moe_replay_engine_run(t, &cfg, &gen, &err);
                        if (rf || rg) printf("%s: %s\n", (*p)->name, err.msg);
                        CHECK(rf == 0 && rg == 0);
                        CHECK(fast.ext == NULL && gen.ext != NULL); /* really the two loops */
                        int ok = same_result(&fast, &gen, 1);
                        if (!ok)
                            printf("%s shape %zu global %d cold %d cap %u from %llu: hits %llu/%llu evictions %llu/%llu\n",
                                   (*p)->name, si, global, cold, caps[ci % 4], (unsigned long long)cfg.count_from,
                                   (unsigned long long)fast.hits,
                                   (unsigned long long)gen.hits, (unsigned long long)fast.evictions,
                                   (unsigned long long)gen.evictions);
                        CHECK(ok);
                        compared++;
                        moe_replay_result_free(&fast);
                        moe_replay_result_free(&gen);
                    }
                }
        }
        moe_trace_free(t);
    }
    CHECK(compared > 100);
}

int main(void) {
    RUN(replace_op_matches_generic);
    RUN(replay_matches_generic_reference);
    RUN(engine_matches_fast_path);
    CHECK_EXIT();
}
