/* s3fifo: S3-FIFO (Yang et al., SOSP 2023): a small FIFO S, a main FIFO M and
 * a ghost FIFO G of recently evicted keys, with 2-bit access counters.
 * Two variants share the code; c = capacity, "oldest" = tail of a FIFO,
 * new keys enter at the head.
 *
 * variant=lcs (default): libCacheSim's S3-FIFO (cache/eviction/S3FIFO.c at
 * 1a1a11a/libCacheSim aa0fc40, defaults fifo-size-ratio=0.10,
 * ghost-size-ratio=0.90, move-to-main-threshold=2), rule for rule:
 *  - sizes: S has s = floor(small * c) slots (at least 1, see below), M has
 *    c - s, G remembers g = floor(ghost * c) keys (g = 0: no ghost at all);
 *    |S| + |M| <= c, and S may exceed s while M is below c - s.
 *  - hit: freq = min(freq + 1, 3). Nothing moves. (libCacheSim counts
 *    without a cap; every test of freq below gives the same answer.)
 *  - miss of x: if x is in G it leaves G (before any eviction) and enters M,
 *    else it enters S; freq = 0 either way.
 *  - to free one slot (only when the cache is full):
 *      if |S| >= s (M at or below its c - s) and S is not empty, or if
 *      M is empty:
 *        repeat on S: t = oldest of S; if freq[t] >= threshold, t moves to
 *        the head of M with freq = 0 (libCacheSim inserts it into M as a new
 *        object); else t is evicted into the head of G (G's oldest dropped if
 *        G is full): done. If S runs empty without an eviction, go to M.
 *      on M: repeat: t = oldest of M; if freq[t] > 0: freq[t] -= 1, t moves
 *        to the head of M; else t is evicted (no ghost): done.
 *    The choice between S and M is made once per freed slot: promotions do
 *    not send the search back to M while S still has keys.
 *  - where it differs: libCacheSim caches nothing at all when its S would
 *    hold fewer than 2 objects (c < 20 at small=0.1: S3FIFO_can_insert
 *    refuses objects larger than S and S3FIFO_insert, for a key not in G,
 *    objects as large as S; G stays empty, so every request misses).
 *    moesim's cache cannot refuse an admission while it has room,
 *    and an all-miss cache is no use for the small per-layer capacities
 *    moesim is for, so here S always has at least 1 slot and the rule above
 *    runs unchanged: from c >= 20 (or whenever floor(small * c) >= 2) the
 *    two agree exactly, below that libCacheSim's answer is "all misses".
 *    tests/unit/test_lcs_parity.c compares the two miss for miss.
 *
 * variant=moe: moesim's earlier rule, friendlier to very small caches
 * (defaults small=0.1, threshold=1; ghost does not apply):
 *  - sizes: s = round(small * c), at least 1 and at most c; G remembers
 *    max(1, c - s) keys (as many as M, per the paper).
 *  - hit and miss as above.
 *  - to free one slot, repeat:
 *      if (|S| >= s and S has a key) or M is empty:
 *        t = oldest of S; if freq[t] >= threshold: t moves to the head of M
 *        keeping its freq, and the choice is made again; else t is evicted
 *        into G: done.
 *      else: t = oldest of M; freq > 0: decrement, move to M's head, again;
 *        else evict t (no ghost): done.
 *
 * Both variants, in moesim's replay: "oldest" means oldest *unprotected*
 * (protected = needed by the current (step, layer)); protected keys keep
 * their place and counter. An empty S or M above means one without an
 * unprotected key. If every resident is protected the new key is bypassed
 * and nothing changes. Each pass moves a key out of S or lowers a counter,
 * so the search ends.
 * Parameters: variant (lcs | moe, default lcs); small (fraction of c for S,
 * 0..1, default 0.1); threshold (S->M promotion when freq >= threshold,
 * 1..3; default 2 for lcs as in libCacheSim, 1 for moe: "accessed at least
 * once since insertion" as the paper's text says); ghost (lcs only: G holds
 * floor(ghost * c) keys, 0..1, default 0.9). Canonical names:
 * "s3fifo:variant=lcs,small=0.1,threshold=2,ghost=0.9" and
 * "s3fifo:variant=moe,small=0.1,threshold=1". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    int lcs;            /* variant=lcs (libCacheSim's rule) */
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

/* Whether the option string (already parsed, so well formed) sets key. */
static int sets_key(const char *args, const char *key) {
    size_t kl = strlen(key);
    for (const char *p = args ? args : ""; *p;) {
        if (!strncmp(p, key, kl) && p[kl] == '=') return 1;
        const char *comma = strchr(p, ',');
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

/* Parameters (defaults, ranges): create parses a copy; `moesim policies` lists them. */
static const moe_param s3_params[] = {
    {.key = "variant", .type = MOE_PARAM_STRING, .default_value = "lcs", .help = "lcs (libCacheSim's S3-FIFO) or moe (small-cache variant)"},
    {.key = "small", .type = MOE_PARAM_DOUBLE, .default_value = "0.1", .min = 0, .max = 1, .help = "fraction of the capacity for the small FIFO"},
    {.key = "threshold", .type = MOE_PARAM_INT, .default_value = "2", .min = 1, .max = 3, .help = "promote S->M when freq >= threshold (default 2 for lcs, 1 for moe)"},
    {.key = "ghost", .type = MOE_PARAM_DOUBLE, .default_value = "0.9", .min = 0, .max = 1, .help = "lcs: ghost FIFO holds floor(ghost x capacity) keys"},
};

static void *s3_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                       moe_error *err) {
    moe_param p[sizeof s3_params / sizeof *s3_params];
    memcpy(p, s3_params, sizeof p);
    if (moe_params_parse("s3fifo", args, p, sizeof p / sizeof *p, canonical, cap, err)) return NULL;
    int lcs = !strcmp(p[0].s, "lcs");
    if (!lcs && strcmp(p[0].s, "moe"))
        return moe_fail(err, "s3fifo: 'variant=%s' is not lcs or moe", p[0].s), NULL;
    if (!lcs && sets_key(args, "ghost"))
        return moe_fail(err, "s3fifo: 'ghost' applies to variant=lcs only (variant=moe's ghost holds capacity - small keys)"), NULL;
    if (!lcs && !sets_key(args, "threshold")) p[2].i = 1;
    int n = lcs ? snprintf(canonical, cap, "s3fifo:variant=lcs,small=%g,threshold=%lld,ghost=%g", p[1].d, p[2].i, p[3].d)
                : snprintf(canonical, cap, "s3fifo:variant=moe,small=%g,threshold=%lld", p[1].d, p[2].i);
    if (n < 0 || (size_t)n >= cap) return moe_fail(err, "s3fifo: canonical name too long"), NULL;
    s3 *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "s3fifo: out of memory"), NULL;
    size_t nk = env->n_keys ? env->n_keys : 1;
    s->where = calloc(nk, 1);
    s->freq = calloc(nk, 1);
    s->prev = malloc(nk * sizeof *s->prev);
    s->next = malloc(nk * sizeof *s->next);
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
    s->lcs = lcs;
    if (lcs) {
        /* libCacheSim: (int64_t)cache_size * ratio, truncated (both >= 0: floor) */
        double st = floor((double)c * p[1].d);
        s->s_target = st < 1 ? 1 : st > c ? c : (uint32_t)st;
        s->g_cap = (uint32_t)floor((double)c * p[3].d);
    } else {
        double st = floor(p[1].d * c + 0.5);
        s->s_target = st < 1 ? 1 : st > c ? c : (uint32_t)st;
        s->g_cap = c > s->s_target ? c - s->s_target : 1;
    }
    s->threshold = (uint32_t)p[2].i;
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

/* variant=lcs: S or M is chosen once; S is worked until it evicts or has no
 * unprotected key left, then M (libCacheSim's S3FIFO_evict_fifo / _main). */
static int64_t victim_lcs(s3 *s, const moe_cache *c, int64_t ts, int64_t tm) {
    if ((s->len[S] >= s->s_target && ts >= 0) || tm < 0) {
        while (ts >= 0) {
            uint32_t t = (uint32_t)ts;
            if (s->freq[t] < s->threshold) return t;
            take(s, t);
            put(s, t, M);
            s->freq[t] = 0; /* a new object in libCacheSim's main FIFO */
            ts = oldest_unprotected(s, S, c);
            if (tm < 0) tm = t;
        }
    }
    for (;;) {
        uint32_t t = (uint32_t)tm;
        if (s->freq[t] == 0) return t;
        s->freq[t]--;
        take(s, t);
        put(s, t, M);
        tm = oldest_unprotected(s, M, c);
    }
}

/* variant=moe: the choice between S and M is made again after every move. */
static int64_t victim_moe(s3 *s, const moe_cache *c, int64_t ts, int64_t tm) {
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

static int64_t s3_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    s3 *s = st;
    int64_t ts = oldest_unprotected(s, S, c), tm = oldest_unprotected(s, M, c);
    if (ts < 0 && tm < 0) return -1; /* bypass: no state change */
    uint32_t x = s->env.fixed_layer >= 0 ? a->expert : a->layer * s->env.n_experts + a->expert;
    if (x < s->env.n_keys && s->where[x] == G) {
        take(s, x);
        s->ghost_hit = x;
    }
    return s->lcs ? victim_lcs(s, c, ts, tm) : victim_moe(s, c, ts, tm);
}

static void s3_on_evict(void *st, uint32_t key) {
    s3 *s = st;
    int from = s->where[key];
    take(s, key);
    if (from == S && s->g_cap > 0) {
        if (s->len[G] >= s->g_cap) take(s, s->l[G].tail);
        put(s, key, G);
    }
}

const moe_policy_ops moe_policy_s3fifo = {
    .name = "s3fifo",
    .params = s3_params,
    .n_params = sizeof s3_params / sizeof *s3_params,
    .summary = "S3-FIFO: small + main FIFO, ghost queue, 2-bit counters (libCacheSim's by default)",
    .description =
        "A small FIFO S of max(1, floor(small x capacity)) slots, a main FIFO M and a ghost FIFO "
        "G of floor(ghost x capacity) evicted keys, with 2-bit access counters (hits add 1, "
        "capped at 3). A miss found in G enters M, else S. To free a slot, while S holds at least "
        "its share: S's oldest moves to M (counter reset) if its count is at least threshold, "
        "else it is evicted into G; otherwise M's oldest with a count above 0 is decremented and "
        "reinserted, else evicted. variant=moe (small=0.1, threshold=1) is moesim's earlier "
        "small-cache rule: S of round(small x capacity), G of capacity - |S|, counters kept on "
        "promotion.",
    .reference =
        "J. Yang et al., FIFO queues are all you need for cache eviction, SOSP 2023; variant=lcs "
        "follows libCacheSim's S3FIFO.c (libCacheSim caches nothing below 20 objects; here S "
        "keeps 1 slot)",
    .create = s3_create,
    .on_hit = s3_on_hit,
    .on_insert = s3_on_insert,
    .choose_victim = s3_choose_victim,
    .on_evict = s3_on_evict,
    .destroy = s3_destroy,
};
