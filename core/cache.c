/* cache.c: residency bookkeeping shared by every policy. */
#include "cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const moe_policy_ops *lookup(const char *spec, const char **args, moe_error *err) {
    char name[64];
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len == 0 || len >= sizeof name) return moe_fail(err, "bad policy name '%s'", spec), NULL;
    memcpy(name, spec, len);
    name[len] = 0;
    const moe_policy_ops *ops = moe_policy_find(name);
    if (!ops) {
        char known[512] = "";
        for (const moe_policy_ops *const *p = moe_policy_list(); *p; p++) {
            if (p != moe_policy_list()) strncat(known, ", ", sizeof known - strlen(known) - 1);
            strncat(known, (*p)->name, sizeof known - strlen(known) - 1);
        }
        moe_fail(err, "unknown policy '%s' (known: %s)", name, known);
        return NULL;
    }
    *args = colon ? colon + 1 : "";
    return ops;
}

moe_cache *moe_cache_new(const char *spec, const moe_policy_env *env, moe_error *err) {
    const char *args;
    const moe_policy_ops *ops = lookup(spec, &args, err);
    if (!ops) return NULL;
    moe_cache *c = calloc(1, sizeof *c);
    if (!c) return moe_fail(err, "out of memory"), NULL;
    c->ops = ops;
    c->env = *env;
    c->n_keys = env->n_keys;
    /* A cache larger than the key space behaves as one of n_keys. */
    c->capacity = env->capacity < env->n_keys ? env->capacity : env->n_keys;
    c->env.capacity = c->capacity;
    c->resident = calloc(c->n_keys ? c->n_keys : 1, 1);
    c->protect_gen = calloc(c->n_keys ? c->n_keys : 1, sizeof(uint32_t));
    if (!c->resident || !c->protect_gen) {
        moe_cache_free(c);
        return moe_fail(err, "out of memory"), NULL;
    }
    c->st = ops->create(args, &c->env, c->canonical, sizeof c->canonical, err);
    if (!c->st) {
        moe_cache_free(c);
        return NULL;
    }
    return c;
}

void moe_cache_free(moe_cache *c) {
    if (!c) return;
    if (c->st) c->ops->destroy(c->st);
    free(c->resident);
    free(c->protect_gen);
    free(c->key_bytes);
    free(c);
}

int moe_cache_reset(moe_cache *c, moe_error *err) {
    if (c->ops->reset) {
        c->ops->reset(c->st);
    } else {
        const char *colon = strchr(c->canonical, ':');
        void *st = c->ops->create(colon ? colon + 1 : "", &c->env, c->canonical, sizeof c->canonical, err);
        if (!st) return -1;
        c->ops->destroy(c->st);
        c->st = st;
    }
    memset(c->resident, 0, c->n_keys);
    c->used = 0;
    c->used_bytes = 0;
    return 0;
}

int moe_cache_set_byte_budget(moe_cache *c, uint64_t budget, moe_error *err) {
    if (c->used) return moe_fail(err, "byte budget set on a non-empty cache");
    if (!c->key_bytes && !(c->key_bytes = calloc(c->n_keys ? c->n_keys : 1, sizeof *c->key_bytes)))
        return moe_fail(err, "out of memory");
    /* The policy was created for the count capacity; recreate it with the
     * capacity lifted to n_keys so size-dependent policies size their arrays
     * for every key that may become resident. */
    c->capacity = c->n_keys;
    c->env.capacity = c->n_keys;
    if (moe_cache_reset(c, err)) return -1;
    c->byte_mode = 1;
    c->byte_budget = budget;
    c->used_bytes = 0;
    return 0;
}

void moe_cache_set_key_bytes(moe_cache *c, uint32_t key, uint64_t bytes) {
    if (!c->key_bytes) return;
    if (c->resident[key]) c->used_bytes = c->used_bytes - c->key_bytes[key] + bytes;
    c->key_bytes[key] = bytes;
}

static void evict(moe_cache *c, uint32_t v) {
    c->resident[v] = 0;
    c->used--;
    if (c->byte_mode) c->used_bytes -= c->key_bytes[v];
    c->ops->on_evict(c->st, v);
    c->last_evictions++;
    if (c->evict_hook) c->evict_hook(c->evict_ctx, c, v);
}

/* Byte mode: evict until the key fits; the victims chosen before we find
 * that it cannot fit stay evicted (as a real cache that freed space would). */
__attribute__((noinline)) static int admit_bytes(moe_cache *c, uint32_t key, const moe_access *a, int64_t *victim) {
    uint64_t need = c->key_bytes[key];
    if (need > c->byte_budget) return -1;
    while (c->used_bytes + need > c->byte_budget) {
        int64_t v = c->ops->choose_victim(c->st, c, a);
        if (v < 0) return -1;
        evict(c, (uint32_t)v);
        *victim = v;
    }
    c->resident[key] = 1;
    c->used++;
    c->used_bytes += need;
    c->ops->on_insert(c->st, key, a);
    return 0;
}

/* The generic miss of a full count-mode cache: evict the policy's victim
 * (choose_victim + on_evict), then insert. Out of line so the common cases
 * in admit() keep a short prologue. */
__attribute__((noinline)) static int admit_full(moe_cache *c, uint32_t key, const moe_access *a,
                                                int64_t *victim) {
    int64_t v = c->ops->choose_victim(c->st, c, a);
    if (v < 0) return -1;
    evict(c, (uint32_t)v);
    *victim = v;
    c->resident[key] = 1;
    c->used++;
    c->ops->on_insert(c->st, key, a);
    return 0;
}

/* Make room if full and mark key resident. Returns 0, or -1 on bypass. */
static inline int admit(moe_cache *c, uint32_t key, const moe_access *a, int64_t *victim) {
    *victim = -1;
    c->last_evictions = 0;
    if (c->byte_mode) return admit_bytes(c, key, a, victim);
    if (c->used < c->capacity) {
        c->resident[key] = 1;
        c->used++;
        c->ops->on_insert(c->st, key, a);
        return 0;
    }
    if (!c->capacity) return -1;
    if (!c->ops->replace) return admit_full(c, key, a, victim);
    /* choose_victim + on_evict + on_insert in one policy call (policy.h);
     * the cache's side is what evict() and the insertion above do, with
     * used unchanged (one out, one in). */
    int64_t v = c->ops->replace(c->st, c, key, a);
    if (v < 0) return -1;
    c->resident[v] = 0;
    c->last_evictions = 1;
    *victim = v;
    if (c->evict_hook) c->evict_hook(c->evict_ctx, c, (uint32_t)v);
    c->resident[key] = 1;
    return 0;
}

enum moe_access_result moe_cache_miss(moe_cache *c, uint32_t key, const moe_access *a,
                                      int64_t *victim) {
    return admit(c, key, a, victim) ? MOE_MISS_BYPASSED : MOE_MISS_INSERTED;
}

int moe_cache_insert(moe_cache *c, uint32_t key, const moe_access *a, int64_t *victim) {
    if (c->resident[key]) {
        *victim = -1;
        c->last_evictions = 0;
        return 0;
    }
    return admit(c, key, a, victim) ? -1 : 1;
}

uint64_t moe_cache_admit_prefetch(moe_cache *c, uint32_t base, const uint16_t *experts, uint32_t n, int keep_group,
                                  moe_access *a, int8_t *status) {
    if (!keep_group) moe_cache_begin_group(c);
    for (uint32_t i = 0; i < n; i++) moe_cache_protect(c, base + experts[i]);
    uint64_t evictions = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t key = base + experts[i];
        if (c->resident[key]) {
            status[i] = 0;
            continue;
        }
        a->expert = experts[i];
        int64_t victim;
        status[i] = (int8_t)moe_cache_insert(c, key, a, &victim);
        evictions += c->last_evictions;
    }
    return evictions;
}

int moe_policy_canonical(const char *spec, const moe_policy_env *env, char *canonical, size_t cap,
                         moe_error *err) {
    moe_cache *c = moe_cache_new(spec, env, err);
    if (!c) return -1;
    snprintf(canonical, cap, "%s", c->canonical);
    moe_cache_free(c);
    return 0;
}
