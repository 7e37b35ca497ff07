/* learned: a FlashMoE-style recency/frequency scorer fitted by least squares
 * to Belady's reuse distance on a training trace, then used for eviction.
 *
 * Features of a key k at time now (time = the replay's access ordinal,
 * moe_access.time, counted over all layers in both scopes):
 *   x1 = log(1 + age),   age = now - time of k's last access
 *   x2 = log(1 + cnt),   cnt = accesses of k (since insertion when applied)
 *   x3 = dec,            decayed count: dec = dec * decay^(t - t_last) + 1 at
 *                        each access, read as dec * decay^age at now
 *   x4 = layer depth l / (L - 1)   (global scope with L > 1 only; in
 *                        per-layer scope it is a constant and is left out)
 * Model: log(1 + reuse) = b0 + b1 x1 + b2 x2 + b3 x3 [+ b4 x4], where reuse
 * = next_use - now, Belady's forward distance to k's next access (0 for the
 * key accessed at now itself, hence the 1 +); a key never
 * accessed again in the training trace gets reuse = (accesses left) +
 * (accesses in the training trace). Fitted with gsl_multifit_linear in
 * create (deterministic: same trace, same coefficients).
 * Training samples: the training trace is walked in replay order (steps,
 * layers ascending, a (step, layer)'s unique experts ascending); every S-th
 * access, every key of this cache's key space seen so far is a sample with
 * its features at that moment and its true reuse distance; S is chosen so
 * that at most 20000 samples are taken. Counts in training run from a key's
 * first access (no residency, no cold restarts).
 * Training trace (train=): "oracle-half" (default) = the first half of the
 * replayed trace's steps (the policy then learns from the very trace it is
 * scored on: oracle-ish, and the canonical name says so); or a path to
 * another trace of the same geometry. Fewer samples than coefficients (or a
 * failed fit) leaves every coefficient 0, and the policy is then lru.
 * Victim: the unprotected resident with the largest predicted log reuse;
 * ties go to the least recently used (smaller last access time).
 * Parameters: train (oracle-half | PATH), decay (0..1, default 0.99).
 * Cost: create walks the training trace once per cache (per layer in
 * per-layer scope, and again at every cold restart, since moe_cache_reset
 * recreates the policy); O(residents) per eviction. */
#include <gsl/gsl_multifit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../cache.h"
#include "../params.h"
#include "util.h"

#define LEARNED_MAX_SAMPLES 20000
#define LEARNED_NCOEF 5

typedef struct learned {
    moe_kset res;
    uint64_t *last, *cnt; /* n_keys each */
    double *dec;          /* n_keys: decayed count as of last[k] */
    double decay;
    double b[LEARNED_NCOEF];
    int use_depth;
    moe_policy_env env;
} learned;

static void ln_destroy(void *st) {
    learned *s = st;
    moe_kset_free(&s->res);
    free(s->last);
    free(s->cnt);
    free(s->dec);
    free(s);
}

static double depth_of(const learned *s, uint32_t key) {
    uint32_t L = s->env.n_layers;
    return L > 1 ? (double)moe_env_layer_of(&s->env, key) / (double)(L - 1) : 0.0;
}

/* Fill features x[0..p) (x[0] = 1). */
static int features(const learned *s, uint32_t key, uint64_t age, uint64_t cnt, double dec, double *x) {
    x[0] = 1.0;
    x[1] = log1p((double)age);
    x[2] = log1p((double)cnt);
    x[3] = dec * pow(s->decay, (double)age);
    if (!s->use_depth) return 4;
    x[4] = depth_of(s, key);
    return 5;
}

/* Replay-order access list of steps [0, n_steps) of t: keys[] (this cache's
 * key or UINT32_MAX for other layers' accesses in per-layer scope). */
static uint32_t *access_list(const learned *s, const moe_trace *t, uint64_t n_steps, uint64_t *n_out) {
    uint32_t E = t->n_experts;
    size_t cap = 1024, n = 0;
    uint32_t *keys = malloc(cap * sizeof *keys);
    uint32_t *stamp = calloc(E ? E : 1, sizeof *stamp), cur = 0;
    if (!keys || !stamp) { free(keys); free(stamp); return NULL; }
    for (uint64_t st = 0; st < n_steps; st++)
        for (uint32_t l = 0; l < t->n_layers; l++) {
            cur++;
            for (uint64_t tok = t->step_first_token[st]; tok < t->step_first_token[st + 1]; tok++) {
                size_t r = moe_trace_rec(t, tok, l);
                for (uint32_t k = 0; k < t->top_k && t->experts[r + k] != MOE_NO_EXPERT; k++)
                    stamp[t->experts[r + k]] = cur;
            }
            for (uint32_t e = 0; e < E; e++) {
                if (stamp[e] != cur) continue;
                if (n == cap) {
                    uint32_t *k2 = realloc(keys, (cap *= 2) * sizeof *keys);
                    if (!k2) { free(keys); free(stamp); return NULL; }
                    keys = k2;
                }
                if (s->env.fixed_layer >= 0) keys[n++] = (int32_t)l == s->env.fixed_layer ? e : UINT32_MAX;
                else keys[n++] = l * E + e;
            }
        }
    free(stamp);
    *n_out = n;
    return keys;
}

/* Fit s->b from steps [0, n_steps) of t. Returns 0 (also when there is too
 * little data: b stays 0), -1 on allocation failure. */
static int fit(learned *s, const moe_trace *t, uint64_t n_steps) {
    uint64_t N;
    uint32_t *keys = access_list(s, t, n_steps, &N);
    if (!keys) return -1;
    uint32_t nk = s->env.n_keys;
    size_t nn = nk ? nk : 1;
    uint64_t *next = malloc((N ? N : 1) * sizeof *next), *after = malloc(nn * sizeof *after);
    uint64_t *last = malloc(nn * sizeof *last), *cnt = calloc(nn, sizeof *cnt);
    uint64_t *next_of = malloc(nn * sizeof *next_of);
    double *dec = calloc(nn, sizeof *dec);
    gsl_matrix *X = NULL;
    gsl_vector *y = NULL;
    int rc = -1;
    if (!next || !after || !last || !cnt || !next_of || !dec) goto out;
    for (uint32_t k = 0; k < nk; k++) after[k] = MOE_NEVER, last[k] = MOE_NEVER;
    for (uint64_t i = N; i-- > 0;)
        if (keys[i] != UINT32_MAX) {
            next[i] = after[keys[i]];
            after[keys[i]] = i;
        }
    uint64_t stride = ((uint64_t)N * nk + LEARNED_MAX_SAMPLES - 1) / LEARNED_MAX_SAMPLES;
    if (stride < 1) stride = 1;
    size_t cap_rows = (size_t)((N + stride - 1) / stride) * nk;
    if (cap_rows > LEARNED_MAX_SAMPLES + (size_t)nk) cap_rows = LEARNED_MAX_SAMPLES + nk;
    const int p = s->use_depth ? 5 : 4;
    double *xs = malloc((cap_rows ? cap_rows : 1) * (size_t)p * sizeof *xs);
    double *ys = malloc((cap_rows ? cap_rows : 1) * sizeof *ys);
    size_t rows = 0;
    uint32_t seen_n = 0;
    uint32_t *seen = malloc(nn * sizeof *seen);
    if (!xs || !ys || !seen) { free(xs); free(ys); free(seen); goto out; }
    for (uint64_t i = 0; i < N; i++) {
        if (i % stride == 0)
            for (uint32_t j = 0; j < seen_n && rows < cap_rows; j++) {
                uint32_t k = seen[j];
                double x[LEARNED_NCOEF];
                features(s, k, i - last[k], cnt[k], dec[k], x);
                uint64_t reuse = next_of[k] == MOE_NEVER ? (N - i) + N : next_of[k] - i;
                memcpy(xs + rows * (size_t)p, x, (size_t)p * sizeof *x);
                ys[rows++] = log1p((double)reuse);
            }
        uint32_t k = keys[i];
        if (k == UINT32_MAX) continue;
        if (last[k] == MOE_NEVER) {
            seen[seen_n++] = k;
            dec[k] = 1.0;
        } else {
            dec[k] = dec[k] * pow(s->decay, (double)(i - last[k])) + 1.0;
        }
        cnt[k]++;
        last[k] = i;
        next_of[k] = next[i];
    }
    free(seen);
    rc = 0;
    if (rows > (size_t)p) {
        X = gsl_matrix_alloc(rows, (size_t)p);
        y = gsl_vector_alloc(rows);
        gsl_vector *c = gsl_vector_alloc((size_t)p);
        gsl_matrix *cov = gsl_matrix_alloc((size_t)p, (size_t)p);
        gsl_multifit_linear_workspace *w = gsl_multifit_linear_alloc(rows, (size_t)p);
        if (X && y && c && cov && w) {
            for (size_t r = 0; r < rows; r++) {
                for (int j = 0; j < p; j++) gsl_matrix_set(X, r, (size_t)j, xs[r * (size_t)p + (size_t)j]);
                gsl_vector_set(y, r, ys[r]);
            }
            double chisq;
            gsl_error_handler_t *old = gsl_set_error_handler_off();
            if (gsl_multifit_linear(X, y, c, cov, &chisq, w) == 0) {
                int ok = 1;
                for (int j = 0; j < p; j++) ok &= isfinite(gsl_vector_get(c, (size_t)j));
                if (ok)
                    for (int j = 0; j < p; j++) s->b[j] = gsl_vector_get(c, (size_t)j);
            }
            gsl_set_error_handler(old);
        } else {
            rc = -1;
        }
        gsl_vector_free(c);
        gsl_matrix_free(cov);
        if (w) gsl_multifit_linear_free(w);
    }
    free(xs);
    free(ys);
out:
    gsl_matrix_free(X);
    gsl_vector_free(y);
    free(keys); free(next); free(after); free(last); free(cnt); free(next_of); free(dec);
    return rc;
}

/* Parameters (defaults, ranges): create parses a copy; `moesim policies` lists them. */
static const moe_param ln_params[] = {
    {.key = "train", .type = MOE_PARAM_STRING, .default_value = "oracle-half",
     .help = "training trace: oracle-half (first half of the replayed trace) or a path"},
    {.key = "decay", .type = MOE_PARAM_DOUBLE, .default_value = "0.99", .min = 0, .max = 1,
     .help = "decay of the decayed count per access (replay ordinal)"},
};

static void *ln_create(const char *args, const moe_policy_env *env, char *canonical, size_t cap,
                       moe_error *err) {
    moe_param p[sizeof ln_params / sizeof *ln_params];
    memcpy(p, ln_params, sizeof p);
    if (moe_params_parse("learned", args, p, sizeof p / sizeof *p, canonical, cap, err)) return NULL;
    learned *s = calloc(1, sizeof *s);
    if (!s) return moe_fail(err, "learned: out of memory"), NULL;
    size_t n = env->n_keys ? env->n_keys : 1;
    int bad = moe_kset_init(&s->res, env->n_keys);
    s->last = calloc(n, sizeof *s->last);
    s->cnt = calloc(n, sizeof *s->cnt);
    s->dec = calloc(n, sizeof *s->dec);
    if (bad || !s->last || !s->cnt || !s->dec) {
        ln_destroy(s);
        return moe_fail(err, "learned: out of memory"), NULL;
    }
    s->env = *env;
    s->decay = p[1].d;
    s->use_depth = env->fixed_layer < 0 && env->n_layers > 1;
    int rc = 0;
    if (!strcmp(p[0].s, "oracle-half")) {
        const moe_trace *t = env->trace;
        if (t && t->n_layers == env->n_layers && t->n_experts == env->n_experts)
            rc = fit(s, t, t->n_steps >= 2 ? t->n_steps / 2 : t->n_steps);
    } else {
        moe_trace *t = moe_trace_load(p[0].s, err);
        if (!t) {
            ln_destroy(s);
            return NULL;
        }
        if (t->n_layers != env->n_layers || t->n_experts != env->n_experts) {
            moe_fail(err, "learned: training trace %s has %u layers x %u experts, the cache %u x %u", p[0].s,
                     t->n_layers, t->n_experts, env->n_layers, env->n_experts);
            moe_trace_free(t);
            ln_destroy(s);
            return NULL;
        }
        rc = fit(s, t, t->n_steps);
        moe_trace_free(t);
    }
    if (rc) {
        ln_destroy(s);
        return moe_fail(err, "learned: out of memory"), NULL;
    }
    return s;
}

static void ln_on_hit(void *st, uint32_t key, const moe_access *a) {
    learned *s = st;
    s->dec[key] = s->dec[key] * pow(s->decay, (double)(a->time - s->last[key])) + 1.0;
    s->cnt[key]++;
    s->last[key] = a->time;
}

static void ln_on_insert(void *st, uint32_t key, const moe_access *a) {
    learned *s = st;
    s->dec[key] = 1.0;
    s->cnt[key] = 1;
    s->last[key] = a->time;
    moe_kset_add(&s->res, key);
}

static int64_t ln_choose_victim(void *st, const moe_cache *c, const moe_access *a) {
    const learned *s = st;
    int64_t best = -1;
    double bp = 0;
    for (uint32_t i = 0; i < s->res.n; i++) {
        uint32_t k = s->res.keys[i];
        if (moe_cache_protected(c, k)) continue;
        double x[LEARNED_NCOEF];
        uint64_t age = a->time >= s->last[k] ? a->time - s->last[k] : 0;
        int p = features(s, k, age, s->cnt[k], s->dec[k], x);
        double v = 0;
        for (int j = 0; j < p; j++) v += s->b[j] * x[j];
        if (best < 0 || v > bp || (v == bp && s->last[k] < s->last[best])) {
            best = k;
            bp = v;
        }
    }
    return best;
}

static void ln_on_evict(void *st, uint32_t key) { moe_kset_remove(&((learned *)st)->res, key); }

/* Cold restart: the fitted coefficients stay, the resident set and the
 * per-key history go back to what create leaves. */
static void ln_reset(void *st) {
    learned *s = st;
    size_t n = s->env.n_keys ? s->env.n_keys : 1;
    s->res.n = 0;
    memset(s->last, 0, n * sizeof *s->last);
    memset(s->cnt, 0, n * sizeof *s->cnt);
    memset(s->dec, 0, n * sizeof *s->dec);
}

const moe_policy_ops moe_policy_learned = {
    .name = "learned",
    .params = ln_params,
    .n_params = sizeof ln_params / sizeof *ln_params,
    .flags = MOE_POLICY_NEEDS_ROUTING,
    .summary = "least squares (GSL) on recency/frequency features predicting Belady reuse; evict the largest",
    .description =
        "Fit, by least squares (GSL), log(1 + Belady reuse distance) on log(1 + age), log(1 + "
        "count) and a decayed count (plus layer depth in global scope) over a training trace, "
        "then evict the expert with the largest predicted reuse distance, ties to the least "
        "recently used. train=oracle-half trains on the first half of the replayed trace (an "
        "oracle: it learns from the trace it is scored on); train=PATH on another trace of the "
        "same geometry.",
    .reference =
        "FlashMoE-style learned eviction; the features and the fit are moesim's",
    .oracle_when = "train=oracle-half",
    .create = ln_create,
    .on_hit = ln_on_hit,
    .on_insert = ln_on_insert,
    .choose_victim = ln_choose_victim,
    .on_evict = ln_on_evict,
    .reset = ln_reset,
    .destroy = ln_destroy,
};
