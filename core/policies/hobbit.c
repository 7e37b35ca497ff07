/* hobbit: HOBBIT's sequence-level multidimensional priority (Tang et al.,
 * "HOBBIT: A Mixed Precision Expert Offloading System for Fast MoE
 * Inference", arXiv 2411.01433).
 *
 * HOBBIT scores cached experts on four dimensions, recency (LRU), frequency
 * (LFU), high-precision use (LHU) and layer distance (FLD), and evicts the
 * lowest combined score. The paper does not pin down the normalisation and
 * weights in a form we could copy, so the formula below is ours, stated
 * exactly; the four weights are parameters.
 *
 * State per resident key k (kept by the policy, forgotten on eviction), with
 * the policy's own access clock T (+1 on every hit or insertion it sees):
 *   last_k = T at k's latest access; cnt_k = accesses since insertion (the
 *   inserting access counts 1); hp_k = those of them that were high-precision.
 * An access is high-precision when some token of the (step, layer) put the
 * expert in HOBBIT's high-precision group: slots of a token in slot (rank)
 * order, c = sum of the gate weights of the slots before it, normalised by
 * the token's total over its slots; high iff c < hi (default 0.6), the same
 * rule as --precision hobbit. This is computed exactly from the trace in the
 * policy env (env.trace, moe_access.step/layer/expert). Without a trace
 * (or for a step outside it, or a key sequence, which has no routing) the
 * policy falls back to moe_access.weight, the
 * largest gate weight w this expert got: high iff w is unknown (NaN) or
 * w >= 1 - hi. With normalised weights that is sufficient (the slots before
 * it sum to at most 1 - w) and, for top-2 routing, exact.
 * Victim at an access of layer lc (the layer being served), L = layers:
 *   R_k = 1 / (1 + T - last_k)                      recency, in (0, 1]
 *   F_k = cnt_k / max_j cnt_j                        frequency, in (0, 1]
 *   H_k = hp_k / max_j hp_j   (0 if every hp_j = 0)  high-precision use
 *   d_k = ((l_k - lc - 1) mod L) + 1                 layers until l_k is served
 *                                                   again: 1 = next layer, L =
 *                                                   the layer being served
 *   D_k = (L - d_k) / (L - 1)   (0 when L = 1)      nearness, in [0, 1]
 *   P_k = recency*R_k + freq*F_k + hp*H_k + dist*D_k
 * (maxima over all resident keys). The victim is the unprotected resident
 * with the smallest P_k; ties go to the smaller last_k (unique).
 * In per-layer scope every key's layer is lc, so D_k = 0 for all: the layer
 * term only acts in global scope.
 * Parameters: recency, freq, hp, dist (weights, 0..1000, default 0.25 each),
 * hi (high-precision cumulative threshold, 0..1, default 0.6).
 * Cost: O(residents) per eviction; O(tokens x k) per access to classify it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../params.h"
#include "util.h"

typedef struct hobbit {
    moe_kset res;
    uint64_t *last, *cnt, *hp; /* n_keys each */
    uint64_t clock;
    double wr, wf, wh, wd, hi;
    moe_policy_env env;
} hobbit;

static void hb_destroy(void *st) {
    hobbit *s = st;
    moe_kset_free(&s->res);
    free(s->last);
    free(s->cnt);
    free(s->hp);
    free(s);
}

/* Parameters (defaults, ranges): create parses a copy; `moesim policies` lists them. */
static const moe_param hb_params[] = {
    {.key = "recency", .type = MOE_PARAM_DOUBLE, .default_value = "0.25", .min = 0, .max = 1000, .help = "weight of the recency term"},
    {.key = "freq", .type = MOE_PARAM_DOUBLE, .default_value = "0.25", .min = 0, .max = 1000, .help = "weight of the frequency term"},
    {.key = "hp", .type = MOE_PARAM_DOUBLE, .default_value = "0.25", .min = 0, .max = 1000, .help = "weight of the high-precision-use term"},
    {.key = "dist", .type = MOE_PARAM_DOUBLE, .default_value = "0.25", .min = 0, .max = 1000, .help = "weight of the layer-nearness term"},
    {.key = "hi", .type = MOE_PARAM_DOUBLE, .default_value = "0.6", .min = 0, .max = 1, .help = "high precision while the earlier slots' weight is below this"},
};

static void *hb_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                       moe_error *err) {
    moe_param p[sizeof hb_params / sizeof *hb_params];
    memcpy(p, hb_params, sizeof p);
    if (moe_params_parse("hobbit", args, p, sizeof p / sizeof *p, canonical, cap, err)) return NULL;
    hobbit *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "hobbit: out of memory"), NULL;
    size_t n = env->n_keys ? env->n_keys : 1;
    int bad = moe_kset_init(&s->res, env->n_keys);
    s->last = calloc(n, sizeof *s->last);
    s->cnt = calloc(n, sizeof *s->cnt);
    s->hp = calloc(n, sizeof *s->hp);
    if (bad || !s->last || !s->cnt || !s->hp) {
        hb_destroy(s);
        return moe_fail(err, "hobbit: out of memory"), NULL;
    }
    s->wr = p[0].d;
    s->wf = p[1].d;
    s->wh = p[2].d;
    s->wd = p[3].d;
    s->hi = p[4].d;
    s->env = *env;
    return s;
}

/* Was this access high-precision for some token of its (step, layer)? */
static int high_precision(const hobbit *s, const moe_access *a) {
    const moe_trace *t = s->env.trace;
    if (!t || !t->experts || a->step >= t->n_steps || a->layer >= t->n_layers) {
        float w = a->weight;
        return isnan(w) || (double)w >= 1.0 - s->hi;
    }
    for (uint64_t tok = t->step_first_token[a->step]; tok < t->step_first_token[a->step + 1]; tok++) {
        size_t r = moe_trace_rec(t, tok, a->layer);
        uint32_t ns = 0;
        double sum = 0;
        for (; ns < t->top_k && t->experts[r + ns] != MOE_NO_EXPERT; ns++)
            if (t->weights && !isnan(t->weights[r + ns])) sum += t->weights[r + ns];
        double c = 0;
        for (uint32_t k = 0; k < ns; k++) {
            if (t->experts[r + k] == a->expert) {
                if (c < s->hi) return 1;
                break;
            }
            float w = t->weights ? t->weights[r + k] : NAN;
            c += sum > 0 && !isnan(w) ? w / sum : 0;
        }
    }
    return 0;
}

static void hb_on_hit(void *st, uint32_t key, const moe_access *a) {
    hobbit *s = st;
    s->last[key] = ++s->clock;
    s->cnt[key]++;
    s->hp[key] += (uint64_t)high_precision(s, a);
}

static void hb_on_insert(void *st, uint32_t key, const moe_access *a) {
    hobbit *s = st;
    s->last[key] = ++s->clock;
    s->cnt[key] = 1;
    s->hp[key] = (uint64_t)high_precision(s, a);
    moe_kset_add(&s->res, key);
}

static int64_t hb_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    const hobbit *s = st;
    uint64_t max_cnt = 1, max_hp = 0;
    for (uint32_t i = 0; i < s->res.n; i++) {
        uint32_t k = s->res.keys[i];
        if (s->cnt[k] > max_cnt) max_cnt = s->cnt[k];
        if (s->hp[k] > max_hp) max_hp = s->hp[k];
    }
    const uint32_t L = s->env.n_layers;
    int64_t best = -1;
    double bp = 0;
    for (uint32_t i = 0; i < s->res.n; i++) {
        uint32_t k = s->res.keys[i];
        if (moe_cache_protected(c, k)) continue;
        double p = s->wr / (1.0 + (double)(s->clock - s->last[k])) +
                   s->wf * (double)s->cnt[k] / (double)max_cnt +
                   (max_hp ? s->wh * (double)s->hp[k] / (double)max_hp : 0.0);
        if (L > 1) {
            uint32_t lk = moe_env_layer_of(&s->env, k);
            uint32_t d = (lk + 2 * L - a->layer - 1) % L + 1;
            p += s->wd * (double)(L - d) / (double)(L - 1);
        }
        if (best < 0 || p < bp || (p == bp && s->last[k] < s->last[best])) {
            best = k;
            bp = p;
        }
    }
    return best;
}

static void hb_on_evict(void *st, uint32_t key) { moe_kset_remove(&((hobbit *)st)->res, key); }

const moe_policy_ops moe_policy_hobbit = {
    .name = "hobbit",
    .params = hb_params,
    .n_params = sizeof hb_params / sizeof *hb_params,
    .summary = "HOBBIT: weighted recency + frequency + high-precision use + layer nearness",
    .description =
        "Evict the smallest P = recency/(1+age) + freq x cnt/max cnt + hp x hp_cnt/max hp_cnt + "
        "dist x (L-d)/(L-1): recency, frequency since insertion, how often the expert was used at "
        "high precision (some token's earlier slots' normalised gate weight below hi, HOBBIT's "
        "precision rule) and nearness d = layers until the expert's layer is served again (global "
        "scope only; a constant per layer). HOBBIT names the four terms; the normalisation and "
        "weights are moesim's.",
    .reference =
        "Tang et al., HOBBIT: A Mixed Precision Expert Offloading System for Fast MoE Inference, "
        "arXiv 2411.01433",
    .create = hb_create,
    .on_hit = hb_on_hit,
    .on_insert = hb_on_insert,
    .choose_victim = hb_choose_victim,
    .on_evict = hb_on_evict,
    .destroy = hb_destroy,
};
