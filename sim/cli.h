/* cli.h: small helpers shared by the subcommands: number parsing with
 * messages that name the option, and uniform error printing. */
#ifndef MOE_CLI_H
#define MOE_CLI_H

#include <stdint.h>

#include "../core/error.h"

/* Parse a non-negative integer option value; on error fills err naming opt. */
int cli_parse_u64(const char *opt, const char *s, uint64_t max, uint64_t *out, moe_error *err);
/* Print "moesim <cmd>: <msg>" to stderr and return the exit status 1. */
int cli_error(const char *cmd, const moe_error *err);
/* True if stdout/stderr is a terminal (progress bars only there). */
int cli_is_tty(int fd);

#endif
