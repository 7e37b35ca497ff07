/* trace_fit.c: Nelder-Mead calibration of the generator (see trace_fit.h). */
#include "trace_fit.h"

#include <gsl/gsl_multimin.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lrc.h"
#include "mrc.h"

#define ZIPF_MAX 4.0
#define PROB_MAX 0.98
#define TOPIC_MIN 2.0
#define TOPIC_MAX 100000.0

void moe_fit_opts_defaults(moe_fit_opts *o) {
    memset(o, 0, sizeof *o);
    o->fit_seqs = 20;
    o->seq_len = 512;
    o->prefill = 32;
    o->max_iter = 120;
    o->seed = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* LRU hit rates of moe-lrc mode at every capacity of caps[] in one pass.
 * moe-lrc's LRU decides a token's hits before inserting its keys, and
 * inserting them (in order, no protection) leaves the cache = the top C
 * keys of the LRU stack updated token by token. So an access is a hit at
 * capacity C iff its stack distance measured at the START of its token is
 * < C (Mattson), and a chunk's first access of a key is a hit iff the
 * number u of distinct keys accessed before it in the chunk is < C (the
 * code's depth rule, core/lrc.h). Checked against moe_lrc_cache_run in
 * tests/unit/test_trace_fit.c; several times faster than one heap-based
 * run per capacity. */
static int lru_one_pass(const moe_trace *t, uint32_t seq_len, const uint32_t *caps, uint32_t n, double *out,
                        moe_error *err) {
    const uint32_t L = t->n_layers, E = t->n_experts, K = t->top_k, n_keys = L * E;
    moe_sd sd;
    if (moe_sd_init(&sd, n_keys, err)) return -1;
    uint32_t *keys = malloc((size_t)L * K * sizeof *keys), *dist = malloc((size_t)L * K * sizeof *dist);
    uint64_t *hits = calloc(n, sizeof *hits);
    if (!keys || !dist || !hits) {
        free(keys), free(dist), free(hits), moe_sd_free(&sd);
        return moe_fail(err, "out of memory");
    }
    uint64_t acc = 0, uni = 0, begin = 0;
    for (uint64_t tok = 0; tok < t->n_tokens; tok++) {
        /* chunk boundaries exactly as core/lrc.c cuts them */
        if (tok == 0 || t->token_seq[tok] != t->token_seq[tok - 1] || (seq_len && tok - begin == seq_len)) {
            moe_sd_reset(&sd);
            uni = 0, begin = tok;
        }
        uint32_t nk = 0;
        for (uint32_t l = 0; l < L; l++) {
            size_t r = moe_trace_rec(t, tok, l);
            for (uint32_t s = 0; s < K && t->experts[r + s] != MOE_NO_EXPERT; s++) keys[nk++] = l * E + t->experts[r + s];
        }
        for (uint32_t i = 0; i < nk; i++) dist[i] = moe_sd_query(&sd, keys[i]);
        for (uint32_t i = 0; i < nk; i++) {
            uint64_t d = dist[i];
            if (d == MOE_SD_INF) d = uni++;
            for (uint32_t j = 0; j < n; j++) hits[j] += d < caps[j];
        }
        acc += nk;
        moe_sd_reserve(&sd, nk);
        for (uint32_t i = 0; i < nk; i++) moe_sd_touch(&sd, keys[i]);
    }
    for (uint32_t j = 0; j < n; j++) out[j] = acc ? (double)hits[j] / (double)acc : NAN;
    free(keys), free(dist), free(hits), moe_sd_free(&sd);
    return 0;
}

static uint32_t rho_cap(const moe_trace *t, double rho) {
    /* the capacity rule of moe-lrc: floor(rho * L * k); the tiny epsilon
     * keeps an exact product such as 0.5 * 32 * 2 from rounding down */
    return (uint32_t)floor(rho * t->n_layers * t->top_k + 1e-9);
}

int moe_fit_curves(const moe_trace *t, uint32_t seq_len, const double *rho, uint32_t n_rho, double *lru,
                   double *belady, moe_error *err) {
    uint32_t caps[MOE_FIT_MAX_RHO];
    if (n_rho > MOE_FIT_MAX_RHO) return moe_fail(err, "at most %d rho values", MOE_FIT_MAX_RHO);
    for (uint32_t i = 0; i < n_rho; i++) caps[i] = rho_cap(t, rho[i]);
    if (lru && lru_one_pass(t, seq_len, caps, n_rho, lru, err)) return -1;
    for (uint32_t i = 0; belady && i < n_rho; i++) {
        uint64_t h = 0, a = 0;
        if (moe_lrc_cache_run(t, seq_len, t->n_layers, MOE_LRC_BELADY, 0, caps[i], &h, &a, err)) return -1;
        belady[i] = a ? (double)h / (double)a : NAN;
    }
    return 0;
}

void moe_fit_params(const moe_fit_target *tg, const moe_fit_opts *o, uint32_t n_seqs, double zipf, double locality,
                    double cross_layer, uint64_t topic_every, moe_gen_params *p) {
    moe_gen_defaults(p);
    p->layers = tg->layers, p->experts = tg->experts, p->top_k = tg->top_k;
    p->seq_len = o->seq_len;
    p->prefill = o->prefill < o->seq_len ? o->prefill : o->seq_len;
    /* one prefill step then one decode step per remaining token */
    p->steps = (uint64_t)n_seqs * (1 + o->seq_len - p->prefill);
    p->zipf_s = zipf, p->locality = locality, p->cross_layer = cross_layer, p->topic_every = topic_every;
    p->with_weights = 0; /* the curves do not use weights; generation is faster */
    p->seed = o->seed;
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double logit(double v) { return log(v / (1 - v)); }

typedef struct fit_ctx {
    const moe_fit_target *tg;
    const moe_fit_opts *o;
    moe_fit_result *best;
    uint32_t evals;
    int failed;
    moe_error *err;
} fit_ctx;

static void decode(const gsl_vector *x, double *z, double *loc, double *cl, uint64_t *te) {
    *z = ZIPF_MAX * sigmoid(gsl_vector_get(x, 0));
    *loc = PROB_MAX * sigmoid(gsl_vector_get(x, 1));
    *cl = PROB_MAX * sigmoid(gsl_vector_get(x, 2));
    double t = exp(gsl_vector_get(x, 3));
    t = t < TOPIC_MIN ? TOPIC_MIN : t > TOPIC_MAX ? TOPIC_MAX : t;
    *te = (uint64_t)llround(t);
}

static double objective(const gsl_vector *x, void *vctx) {
    fit_ctx *c = vctx;
    if (c->failed) return GSL_POSINF;
    double z, loc, cl;
    uint64_t te;
    decode(x, &z, &loc, &cl, &te);
    moe_gen_params p;
    moe_fit_params(c->tg, c->o, c->o->fit_seqs, z, loc, cl, te, &p);
    moe_trace *t = moe_trace_generate(&p, c->err);
    double lru[MOE_FIT_MAX_RHO], bel[MOE_FIT_MAX_RHO];
    if (!t || moe_fit_curves(t, c->o->seq_len, c->tg->rho, c->tg->n_rho, lru, bel, c->err)) {
        moe_trace_free(t);
        c->failed = 1;
        return GSL_POSINF;
    }
    moe_trace_free(t);
    c->evals++;
    double sse = 0;
    for (uint32_t i = 0; i < c->tg->n_rho; i++) {
        if (!isnan(c->tg->lru[i])) sse += (lru[i] - c->tg->lru[i]) * (lru[i] - c->tg->lru[i]);
        if (!isnan(c->tg->belady[i])) sse += (bel[i] - c->tg->belady[i]) * (bel[i] - c->tg->belady[i]);
    }
    /* strict < keeps the first of equal points: deterministic */
    if (c->evals == 1 || sse < c->best->sse) {
        c->best->params = p;
        c->best->sse = sse;
        memcpy(c->best->lru, lru, sizeof lru);
        memcpy(c->best->belady, bel, sizeof bel);
    }
    return sse;
}

int moe_trace_fit(const moe_fit_target *tg, const moe_fit_opts *o, moe_fit_result *res, moe_error *err) {
    memset(res, 0, sizeof *res);
    if (tg->n_rho == 0 || tg->n_rho > MOE_FIT_MAX_RHO)
        return moe_fail(err, "need 1..%d rho values, got %u", MOE_FIT_MAX_RHO, tg->n_rho);
    int any = 0;
    for (uint32_t i = 0; i < tg->n_rho; i++) {
        if (!(tg->rho[i] > 0)) return moe_fail(err, "rho %g must be positive", tg->rho[i]);
        for (int p = 0; p < 2; p++) {
            double v = p ? tg->belady[i] : tg->lru[i];
            if (isnan(v)) continue;
            if (!(v >= 0 && v <= 1)) return moe_fail(err, "target hit rate %g at rho %g is not in 0..1", v, tg->rho[i]);
            any = 1;
        }
    }
    if (!any) return moe_fail(err, "no target hit rates given");
    if (o->fit_seqs == 0 || o->seq_len == 0) return moe_fail(err, "fitting trace needs at least one sequence and token");
    /* geometry checks of the generator, with its messages */
    moe_gen_params chk;
    moe_fit_params(tg, o, 1, 1, 0, 0, 0, &chk);
    if (moe_gen_check(&chk, err)) return -1;

    double t0 = now_s();
    fit_ctx c = {.tg = tg, .o = o, .best = res, .err = err};
    gsl_multimin_function f = {.f = objective, .n = 4, .params = &c};
    gsl_vector *x = gsl_vector_alloc(4), *step = gsl_vector_alloc(4);
    gsl_multimin_fminimizer *m = gsl_multimin_fminimizer_alloc(gsl_multimin_fminimizer_nmsimplex2, 4);
    if (!x || !step || !m) {
        gsl_vector_free(x), gsl_vector_free(step), gsl_multimin_fminimizer_free(m);
        return moe_fail(err, "out of memory");
    }
    /* start at the generator's defaults: Zipf 1, locality 0.3, cross-layer
     * 0.3, a topic every 64 tokens */
    gsl_vector_set(x, 0, logit(1.0 / ZIPF_MAX));
    gsl_vector_set(x, 1, logit(0.3 / PROB_MAX));
    gsl_vector_set(x, 2, logit(0.3 / PROB_MAX));
    gsl_vector_set(x, 3, log(64.0));
    gsl_vector_set_all(step, 1.0);
    uint32_t iter = 0;
    for (int round = 0; round < 2 && !c.failed; round++) {
        uint32_t limit = round == 0 ? (o->max_iter * 2 + 2) / 3 : o->max_iter;
        gsl_multimin_fminimizer_set(m, &f, x, step);
        while (iter < limit && !c.failed) {
            iter++;
            if (gsl_multimin_fminimizer_iterate(m)) break;
            double size = gsl_multimin_fminimizer_size(m);
            if (o->verbose) {
                const moe_gen_params *b = &res->params;
                fprintf(stderr, "fit: iter %3u evals %4u  sse %.6f  zipf %.3f locality %.3f cross %.3f topic %llu\n",
                        iter, c.evals, res->sse, b->zipf_s, b->locality, b->cross_layer,
                        (unsigned long long)b->topic_every);
            }
            if (gsl_multimin_test_size(size, 1e-3) == GSL_SUCCESS) break;
        }
        /* restart from the best point, with a smaller simplex */
        gsl_vector_memcpy(x, gsl_multimin_fminimizer_x(m));
        gsl_vector_set_all(step, 0.3);
    }
    gsl_multimin_fminimizer_free(m);
    gsl_vector_free(x), gsl_vector_free(step);
    if (c.failed) return -1;
    res->iterations = iter;
    res->evaluations = c.evals;
    res->seconds = now_s() - t0;
    return 0;
}
