/* quality_db.c: means of stored quality metrics (see quality_db.h). */
#include "quality_db.h"

#include <math.h>
#include <sqlite3.h>
#include <stddef.h>

#include "../core/results.h"

int moe_quality_mean(const char *db, const char *experiment, const char *configuration, const char *metric,
                     double *mean, int *n, moe_error *err) {
    sqlite3 *h = moe_db_open_readonly(db, NULL, err);
    if (!h) return -1;
    static const char sql[] =
        "SELECT avg(m.value), count(m.value) FROM run_config c JOIN metrics m ON m.run_id = c.run_id AND m.name = ?2"
        " JOIN run_config k ON k.run_id = c.run_id AND k.key = 'kind' AND k.value = 'quality'"
        " JOIN runs r ON r.id = c.run_id AND r.status = 'done' AND (?3 IS NULL OR r.experiment = ?3)"
        " WHERE c.key = 'configuration' AND c.value = ?1";
    sqlite3_stmt *st = NULL;
    int rc = 0;
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK) {
        rc = moe_fail(err, "%s: %s", db, sqlite3_errmsg(h));
    } else {
        sqlite3_bind_text(st, 1, configuration, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, metric, -1, SQLITE_STATIC);
        if (experiment) sqlite3_bind_text(st, 3, experiment, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) rc = moe_fail(err, "%s: %s", db, sqlite3_errmsg(h));
        else {
            *n = sqlite3_column_int(st, 1);
            *mean = *n ? sqlite3_column_double(st, 0) : NAN;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    return rc;
}
