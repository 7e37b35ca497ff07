/* fifo: evict the expert that was inserted longest ago.
 *
 * Rule: insertion puts the expert at the newest end of a queue; hits do not
 * reorder it. The victim is the oldest-inserted resident expert that is not
 * protected (not needed by the (step, layer) being served). Parameters: none. */
#include <stdlib.h>

#include "../cache.h"
#include "../params.h"
#include "list.h"

typedef struct fifo { moe_list list; } fifo;

static void *fifo_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                         moe_error *err) {
    if (moe_params_parse("fifo", args, NULL, 0, canonical, cap, err)) return NULL;
    fifo *s = calloc(1, sizeof *s);
    if (!s || moe_list_init(&s->list, env->n_keys)) {
        if (s) moe_list_free(&s->list);
        free(s);
        return moe_fail(err, "fifo: out of memory"), NULL;
    }
    return s;
}

static void fifo_on_hit(void *st, uint32_t key, const moe_access *a) { (void)st, (void)key, (void)a; }

static void fifo_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    moe_list_push_head(&((fifo *)st)->list, key);
}

static int64_t fifo_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    const moe_list *l = &((fifo *)st)->list;
    for (uint32_t k = l->tail; k != MOE_LIST_NIL; k = l->prev[k])
        if (!moe_cache_protected(c, k)) return k;
    return -1;
}

static void fifo_on_evict(void *st, uint32_t key) { moe_list_remove(&((fifo *)st)->list, key); }

/* choose_victim + on_evict + on_insert (policy.h): unlink the oldest
 * unprotected key, push the new one at the newest end. */
static int64_t fifo_replace(void *st, const moe_cache *c, uint32_t key, const moe_access *a) {
    (void)a;
    moe_list *l = &((fifo *)st)->list;
    uint32_t v = l->tail;
    while (v != MOE_LIST_NIL && moe_cache_protected(c, v)) v = l->prev[v];
    if (v == MOE_LIST_NIL) return -1;
    moe_list_remove(l, v);
    moe_list_push_head(l, key);
    return v;
}

static void fifo_destroy(void *st) {
    moe_list_free(&((fifo *)st)->list);
    free(st);
}

const moe_policy_ops moe_policy_fifo = {
    .name = "fifo",
    .summary = "first in, first out (hits do not reorder)",
    .create = fifo_create,
    .on_hit = fifo_on_hit,
    .on_insert = fifo_on_insert,
    .choose_victim = fifo_choose_victim,
    .on_evict = fifo_on_evict,
    .replace = fifo_replace,
    .destroy = fifo_destroy,
};
