/* trace_gen.c: the synthetic trace generator (model in trace_gen.h). */
#include "trace_gen.h"

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void moe_gen_defaults(moe_gen_params *p) {
    memset(p, 0, sizeof *p);
    p->steps = 1000;
    p->layers = 32, p->experts = 8, p->top_k = 2;
    p->zipf_s = 1.0;
    p->locality = 0.3;
    p->cross_layer = 0.3;
    p->topic_every = 64;
    p->seq_len = 256, p->prefill = 32;
    p->lookahead = 0, p->lookahead_acc = 0.8;
    p->alpha = 1.0;
    p->with_weights = 1;
    p->seed = 1;
    snprintf(p->model, sizeof p->model, "synthetic");
}

static int prob_ok(double x) { return x >= 0 && x <= 1; }

int moe_gen_check(const moe_gen_params *p, moe_error *err) {
    if (p->steps == 0) return moe_fail(err, "--steps must be at least 1");
    if (p->layers == 0 || p->layers > 4096) return moe_fail(err, "--layers %u out of range 1..4096", p->layers);
    if (p->experts == 0 || p->experts > MOE_MAX_EXPERTS)
        return moe_fail(err, "--experts %u out of range 1..%u", p->experts, MOE_MAX_EXPERTS);
    if (p->top_k == 0 || p->top_k > p->experts || p->top_k > 64)
        return moe_fail(err, "--top-k %u out of range 1..min(experts, 64)", p->top_k);
    if (!(p->zipf_s >= 0 && p->zipf_s <= 10)) return moe_fail(err, "--zipf %g out of range 0..10", p->zipf_s);
    if (!prob_ok(p->locality)) return moe_fail(err, "--locality %g is not a probability", p->locality);
    if (!prob_ok(p->cross_layer)) return moe_fail(err, "--cross-layer %g is not a probability", p->cross_layer);
    if (!prob_ok(p->lookahead_acc)) return moe_fail(err, "--lookahead-acc %g is not a probability", p->lookahead_acc);
    if (p->seq_len == 0) return moe_fail(err, "--seq-len must be at least 1");
    if (p->prefill == 0) return moe_fail(err, "--prefill must be at least 1");
    if (p->lookahead > 16) return moe_fail(err, "--lookahead %u out of range 0..16", p->lookahead);
    if (!(p->alpha > 0 && p->alpha <= 1e6)) return moe_fail(err, "--alpha %g must be positive", p->alpha);
    return 0;
}

void moe_gen_describe(const moe_gen_params *p, char *buf, size_t n) {
    snprintf(buf, n,
             "generator=moesim trace gen\nsteps=%llu\nlayers=%u\nexperts=%u\ntop_k=%u\nzipf=%.15g\nlocality=%.15g\n"
             "cross_layer=%.15g\ntopic_every=%llu\nseq_len=%u\nprefill=%u\nlookahead=%u\nlookahead_acc=%.15g\n"
             "alpha=%.15g\nweights=%d\nseed=%llu\n",
             (unsigned long long)p->steps, p->layers, p->experts, p->top_k, p->zipf_s, p->locality, p->cross_layer,
             (unsigned long long)p->topic_every, p->seq_len, p->prefill, p->lookahead, p->lookahead_acc, p->alpha,
             p->with_weights, (unsigned long long)p->seed);
}

typedef struct gen {
    const moe_gen_params *p;
    gsl_rng *r;
    double *cdf;        /* Zipf CDF over ranks, E entries */
    uint32_t *guide;    /* n_guide entries, see zipf_rank_u */
    uint32_t n_guide;
    uint16_t *perm;     /* layers x E: rank -> expert (current topic) */
    uint16_t *xmap;     /* layers x E: expert at l-1 -> expert at l */
    uint16_t *prev;     /* layers x top_k: previous token's experts */
    uint16_t *cur;      /* layers x top_k: this token */
    int have_prev;
} gen;

/* Inverse-CDF Zipf rank of a uniform u with a guide table: guide[i] is the
 * first rank whose CDF exceeds i / n_guide, so the walk from there takes
 * about one step (exact, and without the unpredictable branches of a
 * binary search; generation speed matters for make bench). */
static uint32_t zipf_rank_u(const gen *g, double u) {
    uint32_t r = g->guide[(size_t)(u * g->n_guide)];
    while (g->cdf[r] <= u) r++;
    return r;
}

static uint32_t zipf_rank(gen *g) { return zipf_rank_u(g, gsl_rng_uniform(g->r)); }

static void new_topic(gen *g) {
    uint32_t E = g->p->experts;
    for (uint32_t l = 0; l < g->p->layers; l++) gsl_ran_shuffle(g->r, g->perm + (size_t)l * E, E, sizeof(uint16_t));
}

static int taken(const uint16_t *c, uint32_t n, uint16_t e) {
    for (uint32_t i = 0; i < n; i++)
        if (c[i] == e) return 1;
    return 0;
}

/* Choose this token's experts, all layers, into g->cur. */
static void draw_token(gen *g) {
    const moe_gen_params *p = g->p;
    uint32_t K = p->top_k, E = p->experts;
    for (uint32_t l = 0; l < p->layers; l++) {
        uint16_t *c = g->cur + (size_t)l * K;
        const uint16_t *perm = g->perm + (size_t)l * E;
        /* One uniform decides the source and, rescaled to [0,1) within
         * the chosen branch, also picks the expert: half the RNG calls of
         * drawing them separately (generation speed matters for make bench). */
        double pl = g->have_prev ? p->locality : 0, pc = l > 0 ? (1 - pl) * p->cross_layer : 0;
        for (uint32_t s = 0; s < K; s++) {
            uint16_t e;
            double u = gsl_rng_uniform(g->r);
            if (u < pl) {
                uint32_t i = (uint32_t)(u / pl * K);
                e = g->prev[(size_t)l * K + (i < K ? i : K - 1)];
            } else if (u < pl + pc) {
                e = g->xmap[(size_t)l * E + g->cur[(size_t)(l - 1) * K + s]];
            } else {
                e = perm[zipf_rank_u(g, (u - pl - pc) / (1 - pl - pc))];
            }
            for (int tries = 0; taken(c, s, e) && tries < 16; tries++) e = perm[zipf_rank(g)];
            for (uint32_t r = 0; taken(c, s, e); r++) e = perm[r]; /* K <= E, so this ends */
            c[s] = e;
        }
    }
}

static void sort_desc(double *x, uint32_t n) { /* insertion sort; n is tiny */
    for (uint32_t s = 1; s < n; s++)
        for (uint32_t j = s; j > 0 && x[j] > x[j - 1]; j--) {
            double t = x[j];
            x[j] = x[j - 1], x[j - 1] = t;
        }
}

/* Dirichlet(alpha, ..., alpha) over the top_k slots, sorted descending. For
 * alpha = 1 the exact draw is the spacings of K-1 sorted uniforms (no
 * logarithms, K-1 uniforms); other alphas normalise Gamma(alpha) draws. */
static void draw_weights(gen *g, float *w) {
    uint32_t K = g->p->top_k;
    double x[65];
    if (g->p->alpha == 1.0) {
        for (uint32_t s = 0; s + 1 < K; s++) x[s] = gsl_rng_uniform(g->r);
        sort_desc(x, K - 1);
        double hi = 1.0;
        for (uint32_t s = 0; s + 1 < K; s++) {
            double lo = x[s];
            x[s] = hi - lo, hi = lo;
        }
        x[K - 1] = hi;
        sort_desc(x, K);
        for (uint32_t s = 0; s < K; s++) w[s] = (float)x[s];
        return;
    }
    double sum = 0;
    for (uint32_t s = 0; s < K; s++) sum += x[s] = gsl_ran_gamma(g->r, g->p->alpha, 1.0);
    sort_desc(x, K);
    for (uint32_t s = 0; s < K; s++) w[s] = sum > 0 ? (float)(x[s] / sum) : 1.0f / (float)K;
}

static int emit_token(gen *g, moe_trace_builder *b, int64_t tok, moe_error *err) {
    const moe_gen_params *p = g->p;
    uint32_t K = p->top_k;
    float w[64];
    for (uint32_t l = 0; l < p->layers; l++) {
        if (p->with_weights) draw_weights(g, w);
        for (uint32_t s = 0; s < K; s++)
            if (moe_tb_set(b, (uint64_t)tok, l, s, g->cur[(size_t)l * K + s], p->with_weights ? w[s] : NAN, err)) return -1;
        uint16_t *la = moe_tb_lookahead(b, (uint64_t)tok, l);
        for (uint32_t d = 1; la && d <= p->lookahead; d++)
            for (uint32_t s = 0; s < K; s++) {
                uint16_t v = MOE_NO_EXPERT;
                if (l + d < p->layers)
                    v = gsl_rng_uniform(g->r) < p->lookahead_acc ? g->cur[(size_t)(l + d) * K + s]
                                                                 : (uint16_t)gsl_rng_uniform_int(g->r, p->experts);
                la[(size_t)(d - 1) * K + s] = v;
            }
    }
    memcpy(g->prev, g->cur, (size_t)p->layers * K * sizeof *g->cur);
    g->have_prev = 1;
    return 0;
}

moe_trace *moe_trace_generate(const moe_gen_params *p, moe_error *err) {
    if (moe_gen_check(p, err)) return NULL;
    uint32_t L = p->layers, E = p->experts, K = p->top_k;
    gen g = {.p = p};
    g.r = gsl_rng_alloc(gsl_rng_mt19937);
    g.cdf = malloc(E * sizeof *g.cdf);
    g.perm = malloc((size_t)L * E * sizeof *g.perm);
    g.xmap = malloc((size_t)L * E * sizeof *g.xmap);
    g.prev = malloc((size_t)L * K * sizeof *g.prev);
    g.cur = malloc((size_t)L * K * sizeof *g.cur);
    moe_trace_builder *b = moe_tb_new(L, E, K, p->with_weights, 0, p->lookahead);
    moe_trace *t = NULL;
    if (!g.r || !g.cdf || !g.perm || !g.xmap || !g.prev || !g.cur || !b) {
        moe_fail(err, "out of memory");
        goto out;
    }
    /* gsl_rng_set takes an unsigned long: fold the 64-bit seed so that
     * seeds differing only in the high half still differ. */
    gsl_rng_set(g.r, (unsigned long)(p->seed ^ (p->seed >> 32)));
    double z = 0;
    for (uint32_t r = 0; r < E; r++) z += pow(r + 1.0, -p->zipf_s), g.cdf[r] = z;
    for (uint32_t r = 0; r < E; r++) g.cdf[r] /= z;
    g.cdf[E - 1] = 2.0; /* rounding can never push a draw past the last rank */
    g.n_guide = 4 * E < 256 ? 256 : 4 * E;
    g.guide = malloc(g.n_guide * sizeof *g.guide);
    if (!g.guide) {
        moe_fail(err, "out of memory");
        goto out;
    }
    for (uint32_t i = 0, r = 0; i < g.n_guide; i++) {
        while (g.cdf[r] <= (double)i / g.n_guide) r++;
        g.guide[i] = r;
    }
    for (uint32_t l = 0; l < L; l++)
        for (uint32_t e = 0; e < E; e++) g.perm[(size_t)l * E + e] = (uint16_t)e, g.xmap[(size_t)l * E + e] = (uint16_t)e;
    for (uint32_t l = 1; l < L; l++) gsl_ran_shuffle(g.r, g.xmap + (size_t)l * E, E, sizeof(uint16_t));
    double p_topic = p->topic_every ? 1.0 / (double)p->topic_every : 0;
    uint32_t seq = 0, pos = 0;
    for (uint64_t step = 0; step < p->steps; step++) {
        if (pos >= p->seq_len) seq++, pos = 0;
        uint32_t ntok = 1;
        if (pos == 0) { /* a new sequence: new topic, no previous token, prefill step */
            new_topic(&g);
            g.have_prev = 0;
            ntok = p->prefill < p->seq_len ? p->prefill : p->seq_len;
        }
        if (moe_tb_begin_step(b, step, ntok > 1 || pos == 0 ? MOE_PHASE_PREFILL : MOE_PHASE_DECODE, err)) goto out;
        for (uint32_t i = 0; i < ntok; i++, pos++) {
            if (pos > 0 && p_topic > 0 && gsl_rng_uniform(g.r) < p_topic) new_topic(&g);
            int64_t tok = moe_tb_add_token(b, seq, pos, err);
            if (tok < 0) goto out;
            draw_token(&g);
            if (emit_token(&g, b, tok, err)) goto out;
        }
    }
    char meta[1024];
    moe_gen_describe(p, meta, sizeof meta);
    t = moe_tb_finish(b, p->model, "moesim gen", meta, err);
    b = NULL;
out:
    moe_tb_abort(b);
    gsl_rng_free(g.r);
    free(g.cdf), free(g.guide), free(g.perm), free(g.xmap), free(g.prev), free(g.cur);
    return t;
}
