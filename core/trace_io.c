/* trace_io.c: moe_trace_load dispatch. The binary magic is sniffed first
 * (so a .moetrace renamed to anything still loads); otherwise the extension
 * decides: .csv is the interchange form with inferred geometry, .jsonl one
 * of the routing-log layouts (sniffed by its first line). Anything else is
 * an error rather than a guess. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "trace_formats.h"

static int has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

moe_trace *moe_trace_load(const char *path, moe_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        moe_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char magic[8];
    size_t n = fread(magic, 1, sizeof magic, f);
    fclose(f);
    if (n == sizeof magic && memcmp(magic, MOE_BIN_MAGIC, 8) == 0) return moe_trace_load_bin(path, err);
    if (has_ext(path, ".moetrace")) return moe_trace_load_bin(path, err); /* reports the bad magic */
    if (has_ext(path, ".csv")) {
        moe_csv_opts o = {0};
        return moe_trace_load_csv(path, &o, err);
    }
    if (has_ext(path, ".jsonl")) {
        int layout = moe_jsonl_sniff(path, err);
        if (layout < 0) return NULL;
        moe_jsonl_opts o = {.layout = layout};
        return moe_trace_load_jsonl(path, &o, err);
    }
    moe_fail(err, "%s: unknown trace format (no .moetrace magic; extension is not .moetrace, .csv or .jsonl)", path);
    return NULL;
}
