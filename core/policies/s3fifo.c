/* s3fifo: S3-FIFO (Yang et al., SOSP 2023): a small FIFO S, a main FIFO M and
 * a ghost FIFO G of recently evicted keys, with 2-bit access counters.
 *
 * Sizes (c = capacity): S has a target of s = round(small * c) slots, but at
 * least 1 and at most c (libCacheSim's S3-FIFO rounds S down to 0 below 20
 * entries and then caches nothing; here S always gets a slot); M holds the
 * rest; G remembers at most max(1, c - s) keys (as many as M, per the paper).
 * S, M and G share the capacity of c resident keys: |S| + |M| <= c.
 *
 * Rule:
 *  - hit: freq = min(freq + 1, 3). Nothing moves.
 *  - miss of x: if x is in G it is removed from G and inserted at the head
 *    of M, else at the head of S; freq = 0 either way. G is consulted
 *    before the eviction that makes room for x (the paper evicts first),
 *    so that with a G of one or two entries the eviction's own ghost cannot
 *    push x's ghost out in between.
 *  - to free one slot (only when the cache is full), repeat:
 *      if (|S| >= s and S has an unprotected key) or M has no unprotected key:
 *        t = oldest unprotected key of S;
 *        if freq[t] >= threshold: move t to the head of M (freq kept), again;
 *        else evict t and insert it at the head of G (dropping G's oldest
 *        key if G is full): done.
 *      else:
 *        t = oldest unprotected key of M;
 *        if freq[t] > 0: freq[t] -= 1, move t to the head of M, again;
 *        else evict t (no ghost): done.
 *    Each pass moves a key out of S or lowers a counter, so it ends. If every
 *    resident is protected (needed by the current (step, layer)) the new key
 *    is bypassed and nothing changes.
 * "Protected keys are skipped": they keep their place and counter.
 * Parameters: small (fraction of c for S, 0..1, default 0.1), threshold
 * (S->M promotion when freq >= threshold, 1..3, default 1: "accessed at least
 * once since insertion" as the paper's text says). */
#include <math.h>
#include <stdlib.h>

#include "../cache.h"
#include "../params.h"
#include "list.h"

enum { NONE = 0, S, M, G };

typedef struct s3 {
    moe_list l[4]; /* l[S], l[M], l[G]; shared link arrays */
    uint32_t len[4];
    uint8_t *where, *freq;
    uint32_t *prev, *next;
    uint32_t s_target, g_cap, threshold;
    uint32_t ghost_hit; /* key taken out of G by the last choose_victim */
    moe_policy_env env;
} s3;

static void s3_destroy(void *st) {
    s3 *s = st;
    free(s->where);
    free(s->freq);
    free(s->prev);
    free(s->next);
    free(s);
}

static void *s3_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                       moe_error *err) {
    moe_param p[] = {
        {.key = "small", .type = MOE_PARAM_DOUBLE, .default_value = "0.1", .min = 0, .max = 1, .help = "fraction of the capacity for the small FIFO"},
        {.key = "threshold", .type = MOE_PARAM_INT, .default_value = "1", .min = 1, .max = 3, .help = "promote S->M when freq >= threshold"},
    };
    if (moe_params_parse("s3fifo", args, p, 2, canonical, cap, err)) return NULL;
    s3 *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "s3fifo: out of memory"), NULL;
    size_t n = env->n_keys ? env->n_keys : 1;
    s->where = calloc(n, 1);
    s->freq = calloc(n, 1);
    s->prev = malloc(n * sizeof *s->prev);
    s->next = malloc(n * sizeof *s->next);
    if (!s->where || !s->freq || !s->prev || !s->next) {
        s3_destroy(s);
        return moe_fail(err, "s3fifo: out of memory"), NULL;
    }
    for (int i = 0; i < 4; i++) {
        s->l[i].prev = s->prev;
        s->l[i].next = s->next;
        s->l[i].head = s->l[i].tail = MOE_LIST_NIL;
    }
    uint32_t c = env->capacity;
    double st = floor(p[0].d * c + 0.5);
    s->s_target = st < 1 ? 1 : st > c ? c : (uint32_t)st;
    s->g_cap = c > s->s_target ? c - s->s_target : 1;
    s->threshold = (uint32_t)p[1].i;
    s->ghost_hit = UINT32_MAX;
    s->env = *env;
    return s;
}

static void put(s3 *s, uint32_t key, int list) {
    moe_list_push_head(&s->l[list], key);
    s->len[list]++;
    s->where[key] = (uint8_t)list;
}

static void take(s3 *s, uint32_t key) {
    int w = s->where[key];
    moe_list_remove(&s->l[w], key);
    s->len[w]--;
    s->where[key] = NONE;
}

static void s3_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    s3 *s = st;
    if (s->freq[key] < 3) s->freq[key]++;
}

static void s3_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    s3 *s = st;
    int ghost = s->where[key] == G || s->ghost_hit == key;
    if (s->where[key] == G) take(s, key);
    s->ghost_hit = UINT32_MAX;
    s->freq[key] = 0;
    put(s, key, ghost ? M : S);
}

static int64_t oldest_unprotected(const s3 *s, int list, const moe_cache *c) {
    for (uint32_t k = s->l[list].tail; k != MOE_LIST_NIL; k = s->prev[k])
        if (!moe_cache_protected(c, k)) return k;
    return -1;
}

static int64_t s3_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    s3 *s = st;
    int64_t ts = oldest_unprotected(s, S, c), tm = oldest_unprotected(s, M, c);
    if (ts < 0 && tm < 0) return -1; /* bypass: no state change */
    uint32_t x = s->env.fixed_layer >= 0 ? a->expert : a->layer * s->env.n_experts + a->expert;
    if (x < s->env.n_keys && s->where[x] == G) {
        take(s, x);
        s->ghost_hit = x;
    }
    for (;;) {
        if ((s->len[S] >= s->s_target && ts >= 0) || tm < 0) {
            uint32_t t = (uint32_t)ts;
            if (s->freq[t] >= s->threshold) {
                take(s, t);
                put(s, t, M);
                ts = oldest_unprotected(s, S, c);
                if (tm < 0) tm = t;
                continue;
            }
            return t;
        }
        uint32_t t = (uint32_t)tm;
        if (s->freq[t] > 0) {
            s->freq[t]--;
            take(s, t);
            put(s, t, M);
            tm = oldest_unprotected(s, M, c);
            continue;
        }
        return t;
    }
}

static void s3_on_evict(void *st, uint32_t key) {
    s3 *s = st;
    int from = s->where[key];
    take(s, key);
    if (from == S) {
        if (s->len[G] >= s->g_cap) take(s, s->l[G].tail);
        put(s, key, G);
    }
}

const moe_policy_ops moe_policy_s3fifo = {
    .name = "s3fifo",
    .summary = "S3-FIFO: small + main FIFO, ghost queue, 2-bit counters",
    .create = s3_create,
    .on_hit = s3_on_hit,
    .on_insert = s3_on_insert,
    .choose_victim = s3_choose_victim,
    .on_evict = s3_on_evict,
    .destroy = s3_destroy,
};
