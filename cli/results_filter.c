/* results_filter.c: run filters shared by `results list` and `results table`. */
#include "results_filter.h"

#include <stdio.h>
#include <string.h>

int results_filter_opt(results_filter *f, int c, const char *arg) {
    switch (c) {
    case 0x100: f->experiment = arg; return 1;
    case 0x101: f->policy = arg; return 1;
    case 0x102: f->trace = arg; return 1;
    case 0x103: f->scope = arg; return 1;
    case 0x104: f->device = arg; return 1;
    case 0x105: f->prefetch = arg; return 1;
    case 0x106: f->precision = arg; return 1;
    default: return 0;
    }
}

/* A filter: the column's value in the comma list, by cli_spec_in_list's rule. */
static void add(char *sql, size_t cap, const char *col, const char *list, int *n_bind, const char **binds) {
    size_t l = strlen(sql);
    binds[(*n_bind)++] = list;
    snprintf(sql + l, cap - l, " AND spec_in(%s, ?%d)", col, *n_bind);
}

void results_filter_sql(const results_filter *f, char *sql, size_t cap, const char **binds, int *n_bind) {
    if (f->experiment) add(sql, cap, "s.experiment", f->experiment, n_bind, binds);
    if (f->policy) add(sql, cap, "s.policy", f->policy, n_bind, binds);
    if (f->scope) add(sql, cap, "s.scope", f->scope, n_bind, binds);
    if (f->device) add(sql, cap, RESULTS_CONF("device"), f->device, n_bind, binds);
    if (f->prefetch) add(sql, cap, RESULTS_CONF("prefetch"), f->prefetch, n_bind, binds);
    if (f->precision) add(sql, cap, RESULTS_CONF("precision"), f->precision, n_bind, binds);
    if (f->trace) { /* a path as stored, or a prefix of the content hash */
        size_t l = strlen(sql);
        binds[(*n_bind)++] = f->trace;
        snprintf(sql + l, cap - l, " AND (s.trace_path = ?%d OR s.trace_hash LIKE ?%d || '%%')", *n_bind, *n_bind);
    }
}

void results_filter_describe(const results_filter *f, char *buf, size_t cap) {
    const char *name[7] = {"experiment", "policy", "trace", "scope", "device", "prefetch", "precision"};
    const char *val[7] = {f->experiment, f->policy, f->trace, f->scope, f->device, f->prefetch, f->precision};
    size_t u = 0;
    buf[0] = 0;
    for (int i = 0; i < 7; i++)
        if (val[i] && u < cap) u += (size_t)snprintf(buf + u, cap - u, "%s%s %s", u ? ", " : "", name[i], val[i]);
}
