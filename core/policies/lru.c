/* lru: evict the least recently used resident expert.
 *
 * Rule: every access (hit or insertion) moves the expert to the most-recent
 * end; the victim is the least recent expert that is not protected (not
 * needed by the (step, layer) being served). Parameters: none. */
#include <stdio.h>
#include <stdlib.h>

#include "../cache.h"
#include "../params.h"
#include "list.h"

typedef struct lru { moe_list list; } lru;

static void *lru_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                        moe_error *err) {
    if (moe_params_parse("lru", args, NULL, 0, canonical, cap, err)) return NULL;
    lru *s = calloc(1, sizeof *s);
    if (!s || moe_list_init(&s->list, env->n_keys)) {
        if (s) moe_list_free(&s->list);
        free(s);
        return moe_fail(err, "lru: out of memory"), NULL;
    }
    return s;
}

static void lru_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    moe_list_move_to_head(&((lru *)st)->list, key);
}

static void lru_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    moe_list_push_head(&((lru *)st)->list, key);
}

static int64_t lru_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    const moe_list *l = &((lru *)st)->list;
    for (uint32_t k = l->tail; k != MOE_LIST_NIL; k = l->prev[k])
        if (!moe_cache_protected(c, k)) return k;
    return -1;
}

static void lru_on_evict(void *st, uint32_t key) { moe_list_remove(&((lru *)st)->list, key); }

/* choose_victim + on_evict + on_insert (policy.h): unlink the oldest
 * unprotected key, push the new one at the newest end. */
static int64_t lru_replace(void *st, const moe_cache *c, uint32_t key, const moe_access *a) {
    (void)a;
    moe_list *l = &((lru *)st)->list;
    uint32_t v = l->tail;
    while (v != MOE_LIST_NIL && moe_cache_protected(c, v)) v = l->prev[v];
    if (v == MOE_LIST_NIL) return -1;
    moe_list_remove(l, v);
    moe_list_push_head(l, key);
    return v;
}

static void lru_destroy(void *st) {
    moe_list_free(&((lru *)st)->list);
    free(st);
}

const moe_policy_ops moe_policy_lru = {
    .name = "lru",
    .summary = "least recently used",
    .create = lru_create,
    .on_hit = lru_on_hit,
    .on_insert = lru_on_insert,
    .choose_victim = lru_choose_victim,
    .on_evict = lru_on_evict,
    .replace = lru_replace,
    .destroy = lru_destroy,
};
