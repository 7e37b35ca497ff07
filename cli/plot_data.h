/* plot_data.h: `moesim plot --data FILE`: the numbers a figure draws, as
 * CSV, read back from the very data files gnuplot drew them from (so the
 * CSV cannot disagree with the figure). */
#ifndef MOE_PLOT_DATA_H
#define MOE_PLOT_DATA_H

#include "../core/error.h"

/* One data file of a figure and the line it draws ("" when the figure has
 * one data file, or its rows name themselves). */
typedef struct plot_data_file {
    char name[16];     /* in the figure's data folder: "1.dat", "heat.dat" */
    char series[320];  /* e.g. the policy's canonical spec */
} plot_data_file;

/* Write out (atomically) as CSV: a header "series_col,cols" (no series
 * column when series_col is NULL), then every row of every file, its
 * space-separated fields as CSV fields (double-quoted text unquoted and
 * CSV-escaped; numbers as written). Fails, naming the file and line, on a
 * row whose field count is not that of cols. */
int plot_data_write(const char *out, const char *dir, const plot_data_file *files, int n, const char *series_col,
                    const char *cols, moe_error *err);

#endif
