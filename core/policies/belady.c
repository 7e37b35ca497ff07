/* belady: Belady's MIN, the exact offline optimum for a demand cache.
 *
 * Rule: the victim is the unprotected resident expert whose next use is
 * farthest in the future; experts never used again (next_use = MOE_NEVER)
 * are the farthest of all. Ties can only happen among never-again experts
 * and do not change any hit count. With cold-per-seq the next use may lie
 * beyond the next restart; such an expert is then farther than any expert
 * used before the restart, which keeps MIN exact.
 *
 * Optimality: with the replay's protection rule this is the best possible
 * hit count whenever every (step, layer) set fits in the cache (checked
 * against a brute force over all allowed victim choices). When a set is
 * larger than the cache, the forced bypass of its last misses lets another
 * victim order keep a key that MIN evicted, and MIN can lose hits; the
 * tests hold a 15-access example (belady 1 hit, optimum 2).
 *
 * Needs the future: the replay fills moe_access.next_use (the ordinal of the
 * key's next access) for every access (flag MOE_POLICY_NEEDS_FUTURE).
 *
 * Data structure: an indexed binary max-heap of resident keys ordered by
 * next_use, with pos[key] giving each key's slot, so a hit (the key's
 * next_use grows: sift up), an insertion (push) and an eviction (remove at
 * pos) are O(log n). choose_victim looks at the top; protected keys (needed
 * by the current (step, layer)) are popped and set aside until an
 * unprotected top appears, then pushed back. At most |current set| keys are
 * set aside, so this stays O(k log n). Parameters: none. */
#include <stdlib.h>

#include "../cache.h"
#include "../params.h"

#define NOPOS UINT32_MAX

/* A heap entry carries its key's next use, so the sifts compare adjacent
 * memory instead of looking each key up in an n_keys-sized array: with a
 * million keys that lookup missed the CPU cache on every heap level. */
typedef struct hent {
    uint64_t nu; /* next use of key */
    uint32_t key;
} hent;

typedef struct belady {
    hent *heap;        /* heap[0..n): max next use at heap[0] */
    uint32_t *pos;     /* n_keys: index in heap or NOPOS */
    uint32_t *aside;   /* scratch for protected keys popped by choose_victim */
    uint64_t *aside_nu;
    uint32_t n;
} belady;

static void sift_up(belady *s, uint32_t i) {
    hent x = s->heap[i];
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (s->heap[p].nu >= x.nu) break;
        s->heap[i] = s->heap[p];
        s->pos[s->heap[i].key] = i;
        i = p;
    }
    s->heap[i] = x;
    s->pos[x.key] = i;
}

static void sift_down(belady *s, uint32_t i) {
    hent x = s->heap[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= s->n) break;
        if (c + 1 < s->n && s->heap[c + 1].nu > s->heap[c].nu) c++;
        if (s->heap[c].nu <= x.nu) break;
        s->heap[i] = s->heap[c];
        s->pos[s->heap[i].key] = i;
        i = c;
    }
    s->heap[i] = x;
    s->pos[x.key] = i;
}

static void push(belady *s, uint32_t key, uint64_t nu) {
    s->heap[s->n] = (hent){nu, key};
    s->pos[key] = s->n;
    s->n++;
    sift_up(s, s->n - 1);
}

static void remove_key(belady *s, uint32_t key) {
    uint32_t i = s->pos[key];
    s->pos[key] = NOPOS;
    if (--s->n == i) return;
    hent last = s->heap[s->n];
    s->heap[i] = last;
    s->pos[last.key] = i;
    if (i > 0 && s->heap[(i - 1) / 2].nu < last.nu) sift_up(s, i);
    else sift_down(s, i);
}

static void belady_destroy(void *st) {
    belady *s = st;
    free(s->heap);
    free(s->pos);
    free(s->aside);
    free(s->aside_nu);
    free(s);
}

static void *belady_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                           moe_error *err) {
    if (moe_params_parse("belady", args, NULL, 0, canonical, cap, err)) return NULL;
    belady *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "belady: out of memory"), NULL;
    size_t n = env->n_keys ? env->n_keys : 1;
    /* at most capacity keys are resident (capacity + 1 during an insert) */
    size_t h = env->capacity < n ? (size_t)env->capacity + 1 : n;
    s->heap = malloc(h * sizeof *s->heap);
    s->pos = malloc(n * sizeof *s->pos);
    s->aside = malloc(h * sizeof *s->aside);
    s->aside_nu = malloc(h * sizeof *s->aside_nu);
    if (!s->heap || !s->pos || !s->aside || !s->aside_nu) {
        belady_destroy(s);
        return moe_fail(err, "belady: out of memory"), NULL;
    }
    for (size_t i = 0; i < n; i++) s->pos[i] = NOPOS;
    return s;
}

static void belady_on_hit(void *st, uint32_t key, const moe_access *a) {
    belady *s = st;
    uint32_t i = s->pos[key];
    uint64_t old = s->heap[i].nu;
    s->heap[i].nu = a->next_use;
    if (a->next_use > old) sift_up(s, i);
    else sift_down(s, i);
}

static void belady_on_insert(void *st, uint32_t key, const moe_access *a) { push(st, key, a->next_use); }

static int64_t belady_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    belady *s = st;
    if (s->n && !moe_cache_protected(c, s->heap[0].key)) return s->heap[0].key;
    uint32_t n_aside = 0;
    int64_t v = -1;
    while (s->n) {
        uint32_t k = s->heap[0].key;
        if (!moe_cache_protected(c, k)) {
            v = k;
            break;
        }
        s->aside_nu[n_aside] = s->heap[0].nu;
        s->aside[n_aside++] = k;
        remove_key(s, k);
    }
    for (uint32_t i = 0; i < n_aside; i++) push(s, s->aside[i], s->aside_nu[i]);
    return v;
}

static void belady_on_evict(void *st, uint32_t key) { remove_key(st, key); }

const moe_policy_ops moe_policy_belady = {
    .name = "belady",
    .summary = "offline optimum (MIN): evict the expert used farthest in the future",
    .description =
        "Belady's MIN: the victim is the expert outside the current set whose next use is "
        "farthest in the future, experts never used again first. The replay computes every "
        "access's next use from the trace, so this is the offline optimum for a demand cache "
        "(exact whenever each (step, layer) set fits in the cache): an upper bound, not a policy "
        "a system can run.",
    .reference =
        "L. A. Belady, A study of replacement algorithms for a virtual-storage computer, IBM "
        "Systems Journal 5(2), 1966",
    .oracle_when = "",
    .flags = MOE_POLICY_NEEDS_FUTURE,
    .create = belady_create,
    .on_hit = belady_on_hit,
    .on_insert = belady_on_insert,
    .choose_victim = belady_choose_victim,
    .on_evict = belady_on_evict,
    .destroy = belady_destroy,
};
