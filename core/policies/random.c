/* random: evict a uniformly random unprotected resident expert.
 *
 * Rule: residents are kept in a dense array whose order depends only on the
 * sequence of insertions and evictions (an eviction moves the last element
 * into the hole). To evict, count the m unprotected residents, draw
 * r = uniform [0, m) from a splitmix64 generator (rejection sampling, no
 * modulo bias) and take the r-th unprotected resident in array order. The
 * generator is seeded from env->seed (the replay derives one seed per cache)
 * XOR the `seed` parameter, so runs are reproducible by construction; a cold
 * restart re-seeds. Parameters: seed (integer, default 0, 0..2^53). */
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../params.h"
#include "util.h"

typedef struct rnd {
    moe_kset res;
    uint64_t state;
} rnd;

static void rnd_destroy(void *st) {
    moe_kset_free(&((rnd *)st)->res);
    free(st);
}

/* Parameters (defaults, ranges): create parses a copy; `moesim policies` lists them. */
static const moe_param rnd_params[] = {{.key = "seed", .type = MOE_PARAM_INT, .default_value = "0", .min = 0, .max = 9007199254740992.0, .help = "extra seed mixed into the replay seed"}};

static void *rnd_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                        moe_error *err) {
    moe_param p[sizeof rnd_params / sizeof *rnd_params];
    memcpy(p, rnd_params, sizeof p);
    if (moe_params_parse("random", args, p, sizeof p / sizeof *p, canonical, cap, err)) return NULL;
    rnd *s = calloc(1, sizeof *s);
    if (!s || moe_kset_init(&s->res, env->n_keys)) {
        if (s) rnd_destroy(s);
        return moe_fail(err, "random: out of memory"), NULL;
    }
    /* Mix once so that nearby seeds (the replay uses seed*1000003 + layer)
     * start far apart. */
    s->state = env->seed ^ ((uint64_t)p[0].i * 0xD1B54A32D192ED03ull);
    moe_splitmix64(&s->state);
    return s;
}

static void rnd_on_hit(void *st, uint32_t key, const moe_access *a) { (void)st, (void)key, (void)a; }

static void rnd_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    moe_kset_add(&((rnd *)st)->res, key);
}

static int64_t rnd_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    rnd *s = st;
    uint32_t m = 0;
    for (uint32_t i = 0; i < s->res.n; i++) m += !moe_cache_protected(c, s->res.keys[i]);
    if (!m) return -1; /* no draw on bypass: the stream only advances on evictions */
    uint64_t r = moe_rand_below(&s->state, m);
    for (uint32_t i = 0; i < s->res.n; i++) {
        uint32_t k = s->res.keys[i];
        if (!moe_cache_protected(c, k) && r-- == 0) return k;
    }
    return -1; /* unreachable */
}

static void rnd_on_evict(void *st, uint32_t key) { moe_kset_remove(&((rnd *)st)->res, key); }

const moe_policy_ops moe_policy_random = {
    .name = "random",
    .params = rnd_params,
    .n_params = sizeof rnd_params / sizeof *rnd_params,
    .summary = "uniformly random unprotected victim (seeded splitmix64)",
    .description =
        "The victim is drawn uniformly among the residents outside the current set: a splitmix64 "
        "generator seeded from the run's seed XOR seed, rejection sampling (no modulo bias) over "
        "a resident array whose order depends only on the insertions and evictions, so a run is "
        "reproducible.",
    .reference =
        "the classic random baseline; splitmix64 (Steele, Lea & Flood, OOPSLA 2014)",
    .create = rnd_create,
    .on_hit = rnd_on_hit,
    .on_insert = rnd_on_insert,
    .choose_victim = rnd_choose_victim,
    .on_evict = rnd_on_evict,
    .destroy = rnd_destroy,
};
