/* datadir.c: look-up of data files in the checkout, $MOESIM_DATA, or the
 * installed share folder (MOESIM_DATADIR is set by the Makefile from PREFIX). */
#include "datadir.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#ifndef MOESIM_DATADIR
#define MOESIM_DATADIR "/usr/local/share/moesim"
#endif

const char *moe_data_path(const char *rel, char *buf, size_t cap) {
    if (!rel || rel[0] == '/' || access(rel, F_OK) == 0) return rel;
    const char *dirs[] = {getenv("MOESIM_DATA"), MOESIM_DATADIR};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        if (!dirs[i] || !*dirs[i]) continue;
        int n = snprintf(buf, cap, "%s/%s", dirs[i], rel);
        if (n > 0 && (size_t)n < cap && access(buf, F_OK) == 0) return buf;
    }
    return rel;
}
