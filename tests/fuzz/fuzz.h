/* fuzz.h: what every libFuzzer target shares.
 *
 * moesim's readers take a path (they stat, mmap or stream the file, and
 * name it in errors), so each input is written to a file of this process
 * first and the reader is given that path: the fuzzer then exercises
 * exactly the code a user's file reaches. The file lives in $TMPDIR (or
 * /tmp), is named by the target and the pid so parallel jobs never share
 * one, and is removed at exit. */
#ifndef MOE_FUZZ_H
#define MOE_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path_buf[512];

static inline void fuzz_cleanup(void) {
    if (fuzz_path_buf[0]) unlink(fuzz_path_buf);
}

/* Write data to this process's input file (suffix: the extension the reader
 * expects, e.g. ".csv") and return its path. Aborts if the file cannot be
 * written: a harness failure must not look like a clean run. */
static inline const char *fuzz_file(const uint8_t *data, size_t n, const char *suffix) {
    if (!fuzz_path_buf[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path_buf, sizeof fuzz_path_buf, "%s/moesim-fuzz-%ld%s", dir && *dir ? dir : "/tmp",
                 (long)getpid(), suffix);
        atexit(fuzz_cleanup);
    }
    FILE *f = fopen(fuzz_path_buf, "wb");
    if (!f || (n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) {
        perror(fuzz_path_buf);
        abort();
    }
    return fuzz_path_buf;
}

/* A NUL-terminated copy of data (for string parsers); free() it. */
static inline char *fuzz_string(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    memcpy(s, data, n);
    s[n] = 0;
    return s;
}

/* Take the first byte as a selector (options of the reader); 0 if empty. */
static inline unsigned fuzz_take_byte(const uint8_t **data, size_t *n) {
    if (!*n) return 0;
    unsigned b = **data;
    (*data)++, (*n)--;
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

#endif

#ifdef MOE_FUZZ_TRACE
#include "../../core/trace.h"
#include "../../sim/replay.h"
#include "../../core/trace_formats.h"

/* The streaming import (moe_lcs_import) must write exactly the trace the
 * in-memory reader built (t, NULL if that reader failed: then the import
 * must fail too). */
static inline void fuzz_check_lcs_import(const char *in, int oracle, const moe_lcs_opts *o,
                                         const moe_import_report *rep, const moe_trace *t) {
    char out[600];
    moe_error err;
    uint64_t nr, nk;
    snprintf(out, sizeof out, "%s.out.moetrace", in);
    int rc = moe_lcs_import(in, oracle, o, rep, NULL, out, &nr, &nk, &err);
    if ((rc == 0) != (t != NULL)) {
        fprintf(stderr, "streaming import %s, in-memory reader %s: %s\n", rc ? "failed" : "succeeded",
                t ? "succeeded" : "failed", err.msg);
        abort();
    }
    if (rc) return;
    moe_trace *s = moe_trace_load_ex(out, MOE_LOAD_KEYS, &err);
    unlink(out);
    if (!s || !s->keys || s->n_tokens != t->n_tokens || s->n_experts != t->n_experts ||
        memcmp(s->keys, t->keys, t->n_tokens * 4)) {
        fprintf(stderr, "streaming import differs from the in-memory reader%s%s\n", s ? "" : ": ", s ? "" : err.msg);
        abort();
    }
    moe_trace_free(s);
}

/* What a user does next with a trace a reader accepted: validate it and
 * replay it in both scopes (small traces only, so the fuzzer stays fast).
 * Anything the reader let through that a replay cannot take is a finding. */
static inline void fuzz_use_trace(moe_trace *t) {
    moe_error err;
    if (!t) return;
    if (moe_trace_validate(t, &err) != 0) {
        fprintf(stderr, "reader accepted a trace that does not validate: %s\n", err.msg);
        abort();
    }
    (void)moe_trace_count_slots(t);
    if ((double)t->n_tokens * t->n_layers * t->top_k <= 1e5 && (double)t->n_layers * t->n_experts <= 1e6) {
        for (int scope = 0; scope < 2; scope++) {
            moe_replay_config cfg = {.policy = "lru", .capacity = 2, .scope = scope, .seed = 1};
            moe_replay_result r;
            memset(&r, 0, sizeof r);
            if (moe_replay(t, &cfg, &r, &err) == 0) moe_replay_result_free(&r);
        }
    }
    moe_trace_free(t);
}
#endif
