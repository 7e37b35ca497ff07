/* least-stale: SpecMD's Least-Stale eviction.
 *
 * Rule: a resident expert is "current" if it was accessed (hit or inserted)
 * in the current step (forward pass), else "stale". The victim is the
 * unprotected stale expert inserted longest ago; if there is none, the
 * unprotected current expert inserted longest ago. Hits do not change the
 * insertion order (FIFO within each class). The step is tracked with the
 * on_step hook.
 * Note: in per-layer scope the only experts of a layer used in the current
 * step are the ones of the (step, layer) being served, which are protected,
 * so least-stale there is exactly fifo; the two classes differ only in
 * global scope, where experts of earlier layers of the same pass are kept.
 * Parameters: none. Cost: O(residents) per eviction (a scan). */
#include <stdlib.h>

#include "../cache.h"
#include "../params.h"
#include "list.h"

typedef struct ls {
    moe_list q;          /* insertion order, head = newest */
    uint64_t *used_step; /* n_keys: step+1 of the last access (0 = never) */
    uint64_t step1;      /* current step + 1 */
} ls;

static void ls_destroy(void *st) {
    ls *s = st;
    moe_list_free(&s->q);
    free(s->used_step);
    free(s);
}

static void *ls_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                       moe_error *err) {
    if (moe_params_parse("least-stale", args, NULL, 0, canonical, cap, err)) return NULL;
    ls *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "least-stale: out of memory"), NULL;
    int bad = moe_list_init(&s->q, env->n_keys);
    s->used_step = calloc(env->n_keys ? env->n_keys : 1, sizeof *s->used_step);
    if (bad || !s->used_step) {
        ls_destroy(s);
        return moe_fail(err, "least-stale: out of memory"), NULL;
    }
    return s;
}

static void ls_on_step(void *st, uint64_t step) { ((ls *)st)->step1 = step + 1; }

static void ls_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    ls *s = st;
    s->used_step[key] = s->step1;
}

static void ls_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    ls *s = st;
    s->used_step[key] = s->step1;
    moe_list_push_head(&s->q, key);
}

static int64_t ls_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    const ls *s = st;
    int64_t current = -1;
    for (uint32_t k = s->q.tail; k != MOE_LIST_NIL; k = s->q.prev[k]) {
        if (moe_cache_protected(c, k)) continue;
        if (s->used_step[k] != s->step1) return k; /* oldest stale */
        if (current < 0) current = k;
    }
    return current;
}

static void ls_on_evict(void *st, uint32_t key) { moe_list_remove(&((ls *)st)->q, key); }

const moe_policy_ops moe_policy_least_stale = {
    .name = "least-stale",
    .summary = "SpecMD least-stale: experts unused in this pass first (FIFO), then current ones (FIFO)",
    .description =
        "An expert is current if it was used in the current step (forward pass), else stale. The "
        "victim is the stale expert inserted longest ago; if there is none, the current expert "
        "inserted longest ago (FIFO within each class, hits do not reorder). In per-layer scope "
        "the only current experts are the protected ones, so it is exactly fifo there; the "
        "classes differ in global scope.",
    .reference =
        "SpecMD's Least-Stale eviction",
    .create = ls_create,
    .on_hit = ls_on_hit,
    .on_insert = ls_on_insert,
    .choose_victim = ls_choose_victim,
    .on_evict = ls_on_evict,
    .on_step = ls_on_step,
    .destroy = ls_destroy,
};
