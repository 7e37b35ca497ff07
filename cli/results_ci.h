/* results_ci.h: bootstrap intervals of hit rates for cells of stored runs
 * (`results table --ci`, `plot hit-rate --ci`): reads each run's
 * per-sequence counts (table sequence_counts) and resamples them with
 * core/bootstrap.h. A cell is a set of runs of one trace (several seeds of
 * one configuration); its value on a resample is the mean of its runs' hit
 * rates there. Every cell is evaluated on the same resamples, so the
 * difference of two cells, resample by resample, is a paired difference. */
#ifndef MOE_RESULTS_CI_H
#define MOE_RESULTS_CI_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"

struct sqlite3;

typedef struct results_ci {
    size_t n_cells, n_resamples, n_seqs;
    uint64_t seed;
    double *samples; /* samples[r * n_cells + c]: cell c on resample r (NaN: no access drawn) */
} results_ci;

/* Cell c holds the runs ids[start[c] .. start[c + 1]) (start has n_cells + 1
 * entries). Fails, naming the database and the run, when the database or a
 * run has no per-sequence counts (stored before moesim recorded them), when
 * a run's counts do not add up to its stored totals, or when runs have
 * different sequences. */
int results_ci_compute(struct sqlite3 *h, const char *db_path, const int64_t *ids, const size_t *start, size_t n_cells,
                       size_t resamples, uint64_t seed, results_ci *out, moe_error *err);

/* Percentile interval (core/bootstrap.h) of cell c, or of cell c minus cell
 * base resample by resample (base >= 0: the paired difference). */
void results_ci_interval(const results_ci *ci, size_t c, long base, double level, double *lo, double *hi);

void results_ci_free(results_ci *ci);

#endif
