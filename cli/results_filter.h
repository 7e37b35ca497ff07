/* results_filter.h: the run filters of `moesim results list` and `results
 * table` (one rule, one parser): each a comma list matched by
 * cli_spec_in_list's rule (a name selects all its parameter variants, a
 * canonical spec just itself), turned into SQL over run_summary s. */
#ifndef MOE_RESULTS_FILTER_H
#define MOE_RESULTS_FILTER_H

#include <getopt.h>
#include <stddef.h>

typedef struct results_filter {
    const char *experiment, *policy, *trace, *scope, *device, *prefetch, *precision;
} results_filter;

/* getopt_long entries for the filters (their codes are 0x100..0x106, so
 * they never clash with a command's own letters). */
#define RESULTS_FILTER_OPTIONS                                                                  \
    {"experiment", required_argument, 0, 0x100}, {"policy", required_argument, 0, 0x101},     \
    {"trace", required_argument, 0, 0x102}, {"scope", required_argument, 0, 0x103},           \
    {"device", required_argument, 0, 0x104}, {"prefetch", required_argument, 0, 0x105},       \
    {"precision", required_argument, 0, 0x106}

/* The filters' lines of a --help text. */
#define RESULTS_FILTER_HELP                                                                     \
    "filters (each a comma list; a policy, device, prefetcher or precision name\n"            \
    "selects all its parameter variants, a canonical spec just itself):\n"                    \
    "  --experiment E  --policy P  --trace PATH|HASH-PREFIX  --scope S\n"                     \
    "  --device D  --prefetch X  --precision S\n"

/* Take getopt's result c (value arg) if it is a filter: 1, else 0. */
int results_filter_opt(results_filter *f, int c, const char *arg);

/* Append " AND ..." for every filter set to sql (over run_summary s); the
 * values to bind, in order from ?(*n_bind + 1), go to binds (room for 7
 * more). Needs cli_sql_spec_in on the connection. */
void results_filter_sql(const results_filter *f, char *sql, size_t cap, const char **binds, int *n_bind);

/* "policy lru, scope per-layer" for messages ("" when no filter is set). */
void results_filter_describe(const results_filter *f, char *buf, size_t cap);

/* A config value of run s, as an SQL expression. */
#define RESULTS_CONF(key) "(SELECT value FROM run_config c WHERE c.run_id = s.id AND c.key = '" key "')"

#endif
