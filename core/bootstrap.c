/* bootstrap.c: resampling sequences for hit-rate intervals (bootstrap.h). */
#include "bootstrap.h"

#include <gsl/gsl_rng.h>
#include <math.h>
#include <stdlib.h>

/* GSL's mt19937 keeps only the low 32 bits of a seed and maps 0 to its
 * default (4357): both would silently alias another seed, so both are refused. */
static gsl_rng *rng_new(uint64_t seed, moe_error *err) {
    if (seed < 1 || seed > 0xFFFFFFFFu)
        return moe_fail(err, "bootstrap seed %llu: out of range 1..4294967295 (GSL's mt19937 takes 32 bits, "
                             "and 0 means its default seed)", (unsigned long long)seed), NULL;
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!r) return moe_fail(err, "out of memory"), NULL;
    gsl_rng_set(r, (unsigned long)seed);
    return r;
}

static void draw(gsl_rng *r, size_t n, size_t *idx) {
    for (size_t i = 0; i < n; i++) idx[i] = (size_t)gsl_rng_uniform_int(r, (unsigned long)n);
}

int moe_bootstrap_draw(size_t n, size_t n_resamples, uint64_t seed, size_t r, size_t *idx, moe_error *err) {
    if (n == 0 || r >= n_resamples) return moe_fail(err, "bootstrap: no resample %zu of %zu sequences", r, n);
    gsl_rng *g = rng_new(seed, err);
    if (!g) return -1;
    for (size_t k = 0; k <= r; k++) draw(g, n, idx);
    gsl_rng_free(g);
    return 0;
}

int moe_bootstrap_rates(const moe_seq_counts *runs, size_t n_runs, size_t n_resamples, uint64_t seed,
                        double *out, moe_error *err) {
    if (n_runs == 0 || n_resamples == 0) return 0;
    size_t n = runs[0].n;
    if (n == 0) return moe_fail(err, "bootstrap: no sequences to resample");
    if (n > 0xFFFFFFFFu) return moe_fail(err, "bootstrap: %zu sequences exceed the generator's range", n);
    for (size_t j = 1; j < n_runs; j++)
        if (runs[j].n != n)
            return moe_fail(err, "bootstrap: runs of one trace must have the same sequences (%zu and %zu)", n,
                            runs[j].n);
    size_t *idx = malloc(n * sizeof *idx);
    gsl_rng *g = idx ? rng_new(seed, err) : NULL;
    if (!idx || !g) {
        free(idx);
        return idx ? -1 : moe_fail(err, "out of memory");
    }
    for (size_t r = 0; r < n_resamples; r++) {
        draw(g, n, idx);
        for (size_t j = 0; j < n_runs; j++) {
            /* integer sums: exact, so a paired difference of equal runs is exactly 0 */
            uint64_t acc = 0, hits = 0;
            for (size_t i = 0; i < n; i++) {
                acc += runs[j].accesses[idx[i]];
                hits += runs[j].hits[idx[i]];
            }
            out[r * n_runs + j] = acc ? (double)hits / (double)acc : NAN;
        }
    }
    gsl_rng_free(g);
    free(idx);
    return 0;
}

static int cmp_nan_last(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
    return (x > y) - (x < y);
}

/* ceil(q) for a rank q computed in floating point: a product that should be
 * a whole number (1000 * 0.975) may land a hair above it. */
static size_t rank_ceil(double q, size_t n) {
    double c = ceil(q - 1e-9);
    if (c < 1) return 1;
    if (c > (double)n) return n;
    return (size_t)c;
}

size_t moe_percentile_interval(double *v, size_t n, double level, double *lo, double *hi) {
    qsort(v, n, sizeof *v, cmp_nan_last);
    size_t m = 0;
    while (m < n && !isnan(v[m])) m++;
    if (m == 0) {
        *lo = *hi = NAN;
        return 0;
    }
    *lo = v[rank_ceil((double)m * (1 - level) / 2, m) - 1];
    *hi = v[rank_ceil((double)m * (1 + level) / 2, m) - 1];
    return m;
}
