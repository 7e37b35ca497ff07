/* params.h: parameter strings of the form "name:key=value,key=value".
 *
 * A policy declares its keys with defaults; parsing fills the defaults first,
 * overrides them from the string, rejects unknown keys and malformed values,
 * and writes the canonical name with every effective value in declaration
 * order ("s3fifo:small=0.1,threshold=1"). The canonical name is the config key
 * in SQLite, so two spellings of the same configuration collapse to one. */
#ifndef MOE_PARAMS_H
#define MOE_PARAMS_H

#include <stddef.h>

#include "error.h"

enum moe_param_type { MOE_PARAM_INT, MOE_PARAM_DOUBLE, MOE_PARAM_STRING };

typedef struct moe_param {
    const char *key;
    enum moe_param_type type;
    const char *default_value; /* as text, parsed like user input */
    double min, max;           /* numeric range, inclusive; ignored for strings */
    const char *help;
    /* filled by moe_params_parse */
    long long i;
    double d;
    char s[256];
} moe_param;

/* Parse `args` (the text after "name:", may be NULL or empty) into params.
 * canonical receives "name" or "name:k=v,..." (cap bytes). */
int moe_params_parse(const char *name, const char *args, moe_param *params, size_t n,
                     char *canonical, size_t cap, moe_error *err);

/* Find a parsed parameter by key (NULL if absent). */
const moe_param *moe_params_get(const moe_param *params, size_t n, const char *key);

#endif
