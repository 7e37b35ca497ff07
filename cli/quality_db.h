/* quality_db.h: reading what `moesim quality --db` stored (runs of
 * kind=quality), for `moesim reproduce`'s quality checks. */
#ifndef MOE_QUALITY_DB_H
#define MOE_QUALITY_DB_H

#include "../core/error.h"

/* Mean of `metric` over the quality runs of `configuration` (the stored
 * configuration key: the constraint with profile paths as profile=P) in
 * experiment `experiment` (NULL = any). *n = the runs averaged (0: none,
 * *mean NaN). Opens the database read-only; -1 on error (a missing file
 * is an error naming it). */
int moe_quality_mean(const char *db, const char *experiment, const char *configuration, const char *metric,
                     double *mean, int *n, moe_error *err);

#endif
