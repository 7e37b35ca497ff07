/* results_schema.h: the fixed column list of a results export (one row per
 * run): `moesim results export --csv` writes exactly these columns, in this
 * order, for every database, and Python's moesim.load_results() returns the
 * same ones. The list is results_schema.def; docs/results-schema.md documents
 * it (and `moesim results export --schema` prints it). */
#ifndef MOE_RESULTS_SCHEMA_H
#define MOE_RESULTS_SCHEMA_H

#include <stddef.h>

typedef enum {
    MOE_COL_RUN,           /* a column of the runs table */
    MOE_COL_TRACE,         /* a column of the traces table */
    MOE_COL_CONFIG,        /* a run_config key */
    MOE_COL_METRIC,        /* a metrics name */
    MOE_COL_OTHER_CONFIG,  /* every config key not listed */
    MOE_COL_OTHER_METRICS, /* every metric name not listed */
} moe_col_source;

typedef enum { MOE_COL_INTEGER, MOE_COL_REAL, MOE_COL_TEXT } moe_col_type;

typedef struct moe_results_column {
    const char *name;
    moe_col_source source;
    const char *key; /* the table column, config key or metric name */
    moe_col_type type;
    const char *unit, *meaning;
} moe_results_column;

extern const moe_results_column moe_results_schema[];
extern const size_t moe_results_schema_n;

/* The column holding config key / metric name `key` (source MOE_COL_CONFIG
 * or MOE_COL_METRIC), or -1 when the schema does not list it. */
int moe_results_schema_find(moe_col_source source, const char *key);

/* "integer", "real", "text" */
const char *moe_col_type_name(moe_col_type t);

#endif
