/* trace_stats.c: popularity, reuse distances, lookahead predictability (trace_stats.h). */
#include "trace_stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mrc.h"

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void moe_popularity_of(const uint64_t *counts, uint32_t n, uint32_t k, moe_popularity *p) {
    memset(p, 0, sizeof *p);
    uint64_t *s = malloc((n ? n : 1) * sizeof *s);
    if (!s) { p->entropy_bits = p->entropy_norm = p->gini = NAN; return; }
    uint64_t total = 0;
    for (uint32_t i = 0; i < n; i++) total += (s[i] = counts[i]);
    p->activations = total;
    if (!total) {
        free(s);
        p->entropy_bits = p->entropy_norm = p->gini = p->top1 = p->top2 = p->topk = p->topq = NAN;
        return;
    }
    qsort(s, n, sizeof *s, cmp_u64);
    double h = 0, wsum = 0;
    for (uint32_t i = 0; i < n; i++) {
        double q = (double)s[i] / (double)total;
        if (q > 0) h -= q * log2(q);
        wsum += (double)(i + 1) * (double)s[i];
    }
    p->entropy_bits = h;
    p->entropy_norm = n > 1 ? h / log2((double)n) : 0;
    p->gini = 2 * wsum / ((double)n * (double)total) - ((double)n + 1) / (double)n;
    uint32_t nq = n / 4 ? n / 4 : 1;
    uint32_t want[4] = {1, 2, k, nq};
    double *dst[4] = {&p->top1, &p->top2, &p->topk, &p->topq};
    for (int j = 0; j < 4; j++) {
        uint64_t acc = 0;
        for (uint32_t i = 0; i < want[j] && i < n; i++) acc += s[n - 1 - i];
        *dst[j] = (double)acc / (double)total;
    }
    free(s);
}

uint32_t moe_rd_bucket_of(uint32_t d) {
    uint32_t b = 0;
    while (d) { b++; d >>= 1; }
    return b; /* 0 -> 0, 1 -> 1, 2..3 -> 2, 4..7 -> 3 ... */
}

uint32_t moe_rd_bucket_lo(uint32_t b) { return b ? 1u << (b - 1) : 0; }

void moe_trace_stats_free(moe_trace_stats *s) {
    free(s->counts);
    free(s->layer);
    free(s->rd_hist);
    free(s->rd_cold);
    free(s->la_pred);
    free(s->la_actual);
    free(s->la_match);
    memset(s, 0, sizeof *s);
}

int moe_trace_stats_compute(const moe_trace *t, moe_trace_stats *out, moe_error *err) {
    memset(out, 0, sizeof *out);
    const uint32_t L = t->n_layers, E = t->n_experts, K = t->top_k;
    out->n_layers = L;
    out->n_experts = E;
    out->top_k = K;
    out->n_quarter = E / 4 ? E / 4 : 1;
    out->n_steps = t->n_steps;
    out->n_tokens = t->n_tokens;
    out->counts = calloc((size_t)L * E, sizeof *out->counts);
    out->layer = calloc(L, sizeof *out->layer);
    out->rd_hist = calloc((size_t)L * MOE_RD_BUCKETS, sizeof *out->rd_hist);
    out->rd_cold = calloc(L, sizeof *out->rd_cold);
    out->la_pred = calloc(L, sizeof *out->la_pred);
    out->la_actual = calloc(L, sizeof *out->la_actual);
    out->la_match = calloc(L, sizeof *out->la_match);
    uint32_t *mark = calloc(E, sizeof *mark), gen = 0;
    if (!out->counts || !out->layer || !out->rd_hist || !out->rd_cold || !out->la_pred || !out->la_actual ||
        !out->la_match || !mark) {
        free(mark);
        moe_trace_stats_free(out);
        return moe_fail(err, "out of memory");
    }
    /* popularity */
    for (uint64_t tok = 0; tok < t->n_tokens; tok++)
        for (uint32_t l = 0; l < L; l++) {
            size_t r = moe_trace_rec(t, tok, l);
            for (uint32_t s = 0; s < K && t->experts[r + s] != MOE_NO_EXPERT; s++)
                out->counts[(size_t)l * E + t->experts[r + s]]++;
        }
    double sums[7] = {0};
    for (uint32_t l = 0; l < L; l++) {
        moe_popularity *p = &out->layer[l];
        moe_popularity_of(out->counts + (size_t)l * E, E, K, p);
        out->mean.activations += p->activations;
        double v[7] = {p->entropy_bits, p->entropy_norm, p->gini, p->top1, p->top2, p->topk, p->topq};
        for (int j = 0; j < 7; j++) sums[j] += v[j];
    }
    out->mean.entropy_bits = sums[0] / L;
    out->mean.entropy_norm = sums[1] / L;
    out->mean.gini = sums[2] / L;
    out->mean.top1 = sums[3] / L;
    out->mean.top2 = sums[4] / L;
    out->mean.topk = sums[5] / L;
    out->mean.topq = sums[6] / L;

    /* reuse distances: per-layer group stack distances from the MRC pass */
    moe_mrc m;
    if (moe_mrc_compute(t, 0, 0, &m, err)) {
        free(mark);
        moe_trace_stats_free(out);
        return -1;
    }
    out->accesses = m.accesses;
    out->rd_buckets = moe_rd_bucket_of(E > 1 ? E - 1 : 0) + 1;
    for (uint32_t l = 0; l < L; l++) {
        out->rd_cold[l] = m.layer_cold[l];
        for (uint32_t d = 0; d < m.max_capacity; d++)
            out->rd_hist[(size_t)l * MOE_RD_BUCKETS + moe_rd_bucket_of(d)] += m.layer_dist[(size_t)l * m.max_capacity + d];
    }
    moe_mrc_free(&m);

    /* lookahead, d = 1 */
    out->has_lookahead = t->lookahead && t->lookahead_depth > 0;
    out->la_precision = out->la_recall = NAN;
    if (out->has_lookahead) {
        uint64_t P = 0, A = 0, M = 0;
        const uint32_t D = t->lookahead_depth;
        for (uint64_t tok = 0; tok < t->n_tokens; tok++)
            for (uint32_t l = 0; l + 1 < L; l++) {
                if (++gen == 0) { memset(mark, 0, E * sizeof *mark); gen = 1; }
                size_t ra = moe_trace_rec(t, tok, l + 1);
                uint64_t na = 0, np = 0, nm = 0;
                for (uint32_t s = 0; s < K && t->experts[ra + s] != MOE_NO_EXPERT; s++) {
                    mark[t->experts[ra + s]] = gen;
                    na++;
                }
                const uint16_t *pred = t->lookahead + ((((size_t)tok * L + l) * D) + 0) * K;
                for (uint32_t s = 0; s < K && pred[s] != MOE_NO_EXPERT; s++) {
                    np++;
                    if (pred[s] < E && mark[pred[s]] == gen) {
                        nm++;
                        mark[pred[s]] = 0; /* a duplicate prediction matches once */
                    }
                }
                out->la_pred[l] += np;
                out->la_actual[l] += na;
                out->la_match[l] += nm;
                P += np;
                A += na;
                M += nm;
            }
        out->la_precision = P ? (double)M / (double)P : NAN;
        out->la_recall = A ? (double)M / (double)A : NAN;
    }
    free(mark);
    return 0;
}
