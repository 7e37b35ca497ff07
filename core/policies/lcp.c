/* lcp: layer-depth-biased priority (the "LCP" eviction of MLX-Flash, with
 * FATE's shallow-favouring split of the cache).
 *
 * Both describe a priority that mixes how often and how recently an expert
 * was used with a bonus for experts of shallow layers (whose misses cannot be
 * hidden by cross-layer prefetch); neither publishes a formula, so this is
 * ours, stated exactly. The policy keeps its own access clock T (+1 on every
 * hit or insertion it sees) and, per resident key k, a decayed count n_k and
 * the clock of its last access t_k:
 *   on insertion:  n_k = 1,                                   t_k = T
 *   on a hit:      n_k = n_k * decay^(T - t_k) + 1,           t_k = T
 * At an eviction (T = clock of the latest access), with age a_k = T - t_k
 * and l_k the layer of k (L = layers of the trace):
 *   P(k) = freq * n_k * decay^a_k  +  1 / (1 + a_k)  +  bias * (L-1-l_k) / (L-1)
 * (the last term is 0 when L = 1). The victim is the unprotected resident
 * with the smallest P; ties go to the smaller t_k (t_k is unique).
 * In per-layer scope every key of a cache has the same layer, so the depth
 * term is a constant and lcp reduces to its frequency/recency part. With
 * decay = 1 and freq >= 1 that part orders exactly like lfu (counts are
 * integers and the recency term lies in (0, 1/2] for any key older than the
 * latest access), which the tests use.
 * Parameters: freq (weight of the decayed count, 0..1000, default 1),
 * decay (per access of this cache, 0..1, default 0.95),
 * bias (bonus of the shallowest layer over the deepest, 0..1000, default 1).
 * Cost: O(residents) per eviction (a scan; pow() per resident). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../params.h"
#include "util.h"

typedef struct lcp {
    moe_kset res;
    double *n;      /* n_keys: decayed count as of last[k] */
    uint64_t *last; /* n_keys */
    uint64_t clock;
    double freq, decay, bias;
    moe_policy_env env;
} lcp;

static void lcp_destroy(void *st) {
    lcp *s = st;
    moe_kset_free(&s->res);
    free(s->n);
    free(s->last);
    free(s);
}

/* Parameters (defaults, ranges): create parses a copy; `moesim policies` lists them. */
static const moe_param lcp_params[] = {
    {.key = "freq", .type = MOE_PARAM_DOUBLE, .default_value = "1", .min = 0, .max = 1000, .help = "weight of the decayed access count"},
    {.key = "decay", .type = MOE_PARAM_DOUBLE, .default_value = "0.95", .min = 0, .max = 1, .help = "count decay per access of this cache"},
    {.key = "bias", .type = MOE_PARAM_DOUBLE, .default_value = "1", .min = 0, .max = 1000, .help = "priority bonus of the shallowest layer"},
};

static void *lcp_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                        moe_error *err) {
    moe_param p[sizeof lcp_params / sizeof *lcp_params];
    memcpy(p, lcp_params, sizeof p);
    if (moe_params_parse("lcp", args, p, sizeof p / sizeof *p, canonical, cap, err)) return NULL;
    lcp *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "lcp: out of memory"), NULL;
    size_t nk = env->n_keys ? env->n_keys : 1;
    int bad = moe_kset_init(&s->res, env->n_keys);
    s->n = calloc(nk, sizeof *s->n);
    s->last = calloc(nk, sizeof *s->last);
    if (bad || !s->n || !s->last) {
        lcp_destroy(s);
        return moe_fail(err, "lcp: out of memory"), NULL;
    }
    s->freq = p[0].d;
    s->decay = p[1].d;
    s->bias = p[2].d;
    s->env = *env;
    return s;
}

static void lcp_on_hit(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    lcp *s = st;
    s->clock++;
    s->n[key] = s->n[key] * pow(s->decay, (double)(s->clock - s->last[key])) + 1.0;
    s->last[key] = s->clock;
}

static void lcp_on_insert(void *st, uint32_t key, const moe_access *a) {
    (void)a;
    lcp *s = st;
    s->clock++;
    s->n[key] = 1.0;
    s->last[key] = s->clock;
    moe_kset_add(&s->res, key);
}

static double priority(const lcp *s, uint32_t k) {
    double age = (double)(s->clock - s->last[k]);
    double p = s->freq * s->n[k] * pow(s->decay, age) + 1.0 / (1.0 + age);
    uint32_t L = s->env.n_layers;
    if (L > 1) p += s->bias * (double)(L - 1 - moe_env_layer_of(&s->env, k)) / (double)(L - 1);
    return p;
}

static int64_t lcp_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    (void)a;
    const lcp *s = st;
    int64_t best = -1;
    double bp = 0;
    for (uint32_t i = 0; i < s->res.n; i++) {
        uint32_t k = s->res.keys[i];
        if (moe_cache_protected(c, k)) continue;
        double p = priority(s, k);
        if (best < 0 || p < bp || (p == bp && s->last[k] < s->last[best])) {
            best = k;
            bp = p;
        }
    }
    return best;
}

static void lcp_on_evict(void *st, uint32_t key) { moe_kset_remove(&((lcp *)st)->res, key); }

const moe_policy_ops moe_policy_lcp = {
    .name = "lcp",
    .params = lcp_params,
    .n_params = sizeof lcp_params / sizeof *lcp_params,
    .summary = "layer-depth-biased priority: decayed frequency + recency + shallow-layer bonus",
    .description =
        "Evict the smallest P = freq x n x decay^age + 1/(1 + age) + bias x (L-1-layer)/(L-1), "
        "where n is a decayed access count, age is measured on the policy's own access clock and "
        "L is the number of layers: frequency, recency and a bonus for shallow layers, whose "
        "misses cross-layer prefetch cannot hide. In per-layer scope the layer term is a "
        "constant; with decay=1 it then ranks exactly like lfu.",
    .reference =
        "the layer-depth bias of MLX-Flash's LCP eviction and FATE's shallow-favouring split; "
        "neither publishes a formula, so this one is moesim's",
    .create = lcp_create,
    .on_hit = lcp_on_hit,
    .on_insert = lcp_on_insert,
    .choose_victim = lcp_choose_victim,
    .on_evict = lcp_on_evict,
    .destroy = lcp_destroy,
};
