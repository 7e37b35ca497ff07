/* trace_io.c: moe_trace_load dispatch. The binary magic is sniffed first
 * (so a .moetrace renamed to anything still loads); otherwise the extension
 * decides: .csv is the interchange form with inferred geometry, .jsonl one
 * of the routing-log layouts (sniffed by its first line). Anything else is
 * an error rather than a guess. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "datadir.h"
#include "trace_formats.h"

static int has_ext(const char *path, const char *ext) {
    size_t n = strlen(path), e = strlen(ext);
    return n > e && strcasecmp(path + n - e, ext) == 0;
}

static moe_trace *load_any(const char *path, moe_error *err) {
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

moe_trace *moe_trace_load_ex(const char *path, unsigned flags, moe_error *err) {
    /* a shipped trace ("traces/default.moetrace") is found from any working
     * directory, as the experiment files that name it are (core/datadir.h) */
    char where[4096];
    path = moe_data_path(path, where, sizeof where);
    moe_trace *t = load_any(path, err);
    if (t && t->keys && !(flags & MOE_LOAD_KEYS)) {
        moe_fail(err, "%s: a key sequence (%llu requests over %u keys, imported from a libCacheSim file): it has "
                 "no routing, so only `run`, `sweep` and `trace info` take it", path,
                 (unsigned long long)t->n_tokens, t->n_experts);
        moe_trace_free(t);
        return NULL;
    }
    return t;
}

moe_trace *moe_trace_load(const char *path, moe_error *err) { return moe_trace_load_ex(path, 0, err); }
