/* trace_cmp.h: helpers for the trace tests: array-by-array comparison of
 * two traces and small file utilities. */
#ifndef MOE_TRACE_CMP_H
#define MOE_TRACE_CMP_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/trace.h"

/* Weights equal bit for bit, NaN matching NaN. */
static inline int weights_equal(const float *a, const float *b, size_t n) {
    if (!a || !b) return a == b;
    for (size_t i = 0; i < n; i++)
        if (isnan(a[i]) ? !isnan(b[i]) : memcmp(&a[i], &b[i], sizeof(float)) != 0) return 0;
    return 1;
}

/* 0 if the traces' arrays and geometry are identical, else a line number
 * of this file saying which part differs. header: also compare strings. */
static inline int trace_diff(const moe_trace *a, const moe_trace *b, int header) {
    if (a->n_layers != b->n_layers || a->n_experts != b->n_experts || a->top_k != b->top_k) return __LINE__;
    if (a->n_steps != b->n_steps || a->n_tokens != b->n_tokens) return __LINE__;
    if (!a->keys != !b->keys) return __LINE__;
    if (a->keys) { /* key sequences: the keys and, with header, the strings */
        if (memcmp(a->keys, b->keys, a->n_tokens * 4)) return __LINE__;
        if (header && (strcmp(a->source, b->source) || strcmp(a->meta ? a->meta : "", b->meta ? b->meta : "")))
            return __LINE__;
        return 0;
    }
    size_t rec = (size_t)a->n_tokens * a->n_layers * a->top_k;
    if (memcmp(a->step_first_token, b->step_first_token, (a->n_steps + 1) * 8)) return __LINE__;
    if (memcmp(a->step_id, b->step_id, a->n_steps * 8)) return __LINE__;
    if (memcmp(a->step_phase, b->step_phase, a->n_steps)) return __LINE__;
    if (memcmp(a->token_seq, b->token_seq, a->n_tokens * 4)) return __LINE__;
    if (memcmp(a->token_pos, b->token_pos, a->n_tokens * 4)) return __LINE__;
    if (memcmp(a->experts, b->experts, rec * 2)) return __LINE__;
    if (!weights_equal(a->weights, b->weights, rec)) return __LINE__;
    if (header) {
        if (a->lookahead_depth != b->lookahead_depth) return __LINE__;
        if (a->lookahead && memcmp(a->lookahead, b->lookahead, rec * a->lookahead_depth * 2)) return __LINE__;
        if (strcmp(a->model, b->model) || strcmp(a->source, b->source)) return __LINE__;
        if (strcmp(a->meta ? a->meta : "", b->meta ? b->meta : "")) return __LINE__;
        if (a->n_shared != b->n_shared || memcmp(a->expert_bytes, b->expert_bytes, sizeof a->expert_bytes)) return __LINE__;
    }
    return 0;
}

static inline char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) { free(b); b = NULL; }
    if (b) b[n] = 0, *len = (size_t)n;
    fclose(f);
    return b;
}

static inline int spit(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(p, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

/* A fresh temporary directory for one test program. */
static inline const char *test_tmpdir(void) {
    static char dir[64];
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/moesim-test-XXXXXX");
        if (!mkdtemp(dir)) return "/tmp";
    }
    return dir;
}

#endif
