/* reproduce.h: helpers shared by `moesim trace fit` (cli/reproduce_fit.c),
 * `moesim reproduce` (cli/cmd_reproduce.c) and `moesim plan`
 * (cli/cmd_plan.c). */
#ifndef MOE_REPRODUCE_H
#define MOE_REPRODUCE_H

#include <stdint.h>

#include "../core/error.h"

/* Comma-separated numbers; '-' stands for "none" (NaN). At most max values. */
int repro_parse_list(const char *opt, const char *s, double *out, uint32_t max, uint32_t *n, moe_error *err);

/* `moesim trace fit`, dispatched from cli/cmd_trace.c. */
int cmd_trace_fit(int argc, char **argv);

#endif
