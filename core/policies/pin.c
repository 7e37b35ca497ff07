/* pin: static pinning of the most used experts from a routing profile
 * (flash-moe's "universal experts"); everything else is LRU.
 *
 * Profile: activation count of each (layer, expert) = number of
 * (token, layer, slot) entries of the profile trace naming it. The profile
 * is the trace given by profile=PATH (any format moe_trace_load reads; its
 * layers and experts must match the replayed trace), or, by default
 * (profile=self), the replayed trace itself: that is an oracle (it knows the
 * future), which the canonical name "pin:n=N,profile=self" says.
 * Pinned set: per layer, the n experts with the highest count (ties to the
 * lower expert id). Per-layer scope: the cache of layer l pins its layer's
 * top min(n, capacity). Global scope: the union of every layer's top n; if
 * that exceeds the capacity, only the top `capacity` of the union by count
 * (ties to the lower key = layer * experts + expert) are pinned.
 * Rule: a pinned expert is inserted on its first use (a miss like any other)
 * and is never evicted after that. Unpinned experts are LRU: every access
 * moves one to the most recent end; the victim is the least recent
 * unprotected unpinned resident. Since pinned experts never exceed the
 * capacity, a pinned expert always finds room unless every unpinned
 * resident is protected (bypass).
 * Note: because a pinned expert is never evicted, pin may decline to cache
 * a miss (bypass) although a resident expert outside the current set exists
 * (a pinned one). That puts it outside the class of policies for which
 * belady (MIN) is optimal, and on small caches it can score more hits than
 * belady (the tests show one at capacity 1).
 * Parameters: n (pinned experts per layer, 0..65534, default 2),
 * profile (path or "self", default self). A cold restart (cold-per-seq)
 * recomputes the profile, which for a file means reading it again. */
#include <stdlib.h>
#include <string.h>

#include "list_policy.h"

typedef struct pin {
    moe_list lru;    /* unpinned residents only */
    uint8_t *pinned; /* n_keys */
} pin;

static void pin_destroy(void *st) {
    pin *s = st;
    moe_list_free(&s->lru);
    free(s->pinned);
    free(s);
}

/* Select the top `take` of keys[0..n) by (count desc, key asc) into the front
 * of keys (partial selection sort: n is at most experts or layers*n). */
static void top(uint32_t *keys, uint32_t n, const uint64_t *count, uint32_t take) {
    for (uint32_t i = 0; i < take && i < n; i++) {
        uint32_t b = i;
        for (uint32_t j = i + 1; j < n; j++)
            if (count[keys[j]] > count[keys[b]] ||
                (count[keys[j]] == count[keys[b]] && keys[j] < keys[b]))
                b = j;
        uint32_t t = keys[i];
        keys[i] = keys[b];
        keys[b] = t;
    }
}

/* Parameters (defaults, ranges): create parses a copy; `moesim policies` lists them. */
static const moe_param pin_params[] = {
    {.key = "n", .type = MOE_PARAM_INT, .default_value = "2", .min = 0, .max = 65534, .help = "pinned experts per layer"},
    {.key = "profile", .type = MOE_PARAM_STRING, .default_value = "self", .min = 0, .max = 0, .help = "profile trace path, or self (oracle)"},
};

static void *pin_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                        moe_error *err) {
    moe_param p[sizeof pin_params / sizeof *pin_params];
    memcpy(p, pin_params, sizeof p);
    if (moe_params_parse("pin", args, p, sizeof p / sizeof *p, canonical, cap, err)) return NULL;
    const moe_trace *prof = env->trace;
    moe_trace *loaded = NULL;
    if (strcmp(p[1].s, "self")) {
        if (!(loaded = moe_trace_load(p[1].s, err))) return moe_fail_prefix(err, "pin: profile"), NULL;
        prof = loaded;
    }
    if (!prof) return moe_fail(err, "pin: no trace to profile (give profile=PATH)"), NULL;
    if (prof->n_layers != env->n_layers || prof->n_experts != env->n_experts) {
        moe_fail(err, "pin: profile %s has %u layers x %u experts, the trace %u x %u", p[1].s,
                 prof->n_layers, prof->n_experts, env->n_layers, env->n_experts);
        moe_trace_free(loaded);
        return NULL;
    }
    uint32_t L = env->n_layers, E = env->n_experts;
    pin *s = calloc(1, sizeof *s);
    uint64_t *count = calloc((size_t)L * E + 1, sizeof *count);
    uint32_t *keys = malloc(((size_t)L * E + 1) * sizeof *keys);
    int bad = !s || !count || !keys;
    if (s) {
        bad |= moe_list_init(&s->lru, env->n_keys);
        bad |= !(s->pinned = calloc(env->n_keys ? env->n_keys : 1, 1));
    }
    if (bad) {
        if (s) pin_destroy(s);
        free(count);
        free(keys);
        moe_trace_free(loaded);
        return moe_fail(err, "pin: out of memory"), NULL;
    }
    /* count only the layers this cache serves */
    uint32_t l0 = env->fixed_layer >= 0 ? (uint32_t)env->fixed_layer : 0;
    uint32_t l1 = env->fixed_layer >= 0 ? l0 + 1 : L;
    for (uint64_t t = 0; t < prof->n_tokens; t++)
        for (uint32_t l = l0; l < l1; l++) {
            size_t r = moe_trace_rec(prof, t, l);
            for (uint32_t k = 0; k < prof->top_k && prof->experts[r + k] != MOE_NO_EXPERT; k++)
                count[(size_t)l * E + prof->experts[r + k]]++;
        }
    uint32_t n = (uint32_t)p[0].i, m = 0;
    for (uint32_t l = l0; l < l1; l++) {
        for (uint32_t e = 0; e < E; e++) keys[m + e] = l * E + e;
        top(keys + m, E, count, n);
        m += n < E ? n : E;
    }
    uint32_t take = m < env->capacity ? m : env->capacity;
    top(keys, m, count, take);
    for (uint32_t i = 0; i < take; i++)
        s->pinned[env->fixed_layer >= 0 ? keys[i] % E : keys[i]] = 1;
    free(count);
    free(keys);
    moe_trace_free(loaded);
    return s;
}

static void pin_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    pin *s = st;
    if (!s->pinned[key]) moe_list_move_to_head(&s->lru, key);
}

static void pin_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    pin *s = st;
    if (!s->pinned[key]) moe_list_push_head(&s->lru, key);
}

/* Pinned experts never enter the list, so its oldest unprotected key is the
 * LRU victim among the rest. */
static int64_t pin_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    return moe_list_policy_choose_victim(&((pin *)st)->lru, c, a);
}

static void pin_on_evict(void *st, uint32_t key) { moe_list_remove(&((pin *)st)->lru, key); }

/* Cold restart: the pinned set (the profile) stays, the LRU list empties. */
static void pin_reset(void *st) {
    moe_list *l = &((pin *)st)->lru;
    l->head = l->tail = MOE_LIST_NIL;
}

const moe_policy_ops moe_policy_pin = {
    .name = "pin",
    .params = pin_params,
    .n_params = sizeof pin_params / sizeof *pin_params,
    .flags = MOE_POLICY_NEEDS_ROUTING,
    .summary = "pin the top-n experts per layer of a profile (default: the trace itself, an oracle); rest LRU",
    .description =
        "Pin each layer's top-n experts by activation count in a profile trace (profile=PATH, or "
        "profile=self: the replayed trace itself); a pinned expert enters on its first use and is "
        "never evicted. Every other expert is LRU. In global scope the union of the layers' top n "
        "is pinned, cut to the capacity by count. With profile=self the pinned set is chosen "
        "knowing the whole trace: an oracle.",
    .reference =
        "flash-moe's universal experts (static pinning from a routing profile)",
    .oracle_when = "profile=self",
    .create = pin_create,
    .on_hit = pin_on_hit,
    .on_insert = pin_on_insert,
    .choose_victim = pin_choose_victim,
    .on_evict = pin_on_evict,
    .reset = pin_reset,
    .destroy = pin_destroy,
};
