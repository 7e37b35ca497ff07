/* bootstrap.h: confidence intervals of hit rates by resampling sequences.
 *
 * The unit is a sequence (a request of the trace): its accesses and hits
 * are one draw. A resample draws n sequence indices uniformly with
 * replacement from the n sequences (GSL's gsl_rng_mt19937, seeded); the hit
 * rate of a run on a resample is sum of hits / sum of accesses over the drawn
 * sequences (each counted as often as drawn). The draws depend only on
 * (n, seed, resample number), never on which runs are evaluated, so every run
 * of one trace is evaluated on the very same resamples: differences between
 * two policies are paired.
 *
 * Interval: the percentile interval of the resample values at level L
 * (0.95 = 95%), by the nearest-rank rule on the R finite values sorted
 * ascending x(1) <= ... <= x(R): lower = x(ceil(R * (1 - L) / 2)), upper =
 * x(ceil(R * (1 + L) / 2)), ranks clamped to 1..R. Both bounds are values
 * some resample took. */
#ifndef MOE_BOOTSTRAP_H
#define MOE_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"

#define MOE_BOOTSTRAP_RESAMPLES 1000
#define MOE_BOOTSTRAP_SEED 1
#define MOE_BOOTSTRAP_LEVEL 0.95

/* One run's per-sequence counts; every run of one call has the same n. */
typedef struct moe_seq_counts {
    size_t n;
    const uint64_t *accesses, *hits;
} moe_seq_counts;

/* Evaluate n_runs runs on n_resamples resamples of their sequences:
 * out[r * n_runs + j] = hit rate of run j on resample r (NaN when the drawn
 * sequences have no access). seed >= 1 (GSL maps seed 0 to its default
 * 4357, so 0 is refused rather than silently aliased). Fails when the runs'
 * sequence counts differ, n is 0 or memory runs out. */
int moe_bootstrap_rates(const moe_seq_counts *runs, size_t n_runs, size_t n_resamples, uint64_t seed,
                        double *out, moe_error *err);

/* The sequence indices of resample r, as moe_bootstrap_rates draws them
 * (idx: n entries). For tests and for anyone who needs the draws. */
int moe_bootstrap_draw(size_t n, size_t n_resamples, uint64_t seed, size_t r, size_t *idx, moe_error *err);

/* Percentile interval (rule above) of the finite values among v[0..n);
 * v is sorted in place (NaNs last). Returns the number of finite values;
 * with none, *lo = *hi = NaN. */
size_t moe_percentile_interval(double *v, size_t n, double level, double *lo, double *hi);

#endif
