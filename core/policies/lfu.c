/* lfu: evict the least frequently used resident expert.
 *
 * Rule: count[k] = number of accesses of k since its last insertion (the
 * inserting access counts as 1, every hit adds 1; eviction forgets it). The
 * victim is the unprotected resident with the smallest count; ties go to the
 * least recently used (oldest last access, which is unique: the policy keeps
 * its own access clock). No aging: an expert's count only grows while it is
 * resident. Parameters: none. Cost: O(residents) per eviction (a scan). */
#include <stdlib.h>

#include "../cache.h"
#include "../params.h"
#include "util.h"

typedef struct lfu {
    moe_kset res;
    uint64_t *count, *last; /* n_keys each */
    uint64_t clock;
} lfu;

static void lfu_destroy(void *st) {
    lfu *s = st;
    moe_kset_free(&s->res);
    free(s->count);
    free(s->last);
    free(s);
}

static void *lfu_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                        moe_error *err) {
    if (moe_params_parse("lfu", args, NULL, 0, canonical, cap, err)) return NULL;
    lfu *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "lfu: out of memory"), NULL;
    size_t n = env->n_keys ? env->n_keys : 1;
    int bad = moe_kset_init(&s->res, env->n_keys);
    s->count = calloc(n, sizeof *s->count);
    s->last = calloc(n, sizeof *s->last);
    if (bad || !s->count || !s->last) {
        lfu_destroy(s);
        return moe_fail(err, "lfu: out of memory"), NULL;
    }
    return s;
}

static void lfu_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    lfu *s = st;
    s->count[key]++;
    s->last[key] = ++s->clock;
}

static void lfu_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    lfu *s = st;
    s->count[key] = 1;
    s->last[key] = ++s->clock;
    moe_kset_add(&s->res, key);
}

static int64_t lfu_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    const lfu *s = st;
    int64_t best = -1;
    for (uint32_t i = 0; i < s->res.n; i++) {
        uint32_t k = s->res.keys[i];
        if (moe_cache_protected(c, k)) continue;
        if (best < 0 || s->count[k] < s->count[best] ||
            (s->count[k] == s->count[best] && s->last[k] < s->last[best]))
            best = k;
    }
    return best;
}

static void lfu_on_evict(void *st, uint32_t key) { moe_kset_remove(&((lfu *)st)->res, key); }

const moe_policy_ops moe_policy_lfu = {
    .name = "lfu",
    .summary = "least frequently used since insertion, ties to least recently used",
    .description =
        "count = accesses since the expert's last insertion (the insertion counts 1, every hit "
        "adds 1, eviction forgets it); the victim is the smallest count outside the current set, "
        "ties to the least recently used. No aging: a resident expert's count only grows.",
    .reference =
        "the classic frequency rule; ties and (no) aging as stated here",
    .create = lfu_create,
    .on_hit = lfu_on_hit,
    .on_insert = lfu_on_insert,
    .choose_victim = lfu_choose_victim,
    .on_evict = lfu_on_evict,
    .destroy = lfu_destroy,
};
