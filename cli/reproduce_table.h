/* reproduce_table.h: the rows `moesim reproduce` produces (cli/cmd_reproduce.c
 * runs the checks) and the three ways they are printed: a table that fits a
 * terminal of `width` columns, CSV, and JSON.
 *
 * A row belongs to a claim (an experiment file's [check NAME] section) of an
 * experiment. A row is *fitted by construction* when the data it is judged
 * on was made to match the very value it is compared with (a trace fitted
 * to the published curve): it checks the calibration, it is not evidence,
 * and every total counts it apart from the reproductions. */
#ifndef MOE_REPRODUCE_TABLE_H
#define MOE_REPRODUCE_TABLE_H

#include <stddef.h>
#include <stdio.h>

typedef struct repro_row {
    char exp[40], claim[64], kind[16], source[200];
    char metric[160], pub[24], ours[24], diff[24], verdict[16], reason[1400];
    double pub_v, ours_v; /* the published and our value when each is one number, else NaN */
    int fitted;           /* fitted by construction */
} repro_row;

typedef struct repro_exp {
    char name[40], title[240], source[200];
} repro_exp;

typedef struct repro_table {
    repro_row *r;
    size_t n, cap;
    repro_exp *e;
    size_t n_exp, cap_exp;
    int fails; /* FAIL rows, fitted ones included (--strict) */
} repro_table;

/* Counts of a set of rows. */
typedef struct repro_counts {
    size_t rows, pass, fail, nc;
} repro_counts;

/* An experiment's heading (title and source may be NULL); 0 or -1 (memory). */
int repro_add_experiment(repro_table *t, const char *name, const char *title, const char *source);
/* A new row of claim `claim` (kind, source) of experiment `exp`; published,
 * ours and error "-", values NaN. NULL when memory runs out. */
repro_row *repro_add_row(repro_table *t, const char *exp, const char *claim, const char *kind, const char *source,
                         const char *metric);
void repro_set_reason(repro_row *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* PASS, FAIL or NOT COMPARABLE. */
void repro_verdict(repro_table *t, repro_row *r, const char *v);
void repro_table_free(repro_table *t);

/* Counts of the rows with fitted == `fitted`, of one claim (exp and claim
 * non-NULL) or of all. */
repro_counts repro_count(const repro_table *t, const char *exp, const char *claim, int fitted);

/* The table: per experiment a heading, per claim a line and its rows
 * (metric, published, ours, error, verdict, note number; a metric too long
 * for its column wraps), the claim's notes (the reasons, numbered, each
 * once) below its rows; then one summary line per claim and the totals,
 * fitted rows apart. No line is longer than `width` (at least 80). */
void repro_print_table(const repro_table *t, FILE *f, int width);
/* CSV: a header, then one line per row. */
void repro_print_csv(const repro_table *t, FILE *f);
/* JSON: {"rows": [...], "claims": [...], "totals": {...}}; 0 or -1 (memory). */
int repro_print_json(const repro_table *t, FILE *f);

#endif
