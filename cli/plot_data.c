/* plot_data.c: the CSV of `moesim plot --data` (plot_data.h). */
#include "plot_data.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../core/trace_formats.h"
#include "cli.h"

/* Split one data-file line into fields: runs of non-blanks, or "..." (no
 * escapes inside: the figure code writes names without quotes). Returns the
 * field count, or -1 on an unterminated quote; fields point into line. */
static int split_fields(char *line, char **field, int max) {
    int n = 0;
    char *c = line;
    for (;;) {
        while (*c == ' ' || *c == '\t') c++;
        if (!*c || *c == '\n') return n;
        if (n == max) return max + 1;
        if (*c == '"') {
            char *end = strchr(c + 1, '"');
            if (!end) return -1;
            *end = 0;
            field[n++] = c + 1;
            c = end + 1;
        } else {
            field[n++] = c;
            c += strcspn(c, " \t\n");
            if (*c) *c++ = 0;
            else return n;
        }
    }
}

int plot_data_write(const char *out, const char *dir, const plot_data_file *files, int n, const char *series_col,
                    const char *cols, moe_error *err) {
    int n_cols = 1;
    for (const char *c = cols; *c; c++) n_cols += *c == ',';
    moe_atomic_file af;
    if (moe_atomic_open(&af, out, err)) return moe_fail_prefix(err, "--data");
    if (series_col) fprintf(af.f, "%s,", series_col);
    fprintf(af.f, "%s\n", cols);
    char line[8192], path[1200];
    char *field[64];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        FILE *f = fopen(path, "r");
        if (!f) {
            moe_fail(err, "--data: %s: %s", path, strerror(errno));
            goto fail;
        }
        for (long ln = 1; fgets(line, sizeof line, f); ln++) {
            if (!strchr(line, '\n') && !feof(f)) {
                fclose(f);
                moe_fail(err, "--data: %s:%ld: line longer than %zu bytes", path, ln, sizeof line - 2);
                goto fail;
            }
            int nf = split_fields(line, field, 64);
            if (nf == 0) continue;
            if (nf < 0) {
                fclose(f);
                moe_fail(err, "--data: %s:%ld: a quote is not closed", path, ln);
                goto fail;
            }
            /* the figure code wrote the file: a mismatch is a bug here, said, not a silent column shift */
            if (nf != n_cols) {
                fclose(f);
                moe_fail(err, "--data: %s:%ld: %d fields, the header (%s) has %d", path, ln, nf, cols, n_cols);
                goto fail;
            }
            if (series_col) {
                cli_csv_field(af.f, files[i].series);
                fputc(',', af.f);
            }
            for (int k = 0; k < nf; k++) {
                if (k) fputc(',', af.f);
                cli_csv_field(af.f, field[k]);
            }
            fputc('\n', af.f);
        }
        fclose(f);
    }
    if (moe_atomic_commit(&af, err)) return moe_fail_prefix(err, "--data");
    return 0;
fail:
    moe_atomic_abort(&af);
    return -1;
}
