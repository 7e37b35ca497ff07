/* results_table.h: `moesim results table` — a policy x capacity pivot of
 * one metric over stored runs, plain or Markdown, with bootstrap intervals
 * (--ci) and paired differences against a baseline policy. `moesim sweep`
 * without --db prints its runs through the same function. */
#ifndef MOE_RESULTS_TABLE_H
#define MOE_RESULTS_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/error.h"
#include "results_filter.h"

struct sqlite3;

typedef struct results_table_opts {
    results_filter filter;
    const char *metric;   /* a stored metric name, or miss_rate; NULL = hit_rate */
    int markdown;
    int ci;               /* bootstrap intervals (hit_rate, miss_rate only) */
    size_t resamples;     /* 0 = MOE_BOOTSTRAP_RESAMPLES */
    uint64_t seed;        /* 0 = MOE_BOOTSTRAP_SEED */
    const char *baseline; /* with ci: paired differences against this policy */
} results_table_opts;

/* Print the tables of the runs of h selected by o to out: one table per
 * trace and configuration apart from policy, capacity and seed. Errors (an
 * empty selection, a metric no run has, runs without per-sequence counts
 * under --ci) fill err, naming the database. */
int results_table_print(struct sqlite3 *h, const char *db_path, const results_table_opts *o, FILE *out,
                        moe_error *err);

#endif
