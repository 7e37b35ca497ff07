/* arc: Adaptive Replacement Cache (Megiddo & Modha, FAST 2003).
 *
 * State: resident lists T1 (seen once since it entered) and T2 (seen at least
 * twice), ghost lists B1 and B2 (keys recently evicted from T1 resp. T2, no
 * data), and the target size p of T1, 0 <= p <= c (c = capacity). All four
 * lists are LRU-ordered and share one pair of link arrays sized n_keys.
 *
 * Rule, for an access of x (the paper's cases):
 *  I   x in T1 or T2 (hit): move x to the MRU end of T2.
 *  II  x in B1 (miss): p = min(c, p + d1), d1 = max(1, |B2| / |B1|);
 *      REPLACE; x goes to the MRU end of T2.
 *  III x in B2 (miss): p = max(0, p - d2), d2 = max(1, |B1| / |B2|);
 *      REPLACE; x goes to the MRU end of T2.
 *      (|B1| and |B2| are taken before x leaves its ghost list.)
 *  IV  x nowhere (miss): if |T1| + |B1| == c: if |T1| < c drop the LRU of B1
 *      and REPLACE, else evict the LRU of T1 without keeping a ghost.
 *      Otherwise, if the cache is full: if |T1|+|T2|+|B1|+|B2| == 2c drop the
 *      LRU of B2; REPLACE. x goes to the MRU end of T1.
 *  REPLACE: if |T1| >= 1 and (|T1| > p or (x in B2 and |T1| == p)) evict from
 *      T1 into the MRU end of B1, else evict from T2 into the MRU end of B2.
 * p is a real number (double) and d1, d2 are real quotients, as in the
 * paper and in libCacheSim's ARC (cache/eviction/ARC.c); the comparisons
 * |T1| > p and |T1| == p are between an integer and that double. (An integer
 * p with floor divisions, moesim's rule before, adapts differently: on
 * libCacheSim's cloudPhysicsIO sample it misses up to 28 more and 4 fewer
 * at sizes 16..1024.) With every key unprotected (plain key traces,
 * `--scope global`) this is libCacheSim's ARC miss for miss;
 * tests/unit/test_lcs_parity.c checks it.
 *
 * Adaptation to moesim's replay: "evict the LRU of a list" means its least
 * recent *unprotected* key (protected = needed by the current (step, layer));
 * if the list REPLACE prefers holds only protected keys, the LRU unprotected
 * key of the other resident list is evicted instead (into its own ghost
 * list). If every resident key is protected the new key is not cached
 * (bypass) and ARC's state, p included, is left exactly as it was. All
 * evictions happen only when the cache is full, as in the paper, so the
 * invariants |T1|+|B1| <= c and |T1|+|T2|+|B1|+|B2| <= 2c hold.
 * Parameters: none. */
#include <stdlib.h>

#include "../cache.h"
#include "../params.h"
#include "list.h"

enum { NONE = 0, T1, T2, B1, B2 };

typedef struct arc {
    moe_list l[5];  /* l[T1..B2]; link arrays shared (a key is in one list) */
    uint32_t len[5];
    uint8_t *where; /* n_keys */
    uint32_t *prev, *next;
    uint32_t c;
    double p; /* target size of T1, 0 <= p <= c */
    int pending_dest; /* ghost list for the victim chosen last (B1, B2 or NONE) */
    moe_policy_env env;
} arc;

static void arc_destroy(void *st) {
    arc *s = st;
    free(s->where);
    free(s->prev);
    free(s->next);
    free(s);
}

static void *arc_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                        moe_error *err) {
    if (moe_params_parse("arc", args, NULL, 0, canonical, cap, err)) return NULL;
    arc *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "arc: out of memory"), NULL;
    size_t n = env->n_keys ? env->n_keys : 1;
    s->where = calloc(n, 1);
    s->prev = malloc(n * sizeof *s->prev);
    s->next = malloc(n * sizeof *s->next);
    if (!s->where || !s->prev || !s->next) {
        arc_destroy(s);
        return moe_fail(err, "arc: out of memory"), NULL;
    }
    for (int i = 0; i < 5; i++) {
        s->l[i].prev = s->prev;
        s->l[i].next = s->next;
        s->l[i].head = s->l[i].tail = MOE_LIST_NIL;
    }
    s->c = env->capacity;
    s->env = *env;
    return s;
}

static void put(arc *s, uint32_t key, int list) {
    moe_list_push_head(&s->l[list], key);
    s->len[list]++;
    s->where[key] = (uint8_t)list;
}

static void take(arc *s, uint32_t key) {
    int w = s->where[key];
    moe_list_remove(&s->l[w], key);
    s->len[w]--;
    s->where[key] = NONE;
}

static void arc_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    arc *s = st;
    take(s, key);
    put(s, key, T2);
}

static void arc_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    arc *s = st;
    int w = s->where[key];
    if (w == B1 || w == B2) {
        take(s, key);
        put(s, key, T2);
    } else {
        put(s, key, T1);
    }
}

static int64_t lru_unprotected(const arc *s, int list, const moe_cache *c) {
    for (uint32_t k = s->l[list].tail; k != MOE_LIST_NIL; k = s->prev[k])
        if (!moe_cache_protected(c, k)) return k;
    return -1;
}

/* REPLACE with target p; sets *from to the list the victim leaves. */
static int64_t replace(const arc *s, int x_in_b2, double p, const moe_cache *c, int *from) {
    double t1 = s->len[T1];
    int first = (t1 >= 1 && (t1 > p || (x_in_b2 && t1 == p))) ? T1 : T2;
    int second = first == T1 ? T2 : T1;
    int64_t v = lru_unprotected(s, first, c);
    *from = first;
    if (v < 0) {
        v = lru_unprotected(s, second, c);
        *from = second;
    }
    return v;
}

static int64_t arc_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    arc *s = st;
    uint32_t x = s->env.fixed_layer >= 0 ? a->expert : a->layer * s->env.n_experts + a->expert;
    int w = s->where[x], from;
    int64_t v;
    if (w == B1) {
        double d = (double)s->len[B2] / s->len[B1];
        if (d < 1) d = 1;
        double np = s->p + d > s->c ? s->c : s->p + d;
        if ((v = replace(s, 0, np, c, &from)) < 0) return -1;
        s->p = np;
    } else if (w == B2) {
        double d = (double)s->len[B1] / s->len[B2];
        if (d < 1) d = 1;
        double np = s->p - d > 0 ? s->p - d : 0;
        if ((v = replace(s, 1, np, c, &from)) < 0) return -1;
        s->p = np;
    } else if (s->len[T1] + s->len[B1] == s->c) {
        if (s->len[T1] < s->c) {
            if ((v = replace(s, 0, s->p, c, &from)) < 0) return -1;
            take(s, s->l[B1].tail);
        } else {
            if ((v = lru_unprotected(s, T1, c)) < 0) return -1;
            from = NONE; /* dropped without a ghost */
        }
    } else {
        if ((v = replace(s, 0, s->p, c, &from)) < 0) return -1;
        if (s->len[T1] + s->len[T2] + s->len[B1] + s->len[B2] == 2 * s->c) take(s, s->l[B2].tail);
    }
    s->pending_dest = from == T1 ? B1 : from == T2 ? B2 : NONE;
    return v;
}

static void arc_on_evict(void *st, uint32_t key) {
    arc *s = st;
    take(s, key);
    if (s->pending_dest != NONE) put(s, key, s->pending_dest);
    s->pending_dest = NONE;
}

const moe_policy_ops moe_policy_arc = {
    .name = "arc",
    .summary = "adaptive replacement cache (Megiddo & Modha): T1/T2 + ghosts B1/B2",
    .description =
        "Adaptive Replacement Cache: resident lists T1 (seen once) and T2 (seen twice or more) "
        "and ghost lists B1, B2 of recently evicted keys; a B1 hit raises the target size p of T1 "
        "by max(1, |B2|/|B1|), a B2 hit lowers it by max(1, |B1|/|B2|) (real division, as in the "
        "paper and libCacheSim); REPLACE evicts from T1 when |T1| > p, else from T2, and the "
        "other list gives the victim when the preferred one holds only experts of the current "
        "set.",
    .reference =
        "N. Megiddo and D. S. Modha, ARC: A Self-Tuning, Low Overhead Replacement Cache, FAST "
        "2003; miss for miss with libCacheSim's ARC on key sequences",
    .create = arc_create,
    .on_hit = arc_on_hit,
    .on_insert = arc_on_insert,
    .choose_victim = arc_choose_victim,
    .on_evict = arc_on_evict,
    .destroy = arc_destroy,
};
