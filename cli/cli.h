/* cli.h: small helpers shared by the subcommands: number parsing with
 * messages that name the option, and uniform error printing. */
#ifndef MOE_CLI_H
#define MOE_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/error.h"

/* Parse a non-negative integer option value; on error fills err naming opt. */
int cli_parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out, moe_error *err);
/* Print "moesim <cmd>: <msg>" to stderr and return the exit status 1. */
int cli_error(const char *cmd, const moe_error *err);
/* s with the first `placeholder` (e.g. "{cap}") replaced by value, into out
 * (cut at cap). */
void cli_subst(const char *s, const char *placeholder, const char *value, char *out, size_t cap);
/* One CSV field to f: as is, or in double quotes (inner quotes doubled) when
 * it holds a comma, quote or line break (RFC 4180). NULL writes nothing. */
void cli_csv_field(FILE *f, const char *s);
/* True if stdout/stderr is a terminal (progress bars only there). */
int cli_is_tty(int fd);
/* Whether spec (a canonical policy, device, prefetcher... spec) is in a
 * comma list as a filter means it: an item without ':' is a name and
 * selects every parameter variant of it, an item with ':' one spec exactly. */
int cli_spec_in_list(const char *spec, const char *list);
/* Register that rule as SQL function spec_in(value, list) on h (NULL value: 0). */
struct sqlite3;
int cli_sql_spec_in(struct sqlite3 *h);

/* A progress line on stderr for long work: drawn only on a terminal, once
 * the work has taken a second (MOESIM_PROGRESS_AFTER=S: S seconds; tests
 * use 0), redrawn at most 5 times a second as "moesim CMD: WHAT: NN% (x of
 * y UNIT)", erased by cli_progress_clear (before any other message, and at
 * the end). unit_div scales done/total for display (1e6 with "MB"). */
typedef struct cli_progress {
    const char *cmd, *what, *unit;
    double unit_div, start, last;
    int drawn;
} cli_progress;
void cli_progress_start(cli_progress *p, const char *cmd, const char *what, const char *unit, double unit_div);
/* Callback form (ctx = the cli_progress). */
void cli_progress_update(void *ctx, uint64_t done, uint64_t total);
void cli_progress_clear(cli_progress *p);

#endif
