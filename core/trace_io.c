/* trace_io.c: PLACEHOLDER until the trace formats land (binary, CSV). */
#include "trace.h"

moe_trace *moe_trace_load(const char *path, moe_error *err) {
    moe_fail(err, "%s: trace formats not implemented yet", path);
    return NULL;
}

int moe_trace_save(const moe_trace *t, const char *path, moe_error *err) {
    (void)t;
    return moe_fail(err, "%s: trace formats not implemented yet", path);
}

int moe_trace_save_csv(const moe_trace *t, const char *path, moe_error *err) {
    (void)t;
    return moe_fail(err, "%s: trace formats not implemented yet", path);
}
