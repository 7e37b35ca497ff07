/* trace_io.c: PLACEHOLDER until the trace formats land (binary, CSV). */
#include "trace.h"

moe_trace *moe_trace_load(const char *path, moe_error *err) {
    moe_fail(err, "%s: trace formats not implemented yet", path);
    return NULL;
}
