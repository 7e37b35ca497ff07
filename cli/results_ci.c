/* results_ci.c: per-sequence counts of stored runs, resampled (results_ci.h). */
#include "results_ci.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "../core/bootstrap.h"

static int has_counts_table(sqlite3 *h) {
    sqlite3_stmt *st = NULL;
    int has = 0;
    if (sqlite3_prepare_v2(h, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sequence_counts'", -1, &st,
                           NULL) == SQLITE_OK)
        has = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return has;
}

/* Read run id's counts into *acc / *hits (malloc'ed, *n entries) and check
 * them against the run's stored totals. */
static int load_run(sqlite3 *h, const char *db_path, int64_t id, size_t *n, uint64_t **acc, uint64_t **hits,
                    moe_error *err) {
    sqlite3_stmt *st = NULL;
    size_t cap = 0, k = 0;
    uint64_t sum_a = 0, sum_h = 0;
    *acc = *hits = NULL;
    if (sqlite3_prepare_v2(h, "SELECT seq, accesses, hits FROM sequence_counts WHERE run_id = ?1 ORDER BY seq", -1, &st,
                           NULL) != SQLITE_OK)
        return moe_fail(err, "%s: %s", db_path, sqlite3_errmsg(h));
    sqlite3_bind_int64(st, 1, id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            cap = cap ? 2 * cap : 64;
            uint64_t *a = realloc(*acc, cap * sizeof *a), *b = a ? realloc(*hits, cap * sizeof *b) : NULL;
            if (a) *acc = a;
            if (!a || !b) {
                sqlite3_finalize(st);
                return moe_fail(err, "out of memory");
            }
            *hits = b;
        }
        if (sqlite3_column_int64(st, 0) != (sqlite3_int64)k) {
            sqlite3_finalize(st);
            return moe_fail(err, "%s: run %lld: per-sequence counts skip sequence %zu", db_path, (long long)id, k);
        }
        (*acc)[k] = (uint64_t)sqlite3_column_int64(st, 1);
        (*hits)[k] = (uint64_t)sqlite3_column_int64(st, 2);
        sum_a += (*acc)[k], sum_h += (*hits)[k];
        k++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) return moe_fail(err, "%s: %s", db_path, sqlite3_errmsg(h));
    if (k == 0)
        return moe_fail(err, "%s: run %lld has no per-sequence counts (stored before moesim recorded them, or by a "
                             "command that does not); --ci needs them: replay it again into a new database",
                        db_path, (long long)id);
    /* the counts must be the run's own: their sums are its stored totals */
    double tot_a = -1, tot_h = -1;
    if (sqlite3_prepare_v2(h, "SELECT name, value FROM metrics WHERE run_id = ?1 AND name IN ('accesses', 'hits')", -1,
                           &st, NULL) != SQLITE_OK)
        return moe_fail(err, "%s: %s", db_path, sqlite3_errmsg(h));
    sqlite3_bind_int64(st, 1, id);
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (!strcmp((const char *)sqlite3_column_text(st, 0), "accesses")) tot_a = sqlite3_column_double(st, 1);
        else tot_h = sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    if (tot_a != (double)sum_a || tot_h != (double)sum_h)
        return moe_fail(err, "%s: run %lld: its per-sequence counts (%llu accesses, %llu hits) do not add up to its "
                             "stored totals (%.0f, %.0f); the database is inconsistent",
                        db_path, (long long)id, (unsigned long long)sum_a, (unsigned long long)sum_h, tot_a, tot_h);
    *n = k;
    return 0;
}

int results_ci_compute(sqlite3 *h, const char *db_path, const int64_t *ids, const size_t *start, size_t n_cells,
                       size_t resamples, uint64_t seed, results_ci *out, moe_error *err) {
    memset(out, 0, sizeof *out);
    if (!has_counts_table(h))
        return moe_fail(err, "%s has no per-sequence counts (a results database of schema 1, written before moesim "
                             "recorded them); --ci needs runs replayed by this version: sweep again into a new database",
                        db_path);
    size_t n_runs = start[n_cells], n = 0;
    int rc = -1;
    moe_seq_counts *runs = calloc(n_runs ? n_runs : 1, sizeof *runs);
    double *rates = malloc((n_runs ? n_runs : 1) * resamples * sizeof *rates);
    out->samples = malloc((n_cells ? n_cells : 1) * resamples * sizeof *out->samples);
    if (!runs || !rates || !out->samples) {
        moe_fail(err, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < n_runs; j++) {
        uint64_t *a, *b;
        size_t k = 0;
        int bad = load_run(h, db_path, ids[j], &k, &a, &b, err);
        runs[j] = (moe_seq_counts){bad ? 0 : k, a, b};
        if (bad) goto done;
        if (j == 0) n = k;
        else if (k != n) {
            moe_fail(err, "%s: runs %lld and %lld have %zu and %zu sequences: intervals compare runs of one trace",
                     db_path, (long long)ids[0], (long long)ids[j], n, k);
            goto done;
        }
    }
    if (moe_bootstrap_rates(runs, n_runs, resamples, seed, rates, err)) goto done;
    for (size_t r = 0; r < resamples; r++)
        for (size_t c = 0; c < n_cells; c++) {
            double sum = 0;
            for (size_t j = start[c]; j < start[c + 1]; j++) sum += rates[r * n_runs + j];
            size_t m = start[c + 1] - start[c];
            out->samples[r * n_cells + c] = m ? sum / (double)m : NAN;
        }
    out->n_cells = n_cells;
    out->n_resamples = resamples;
    out->n_seqs = n;
    out->seed = seed;
    rc = 0;
done:
    for (size_t j = 0; runs && j < n_runs; j++) {
        free((void *)runs[j].accesses);
        free((void *)runs[j].hits);
    }
    free(runs);
    free(rates);
    if (rc) results_ci_free(out);
    return rc;
}

void results_ci_interval(const results_ci *ci, size_t c, long base, double level, double *lo, double *hi) {
    double *v = malloc((ci->n_resamples ? ci->n_resamples : 1) * sizeof *v);
    if (!v) {
        *lo = *hi = NAN;
        return;
    }
    for (size_t r = 0; r < ci->n_resamples; r++) {
        const double *row = ci->samples + r * ci->n_cells;
        v[r] = base >= 0 ? row[c] - row[base] : row[c];
    }
    moe_percentile_interval(v, ci->n_resamples, level, lo, hi);
    free(v);
}

void results_ci_free(results_ci *ci) {
    free(ci->samples);
    memset(ci, 0, sizeof *ci);
}
