/* list_policy.h: the shared body of the policies whose whole state is one
 * recency/insertion list (lru, fifo). Insertion pushes at the newest end; the
 * victim is the oldest key that is not protected. The policies differ only in
 * what a hit does, so each file keeps its on_hit and its ops struct and takes
 * everything else from here. The state is the moe_list itself. */
#ifndef MOE_LIST_POLICY_H
#define MOE_LIST_POLICY_H

#include <stdlib.h>

#include "../cache.h"
#include "../params.h"
#include "list.h"

static inline void *moe_list_policy_create(const char *name, const char *args, const moe_policy_env *env,
                                           char *canonical, size_t cap, moe_error *err) {
    if (moe_params_parse(name, args, NULL, 0, canonical, cap, err)) return NULL;
    moe_list *l = calloc(1, sizeof *l);
    if (!l || moe_list_init(l, env->n_keys)) {
        if (l) moe_list_free(l);
        free(l);
        return moe_fail(err, "%s: out of memory", name), NULL;
    }
    return l;
}

static inline void moe_list_policy_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    moe_list_push_head(st, key);
}

/* The oldest key not protected, or MOE_LIST_NIL. */
static inline uint32_t moe_list_policy_oldest(const moe_list *l, const moe_cache *c) {
    uint32_t v = l->tail;
    while (v != MOE_LIST_NIL && moe_cache_protected(c, v)) v = l->prev[v];
    return v;
}

static inline int64_t moe_list_policy_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    uint32_t v = moe_list_policy_oldest(st, c);
    return v == MOE_LIST_NIL ? -1 : (int64_t)v;
}

static inline void moe_list_policy_on_evict(void *st, uint32_t key) { moe_list_remove(st, key); }

/* choose_victim + on_evict + on_insert in one call (policy.h). */
static inline int64_t moe_list_policy_replace(void *st, const moe_cache *c, uint32_t key, const moe_access *a) {
    (void)a;
    moe_list *l = st;
    uint32_t v = moe_list_policy_oldest(l, c);
    if (v == MOE_LIST_NIL) return -1;
    moe_list_remove(l, v);
    moe_list_push_head(l, key);
    return v;
}

static inline void moe_list_policy_destroy(void *st) {
    moe_list_free(st);
    free(st);
}

#endif
