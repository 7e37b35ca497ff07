/* results_schema.c: the table of results_schema.def and its look-up. */
#include "results_schema.h"

#include <string.h>

#define RUN MOE_COL_RUN
#define TRACE MOE_COL_TRACE
#define CONFIG MOE_COL_CONFIG
#define METRIC MOE_COL_METRIC
#define OTHER_CONFIG MOE_COL_OTHER_CONFIG
#define OTHER_METRICS MOE_COL_OTHER_METRICS
#define INTEGER MOE_COL_INTEGER
#define REAL MOE_COL_REAL
#define TEXT MOE_COL_TEXT
#define COL(name, source, key, type, unit, meaning) {name, source, key, type, unit, meaning},
const moe_results_column moe_results_schema[] = {
#include "results_schema.def"
};
#undef COL
const size_t moe_results_schema_n = sizeof moe_results_schema / sizeof *moe_results_schema;

int moe_results_schema_find(moe_col_source source, const char *key) {
    /* ~150 entries, looked up a few dozen times per exported run: a linear
     * scan costs microseconds per run, nothing next to the SQL reads */
    for (size_t i = 0; i < moe_results_schema_n; i++)
        if (moe_results_schema[i].source == source && !strcmp(moe_results_schema[i].key, key)) return (int)i;
    return -1;
}

const char *moe_col_type_name(moe_col_type t) {
    return t == MOE_COL_INTEGER ? "integer" : t == MOE_COL_REAL ? "real" : "text";
}
