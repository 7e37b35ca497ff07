/* replay.c: moe_replay, the replay's entry point, and its demand-only fast
 * path: serves a trace's accesses to caches and counts what happened.
 * Configs with prefetch, speculation, skipping, precision, byte capacities,
 * cache state or the timing model go to the general loop
 * (sim/replay_engine.c); see sim/replay_internal.h. */
#include "replay.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/cache.h"
#include "../core/split.h"
#include "../core/sort_small.h"
#include "replay_check.h"
#include "replay_internal.h"

/* Scratch for collecting the union of a (step, layer)'s experts. stamp[e]
 * == cur marks e as already collected, so no clearing between groups. */
typedef struct gather {
    uint32_t *stamp;  /* n_experts */
    uint32_t cur;
    uint16_t *set;    /* n_experts */
    float *weight;    /* n_experts: max gate weight in this group */
} gather;

/* Decode fast path: the sorted experts of one token at layer l. They are
 * already distinct (the trace validator guarantees it), so only the sort is
 * left. Inline: it is most of the work per (step, layer) of a decode trace. */
static inline uint32_t gather_one_token(const moe_trace *t, uint64_t tok, uint32_t l, gather *g) {
    const uint32_t K = t->top_k;
    size_t r = moe_trace_rec(t, tok, l);
    const uint16_t *ex = t->experts + r;
    uint16_t *set = g->set;
    uint32_t n = 0;
    while (n < K && ex[n] != MOE_NO_EXPERT) n++;
    if (n == 2) { /* top-2 (Mixtral): a compare and two conditional moves */
        uint16_t a = ex[0], b = ex[1];
        set[0] = a < b ? a : b;
        set[1] = a < b ? b : a;
    } else {
        /* Rank sort: each expert's position is the number of smaller ones.
         * Branch-free, which matters because the order is random and a
         * mispredicted compare costs more than the n*n additions. */
        for (uint32_t i = 0; i < n; i++) {
            uint32_t rank = 0;
            for (uint32_t j = 0; j < n; j++) rank += ex[j] < ex[i];
            set[rank] = ex[i];
        }
    }
    const float *w = t->weights ? t->weights + r : NULL;
    for (uint32_t i = 0; i < n; i++) g->weight[ex[i]] = w ? w[i] : NAN;
    return n;
}

/* Collect the sorted union of experts of step s at layer l into g->set. */
static uint32_t gather_set(const moe_trace *t, uint64_t s, uint32_t l, gather *g) {
    uint32_t n = 0;
    uint64_t t0 = t->step_first_token[s], t1 = t->step_first_token[s + 1];
    if (t1 - t0 == 1) return gather_one_token(t, t0, l, g);
    if (++g->cur == 0) {
        memset(g->stamp, 0, t->n_experts * sizeof(uint32_t));
        g->cur = 1;
    }
    for (uint64_t tok = t0; tok < t1; tok++) {
        size_t r = moe_trace_rec(t, tok, l);
        for (uint32_t k = 0; k < t->top_k; k++) {
            uint16_t e = t->experts[r + k];
            if (e == MOE_NO_EXPERT) break;
            float w = t->weights ? t->weights[r + k] : NAN;
            if (g->stamp[e] != g->cur) {
                g->stamp[e] = g->cur;
                g->set[n++] = e;
                g->weight[e] = w;
            } else if (w > g->weight[e] || isnan(g->weight[e])) {
                g->weight[e] = w;
            }
        }
    }
    /* Ascending order: insertion sort for the usual few experts, a scan of
     * the stamps when a prefill chunk touched many. */
    if (n <= 32) {
        moe_sort_u16(g->set, n);
    } else {
        uint32_t m = 0;
        for (uint32_t e = 0; e < t->n_experts; e++)
            if (g->stamp[e] == g->cur) g->set[m++] = (uint16_t)e;
    }
    return n;
}

/* Totals of the serving loops, folded into the result at the end. */
typedef struct counts {
    uint64_t time, comp, byp, evict;
} counts;

/* What the decode path reads, gathered so it is passed as one pointer. */
typedef struct decode_ctx {
    const moe_trace *t;
    moe_cache *const *caches;
    uint8_t *seen;
    const uint64_t *next_use;    /* NULL unless the policy needs the future */
    uint64_t *layer_acc, *layer_hits;
    const float *nan_w;          /* n_layers * top_k NaNs: the weights of a trace without them */
    uint16_t *set;               /* top_k scratch (rank sort) */
    float *wr;                   /* top_k scratch: weight of set[i] */
    counts cnt;
} decode_ctx;

/* One access of the decode path; returns 1 on a hit. Miss bookkeeping as in
 * the general loop. A hit needs no seen[] update: a resident key was
 * accessed since its cache was last empty, so its flag is already set. */
__attribute__((always_inline)) static inline uint32_t serve_access(moe_cache *c, uint32_t key, uint32_t e, float w, uint8_t *seen_l,
                                    moe_access *a, uint64_t *time, const uint64_t *next_use,
                                    counts *cnt) {
    a->time = *time;
    a->expert = e;
    a->weight = w;
    if (next_use) a->next_use = next_use[*time];
    ++*time;
    int64_t victim;
    enum moe_access_result r = moe_cache_access(c, key, a, &victim);
    if (r == MOE_HIT) return 1;
    cnt->comp += !seen_l[e];
    seen_l[e] = 1;
    cnt->byp += r == MOE_MISS_BYPASSED;
    cnt->evict += victim >= 0;
    return 0;
}

/* Serve one single-token (decode) step, every layer: the same accesses, in
 * the same order and with the same moe_access fields, as the general loop in
 * moe_replay, minus what only multi-token steps need (the union, per-expert
 * hit flags, per-slot counting: one token's slots are exactly its set). Its
 * own function, specialised on scope and on next_use by the constant
 * arguments, so the per-access code has few live variables. Returns the
 * step's hits; *n_acc receives its accesses. */
__attribute__((always_inline)) static inline uint64_t decode_step(decode_ctx *d, uint64_t s, uint64_t *n_acc,
                                                                  const int global, const int future) {
    const moe_trace *t = d->t;
    const uint32_t L = t->n_layers, E = t->n_experts, K = t->top_k;
    size_t r0 = moe_trace_rec(t, t->step_first_token[s], 0);
    const uint16_t *ex = t->experts + r0;
    /* weights of this token's records, or L*K NaNs: indexed alike */
    const float *w = t->weights ? t->weights + r0 : d->nan_w;
    const uint64_t *next_use = future ? d->next_use : NULL;
    uint64_t time = d->cnt.time, step_hits = 0, step_acc = 0;
    moe_access a = {.next_use = MOE_NEVER, .step = s};
    for (uint32_t l = 0, r = 0; l < L; l++, r += K) {
        moe_cache *c = d->caches[global ? 0 : l];
        const uint32_t base = global ? l * E : 0;
        uint8_t *seen_l = d->seen + (size_t)l * E;
        uint32_t hits, m;
        a.layer = l;
        if (K == 2 && ex[r + 1] != MOE_NO_EXPERT) {
            /* top-2 (Mixtral), both slots used (a used slot never follows an
             * empty one): ascending order by indexing with the compare, so
             * no branch on the (random) order */
            uint32_t sw = ex[r + 1] < ex[r];
            uint32_t lo = ex[r + sw], hi = ex[r + (sw ^ 1)];
            moe_cache_begin_group(c);
            moe_cache_protect(c, base + lo);
            moe_cache_protect(c, base + hi);
            hits = serve_access(c, base + lo, lo, w[r + sw], seen_l, &a, &time, next_use, &d->cnt);
            hits += serve_access(c, base + hi, hi, w[r + (sw ^ 1)], seen_l, &a, &time, next_use, &d->cnt);
            m = 2;
        } else {
            /* rank sort, as in gather_one_token (experts are distinct) */
            uint16_t *set = d->set;
            float *wr = d->wr;
            m = 0;
            while (m < K && ex[r + m] != MOE_NO_EXPERT) m++;
            for (uint32_t i = 0; i < m; i++) {
                uint32_t rank = 0;
                for (uint32_t j = 0; j < m; j++) rank += ex[r + j] < ex[r + i];
                set[rank] = ex[r + i];
                wr[rank] = w[r + i];
            }
            moe_cache_begin_group(c);
            for (uint32_t i = 0; i < m; i++) moe_cache_protect(c, base + set[i]);
            hits = 0;
            for (uint32_t i = 0; i < m; i++)
                hits += serve_access(c, base + set[i], set[i], wr[i], seen_l, &a, &time, next_use, &d->cnt);
        }
        d->layer_acc[l] += m;
        d->layer_hits[l] += hits;
        step_hits += hits;
        step_acc += m;
    }
    d->cnt.time = time;
    *n_acc = step_acc;
    return step_hits;
}

__attribute__((noinline)) static uint64_t decode_step_pl(decode_ctx *d, uint64_t s, uint64_t *n) {
    return decode_step(d, s, n, 0, 0);
}
__attribute__((noinline)) static uint64_t decode_step_gl(decode_ctx *d, uint64_t s, uint64_t *n) {
    return decode_step(d, s, n, 1, 0);
}
__attribute__((noinline)) static uint64_t decode_step_pl_future(decode_ctx *d, uint64_t s, uint64_t *n) {
    return decode_step(d, s, n, 0, 1);
}
__attribute__((noinline)) static uint64_t decode_step_gl_future(decode_ctx *d, uint64_t s, uint64_t *n) {
    return decode_step(d, s, n, 1, 1);
}

/* For offline policies: next_use[i] = ordinal of the next access of the same
 * key after access i, MOE_NEVER if none. Keys are global (layer, expert) so
 * the same array serves both scopes. */
static uint64_t *compute_next_use(const moe_trace *t, gather *g, uint64_t *n_out, moe_error *err) {
    uint64_t n = 0, cap = 1 << 16;
    uint32_t *keys = malloc(cap * sizeof *keys);
    if (!keys) return moe_fail(err, "out of memory"), NULL;
    for (uint64_t s = 0; s < t->n_steps; s++)
        for (uint32_t l = 0; l < t->n_layers; l++) {
            uint32_t m = gather_set(t, s, l, g);
            if (n + m > cap) {
                while (n + m > cap) cap *= 2;
                uint32_t *k2 = realloc(keys, cap * sizeof *keys);
                if (!k2) { free(keys); return moe_fail(err, "out of memory"), NULL; }
                keys = k2;
            }
            for (uint32_t i = 0; i < m; i++) keys[n++] = l * t->n_experts + g->set[i];
        }
    uint64_t *next = malloc((n ? n : 1) * sizeof *next);
    uint64_t *last = malloc((size_t)t->n_layers * t->n_experts * sizeof *last);
    if (!next || !last) {
        free(keys); free(next); free(last);
        return moe_fail(err, "out of memory"), NULL;
    }
    for (size_t i = 0; i < (size_t)t->n_layers * t->n_experts; i++) last[i] = MOE_NEVER;
    for (uint64_t i = n; i-- > 0;) {
        next[i] = last[keys[i]];
        last[keys[i]] = i;
    }
    free(keys);
    free(last);
    *n_out = n;
    return next;
}

/* ---- key sequences (trace.h: one key per request, one flat key space) ---- */

/* Serve requests [0, n) of a key sequence; the same accesses, in the same
 * order and with the same moe_access fields, as the general loop gives the
 * layered form of the sequence (one step and group per request, the key
 * protected): a key being missed is not resident, so protecting it changes
 * no eviction, and the only group mark that matters, "nothing resident is
 * protected", is set once. Specialised on `future` by the constant
 * argument. */
__attribute__((always_inline)) static inline void serve_keys(const moe_trace *t, moe_cache *c, const uint64_t *next_use,
                                                             uint8_t *seen, moe_replay_result *res, counts *cnt,
                                                             uint64_t *n_hits, const int future) {
    const uint32_t *keys = t->keys;
    const uint64_t n = t->n_tokens, win_steps = res->win_steps;
    const int on_step = c->ops->on_step != NULL;
    uint64_t hits = 0, comp = 0, byp = 0, evict = 0, win_end = win_steps, win_hits = 0;
    uint32_t w = 0;
    moe_access a = {.next_use = MOE_NEVER, .layer = 0, .weight = NAN};
    for (uint64_t i = 0; i < n; i++) {
        uint32_t key = keys[i];
        if (on_step) c->ops->on_step(c->st, i);
        a.time = a.step = i;
        a.expert = key;
        if (future) a.next_use = next_use[i];
        int64_t victim;
        enum moe_access_result r = moe_cache_access(c, key, &a, &victim);
        if (r == MOE_HIT) {
            win_hits++;
        } else {
            comp += !seen[key];
            seen[key] = 1;
            byp += r == MOE_MISS_BYPASSED;
            evict += victim >= 0;
        }
        if (i + 1 == win_end) { /* windows of win_steps requests, the last one shorter */
            res->win_hits[w] = win_hits;
            res->win_accesses[w++] = win_steps;
            hits += win_hits, win_hits = 0;
            win_end += win_steps;
        }
    }
    if (win_hits || n % win_steps) {
        res->win_hits[w] = win_hits;
        res->win_accesses[w] = n % win_steps;
        hits += win_hits;
    }
    cnt->time = n, cnt->comp = comp, cnt->byp = byp, cnt->evict = evict;
    *n_hits = hits;
}

__attribute__((noinline)) static void serve_keys_plain(const moe_trace *t, moe_cache *c, uint8_t *seen,
                                                       moe_replay_result *res, counts *cnt, uint64_t *hits) {
    serve_keys(t, c, NULL, seen, res, cnt, hits, 0);
}
__attribute__((noinline)) static void serve_keys_future(const moe_trace *t, moe_cache *c, const uint64_t *next_use,
                                                        uint8_t *seen, moe_replay_result *res, counts *cnt,
                                                        uint64_t *hits) {
    serve_keys(t, c, next_use, seen, res, cnt, hits, 1);
}

/* next_use of a key sequence: one backward pass over the keys. */
static uint64_t *keys_next_use(const moe_trace *t, moe_error *err) {
    uint64_t n = t->n_tokens;
    uint64_t *next = malloc(n * sizeof *next), *last = malloc((size_t)t->n_experts * sizeof *last);
    if (!next || !last) {
        free(next), free(last);
        return moe_fail(err, "out of memory for next-use times (%llu requests)", (unsigned long long)n), NULL;
    }
    for (uint32_t k = 0; k < t->n_experts; k++) last[k] = MOE_NEVER;
    for (uint64_t i = n; i-- > 0;) {
        next[i] = last[t->keys[i]];
        last[t->keys[i]] = i;
    }
    free(last);
    return next;
}

static int replay_keys(const moe_trace *t, const moe_replay_config *cfg, moe_replay_result *res, moe_error *err) {
    if (moe_replay_keys_check(t, cfg, err) || moe_replay_policy_check(t, cfg, err)) return -1;
    memset(res, 0, sizeof *res);
    int rc = -1;
    moe_cache *c = NULL;
    uint64_t *next_use = NULL;
    uint8_t *seen = calloc(t->n_experts, 1);
    if (!seen || moe_replay_result_alloc(res, t, cfg->curve_windows)) {
        moe_fail(err, "out of memory");
        goto out;
    }
    moe_policy_env env = {
        .n_keys = t->n_experts,
        .capacity = cfg->capacity,
        .n_layers = 1,
        .n_experts = t->n_experts,
        .fixed_layer = cfg->scope == MOE_SCOPE_GLOBAL ? -1 : 0, /* one key space: the same cache either way */
        .seed = cfg->seed * 1000003u,
        .trace = t,
    };
    if (!(c = moe_cache_new(cfg->policy, &env, err))) goto out;
    snprintf(res->policy, sizeof res->policy, "%s", c->canonical);
    if ((c->ops->flags & MOE_POLICY_NEEDS_FUTURE) && !(next_use = keys_next_use(t, err))) goto out;
    moe_cache_begin_group(c); /* nothing resident is ever protected */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    counts cnt = {0};
    uint64_t hits;
    if (next_use) serve_keys_future(t, c, next_use, seen, res, &cnt, &hits);
    else serve_keys_plain(t, c, seen, res, &cnt, &hits);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->accesses = res->token_slots = res->layer_accesses[0] = cnt.time;
    res->hits = res->token_slot_hits = res->layer_hits[0] = hits;
    res->seq_accesses[0] = cnt.time; /* a key sequence is one sequence */
    res->seq_hits[0] = hits;
    res->compulsory_misses = cnt.comp;
    res->bypasses = cnt.byp;
    res->evictions = cnt.evict;
    res->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    rc = 0;
out:
    moe_cache_free(c);
    free(seen);
    free(next_use);
    if (rc) moe_replay_result_free(res);
    return rc;
}

/* A decode step before count_from: served like any other, so the caches
 * warm up, but its counts are dropped (its per-layer counts go to scratch;
 * time, the access clock next_use is indexed by, runs on). */
static void decode_uncounted(decode_ctx *d, uint64_t (*decode)(decode_ctx *, uint64_t, uint64_t *), uint64_t s,
                             uint64_t *scratch, uint64_t *n_acc) {
    counts keep = d->cnt;
    uint64_t *acc = d->layer_acc, *hits = d->layer_hits;
    d->layer_acc = d->layer_hits = scratch;
    decode(d, s, n_acc);
    d->layer_acc = acc, d->layer_hits = hits;
    d->cnt.comp = keep.comp, d->cnt.byp = keep.byp, d->cnt.evict = keep.evict;
}

/* count_from: does step s have a token before position `from`? Then
 * mark_counted decides per activation. */
static int step_partly_uncounted(const moe_trace *t, uint64_t tok0, uint64_t tok1, uint64_t from) {
    for (uint64_t tok = tok0; tok < tok1; tok++)
        if (t->token_pos[tok] < from) return 1;
    return 0;
}

/* counted[e] = 1 iff a token of step [tok0, tok1) at position >= from chose
 * expert e at layer l; set[0..m) is the step's union there. */
static void mark_counted(const moe_trace *t, uint64_t tok0, uint64_t tok1, uint32_t l, uint64_t from,
                         const uint16_t *set, uint32_t m, uint8_t *counted) {
    for (uint32_t i = 0; i < m; i++) counted[set[i]] = 0;
    for (uint64_t tok = tok0; tok < tok1; tok++) {
        if (t->token_pos[tok] < from) continue;
        size_t r = moe_trace_rec(t, tok, l);
        for (uint32_t k = 0; k < t->top_k && t->experts[r + k] != MOE_NO_EXPERT; k++) counted[t->experts[r + k]] = 1;
    }
}

int moe_replay(const moe_trace *t, const moe_replay_config *cfg, moe_replay_result *res,
               moe_error *err) {
    if (t->keys) return replay_keys(t, cfg, res, err);
    /* Prefetch, speculation, skipping, precision, byte capacities, cache
     * state and the timing model run in the general loop; the loop below is
     * its demand-only case, specialised (same results, bit for bit). */
    if (moe_replay_config_is_ext(cfg)) return moe_replay_engine_run(t, cfg, res, err);
    memset(res, 0, sizeof *res);
    const uint32_t L = t->n_layers, E = t->n_experts;
    const int global = cfg->scope == MOE_SCOPE_GLOBAL;
    if (moe_replay_plain_check(t, cfg, err) || moe_replay_policy_check(t, cfg, err)) return -1;
    uint32_t n_caches = 0;
    int rc = -1;
    moe_cache **caches = NULL;
    uint8_t *seen = calloc((size_t)L * E, 1);
    uint8_t *hitflag = calloc(E, 1);
    gather g = {calloc(E, sizeof(uint32_t)), 0, malloc(E * sizeof(uint16_t)), malloc(E * sizeof(float))};
    float *dec_w = malloc(((size_t)L + 1) * t->top_k * sizeof(float)); /* decode path: wr, then nan_w */
    uint64_t *next_use = NULL;
    const uint64_t from = cfg->count_from;
    uint8_t *counted = from ? calloc(E, 1) : NULL;        /* count_from: mark_counted's flags */
    uint64_t *scratch = from ? calloc(L, sizeof *scratch) : NULL; /* and decode_uncounted's */
    uint64_t uncounted = 0; /* accesses served before count_from */
    int res_ok = moe_replay_result_alloc(res, t, cfg->curve_windows) == 0;
    if (!seen || !hitflag || !g.stamp || !g.set || !g.weight || !dec_w || !res_ok || (from && (!counted || !scratch))) {
        moe_fail(err, "out of memory");
        goto out;
    }
    if (moe_replay_caches_new(t, cfg, &caches, &n_caches, err)) goto out;
    snprintf(res->policy, sizeof res->policy, "%s", caches[0]->canonical);
    int needs_future = (caches[0]->ops->flags & MOE_POLICY_NEEDS_FUTURE) != 0;
    uint64_t n_acc = 0;
    if (needs_future && !(next_use = compute_next_use(t, &g, &n_acc, err))) goto out;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Counters live in locals and are folded into res at the end: stores
     * through res on every access cost more than the policy itself. */
    uint64_t n_hits = 0, n_slots = 0, n_slot_hits = 0;
    for (size_t k = 0; k < (size_t)L * t->top_k; k++) dec_w[t->top_k + k] = NAN;
    decode_ctx dc = {.t = t, .caches = caches, .seen = seen, .next_use = next_use,
                     .layer_acc = res->layer_accesses, .layer_hits = res->layer_hits,
                     .nan_w = dec_w + t->top_k, .set = g.set, .wr = dec_w};
    counts *const cnt = &dc.cnt;
    uint64_t (*decode)(decode_ctx *, uint64_t, uint64_t *) =
        global ? (next_use ? decode_step_gl_future : decode_step_gl)
               : (next_use ? decode_step_pl_future : decode_step_pl);
    int any_on_step = caches[0]->ops->on_step != NULL;
    moe_access a = {.next_use = MOE_NEVER};
    for (uint64_t s = 0; s < t->n_steps; s++) {
        if (cfg->cold_per_seq && moe_replay_seq_changes(t, s)) {
            for (uint32_t i = 0; i < n_caches; i++)
                if (moe_cache_reset(caches[i], err)) goto out;
            memset(seen, 0, (size_t)L * E);
            res->restarts++;
        }
        if (any_on_step)
            for (uint32_t i = 0; i < n_caches; i++) caches[i]->ops->on_step(caches[i]->st, s);
        uint64_t tok0 = t->step_first_token[s], tok1 = t->step_first_token[s + 1];
        if (tok1 - tok0 == 1) { /* decode: one token */
            uint64_t m, hits;
            if (from && t->token_pos[tok0] < from) {
                decode_uncounted(&dc, decode, s, scratch, &m);
                uncounted += m;
                continue;
            }
            hits = decode(&dc, s, &m);
            n_hits += hits;
            moe_replay_count_step(res, s, m, hits);
            n_slots += m;
            n_slot_hits += hits;
            continue;
        }
        /* Multi-token steps (prefill chunks, batches; also the rare step
         * with no token): the union of the tokens' experts per layer. */
        int multi = tok1 - tok0 > 1; /* only multi-token steps need per-expert hit flags */
        /* count_from inside or after this step: an activation counts iff a
         * counted token chose it (cw below is 1 or 0) */
        int partial = from && step_partly_uncounted(t, tok0, tok1, from);
        uint64_t time = cnt->time, n_comp = cnt->comp, n_byp = cnt->byp, n_evict = cnt->evict;
        a.step = s;
        for (uint32_t l = 0; l < L; l++) {
            uint32_t m = multi ? gather_set(t, s, l, &g) : gather_one_token(t, tok0, l, &g);
            moe_cache *c = caches[global ? 0 : l];
            uint32_t base = global ? l * E : 0;
            uint8_t *seen_l = seen + (size_t)l * E;
            moe_cache_begin_group(c);
            for (uint32_t i = 0; i < m; i++) moe_cache_protect(c, base + g.set[i]);
            if (partial) mark_counted(t, tok0, tok1, l, from, g.set, m, counted);
            uint64_t hits = 0, m_counted = 0;
            a.layer = l;
            for (uint32_t i = 0; i < m; i++) {
                uint32_t e = g.set[i], key = base + e;
                unsigned cw = partial ? counted[e] : 1;
                a.time = time;
                a.expert = e;
                a.weight = g.weight[e];
                if (next_use) a.next_use = next_use[time];
                time++;
                int64_t victim;
                enum moe_access_result r = moe_cache_access(c, key, &a, &victim);
                unsigned hit = r == MOE_HIT;
                if (multi) hitflag[e] = (uint8_t)hit;
                hits += hit & cw;
                n_comp += cw & (!hit && !seen_l[e]);
                seen_l[e] = 1;
                n_byp += cw & (r == MOE_MISS_BYPASSED);
                n_evict += cw & (victim >= 0);
                m_counted += cw;
            }
            uncounted += m - m_counted;
            n_hits += hits;
            res->layer_accesses[l] += m_counted;
            res->layer_hits[l] += hits;
            moe_replay_count_step(res, s, m_counted, hits);
            if (!multi) { /* one token: its slots are exactly the set */
                n_slots += m_counted;
                n_slot_hits += hits;
                continue;
            }
            for (uint64_t tok = tok0; tok < tok1; tok++) {
                if (partial && t->token_pos[tok] < from) continue;
                size_t r = moe_trace_rec(t, tok, l);
                for (uint32_t k = 0; k < t->top_k && t->experts[r + k] != MOE_NO_EXPERT; k++) {
                    n_slots++;
                    n_slot_hits += hitflag[t->experts[r + k]];
                }
            }
        }
        cnt->time = time;
        cnt->comp = n_comp;
        cnt->byp = n_byp;
        cnt->evict = n_evict;
    }
    res->accesses = cnt->time - uncounted;
    res->hits = n_hits;
    res->compulsory_misses = cnt->comp;
    res->bypasses = cnt->byp;
    res->evictions = cnt->evict;
    res->token_slots = n_slots;
    res->token_slot_hits = n_slot_hits;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    rc = 0;
out:
    moe_replay_caches_free(caches, n_caches);
    free(seen);
    free(hitflag);
    free(g.stamp);
    free(g.set);
    free(g.weight);
    free(dec_w);
    free(next_use);
    free(counted);
    free(scratch);
    if (rc) moe_replay_result_free(res);
    return rc;
}
