/* cache.h: a capacity-limited expert cache driven by a policy.
 *
 * The cache owns residency; the policy owns order. The replay engine and the
 * real backend both serve accesses through moe_cache_access(), which is what
 * makes simulated and real runs comparable hit for hit.
 *
 * Protection: before serving the experts a (step, layer) needs, the caller
 * opens a group with moe_cache_begin_group() and marks each needed key with
 * moe_cache_protect(); a protected key is never chosen as victim, so one
 * expert of a layer's set never evicts another of the same set. */
#ifndef MOE_CACHE_H
#define MOE_CACHE_H

#include <stdint.h>

#include "policy.h"

typedef struct moe_cache {
    const moe_policy_ops *ops;
    void *st;
    moe_policy_env env;
    uint32_t n_keys;
    uint32_t capacity;
    uint32_t used;
    uint8_t *resident;    /* n_keys */
    uint32_t *protect_gen; /* key protected iff protect_gen[key] == gen */
    uint32_t gen;
    char canonical[256];
    /* Byte-capacity mode (moe_cache_set_byte_budget); off (byte_mode == 0)
     * unless asked for, so count-capacity callers see no change. */
    int byte_mode;
    uint64_t byte_budget;  /* bytes the resident keys may occupy */
    uint64_t used_bytes;   /* bytes the resident keys occupy */
    uint64_t *key_bytes;   /* n_keys: size of each key as it would be admitted now */
    uint32_t last_evictions; /* victims of the last access/insert (byte mode may evict several) */
    /* Optional: called for every eviction (byte mode can evict several keys
     * per admission, and *victim only names the last one). */
    void (*evict_hook)(void *ctx, const struct moe_cache *c, uint32_t key);
    void *evict_ctx;
} moe_cache;

enum moe_access_result {
    MOE_MISS_INSERTED = 0, /* miss; the key is now resident */
    MOE_HIT = 1,
    MOE_MISS_BYPASSED = 2, /* miss; every resident key was protected (or capacity 0) */
};

/* spec is "name" or "name:k=v,...". */
moe_cache *moe_cache_new(const char *spec, const moe_policy_env *env, moe_error *err);
void moe_cache_free(moe_cache *c);
/* Drop every resident key and reset the policy (cold restart). */
int moe_cache_reset(moe_cache *c, moe_error *err);

static inline void moe_cache_begin_group(moe_cache *c) {
    if (++c->gen == 0) { /* wrapped: clear stale marks once every 4G groups */
        for (uint32_t i = 0; i < c->n_keys; i++) c->protect_gen[i] = 0;
        c->gen = 1;
    }
}
static inline void moe_cache_protect(moe_cache *c, uint32_t key) { c->protect_gen[key] = c->gen; }
static inline int moe_cache_protected(const moe_cache *c, uint32_t key) {
    return c->protect_gen[key] == c->gen;
}
static inline int moe_cache_resident(const moe_cache *c, uint32_t key) { return c->resident[key]; }

/* The miss path of moe_cache_access (insert, evicting a victim if full). */
enum moe_access_result moe_cache_miss(moe_cache *c, uint32_t key, const moe_access *a,
                                      int64_t *victim);

/* Serve one access: hit -> on_hit; miss -> insert, evicting a victim if full.
 * *victim receives the evicted key or -1. Inline because the replay calls it
 * tens of millions of times a second and the hit path is two loads. */
static inline enum moe_access_result moe_cache_access(moe_cache *c, uint32_t key,
                                                      const moe_access *a, int64_t *victim) {
    if (c->resident[key]) {
        *victim = -1;
        c->last_evictions = 0;
        c->ops->on_hit(c->st, key, a);
        return MOE_HIT;
    }
    return moe_cache_miss(c, key, a, victim);
}

/* Insert without counting an access (prefetch); same eviction rule. Returns
 * 1 if inserted, 0 if already resident, -1 if bypassed. */
int moe_cache_insert(moe_cache *c, uint32_t key, const moe_access *a, int64_t *victim);

/* Prefetch admission, the one rule the replay (sim/replay_engine.c) and the
 * offloaded backend (backend/offload.c) share, so both ask the cache the same
 * things in the same order: the n predicted experts of one layer (ascending,
 * keys base + expert) protect each other, in a fresh group unless keep_group
 * (a global cache keeps the current layer's set protected too); each one not
 * resident is inserted with the normal eviction rule (a->expert set per key).
 * status[i]: 1 inserted, 0 already resident, -1 could not be cached. A byte
 * cache needs the keys' sizes set first. Returns the evictions it caused. */
uint64_t moe_cache_admit_prefetch(moe_cache *c, uint32_t base, const uint16_t *experts, uint32_t n, int keep_group,
                                  moe_access *a, int8_t *status);

/* Byte-capacity mode. After this call the cache admits a key only if its
 * size (moe_cache_set_key_bytes, default 0) fits in `budget` bytes, evicting
 * policy-chosen victims until it does; the count capacity is lifted to n_keys
 * (policies see env.capacity == n_keys). A key larger than the whole budget,
 * or one that cannot fit because every remaining resident key is protected,
 * is bypassed (not cached, still a miss). Call on an empty cache. */
int moe_cache_set_byte_budget(moe_cache *c, uint64_t budget, moe_error *err);
/* Size of a key for its next admission; for a resident key the new size is
 * accounted at once (used_bytes follows), which may exceed the budget until
 * the next admission evicts. */
void moe_cache_set_key_bytes(moe_cache *c, uint32_t key, uint64_t bytes);
/* Install the eviction callback (NULL to remove). */
static inline void moe_cache_set_evict_hook(moe_cache *c,
                                            void (*fn)(void *, const moe_cache *, uint32_t), void *ctx) {
    c->evict_hook = fn;
    c->evict_ctx = ctx;
}

/* Split "name:args" and validate the name against the registry; used by the
 * command line to reject unknown policies before any work starts. */
int moe_policy_canonical(const char *spec, const moe_policy_env *env, char *canonical, size_t cap,
                         moe_error *err);

#endif
